"""Walk a responder through a runbook, one step at a time.

- diagnostic blocks (read-only) run at once and their output is shown;
- mutating blocks show the exact command and ask: y / skip / abort;
- manual steps (no runnable block) wait for an acknowledgement;
- at any prompt, `note` records a line for the postmortem.
Each command's and step's outcome goes to the incident timeline as it ends, so
`--resume` continues from the first unfinished step (and, inside a step, from the
first unfinished command). Everything that can be checked is checked before the
first step: the runbook lints clean, non-interactive use of a runbook that
mutates needs --yes, every value a remaining step needs is known or can be asked.

Values never become text for a shell or invoke to split: every value is checked
against its input's kind (values.py), each command is built as an argv list word
by word, and that exact argv is checked again before it runs (one task, every word
its own option or argument; a diagnostic step's task declared read-only). A
diagnostic command also runs with SPYWATCHER_OPS_READ_ONLY set, so a task that
changes things refuses at its own boundary (core/cli.py) whatever the runbook says.
Unattended, a run whose checks failed ends with exit 1 naming them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.cli import READ_ONLY_ENV
from ..core.clock import Clock
from ..core.errors import BadInput, OperationFailed, OpsError, Refused, VerificationFailed
from ..core.guards import OPT_IN_VAR as CONFIRM_VAR
from ..core.journal import os_user, redact
from .check import TaskSpec, check_invocation
from .model import BUILTINS, PLACEHOLDER, Block, Runbook, Step, substitute
from .timeline import RunState, Timeline, runs
from .values import BUILTIN_KINDS, DEFAULT_KIND, argv_for, check_value, display

OUTPUT_TAIL = 4000  # characters of each command's output kept in the timeline


class Abort(Exception):
    """The responder answered `abort` (or stdin closed)."""


class SkipStep(Exception):
    """The responder answered `skip` at a value prompt: this step is skipped."""


@dataclass
class Options:
    env: str
    incident: str
    production: bool = False
    resume: bool = False
    yes: bool = False
    values: dict[str, str] = field(default_factory=dict)  # --var NAME=VALUE and built-ins


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str
    argv: list[str]


class Terminal:
    """The responder's terminal: prompts on stdin, text on stdout (rich loaded on first use)."""

    def __init__(self, interactive: bool | None = None, history: Path | None = None) -> None:
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.history = history  # answers kept across runs (up arrow), e.g. <state_dir>/runbooks/history
        self._rich: Any = None
        self.waiting_s = 0.0  # time spent at prompts: a step's timer leaves it out
        self._editing = False

    @property
    def rich(self) -> Any:
        if self._rich is None:
            from rich.console import Console

            self._rich = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        return self._rich

    def say(self, text: str = "", style: str | None = None) -> None:
        self.rich.print(text, markup=False, style=style)

    def markdown(self, text: str) -> None:
        if text.strip():
            from rich.markdown import Markdown

            self.rich.print(Markdown(text), soft_wrap=False)

    def _load_history(self, readline: Any) -> None:
        if self.history is not None and self.history.is_file():
            try:
                readline.read_history_file(str(self.history))
            except OSError:
                pass  # a history that cannot be read is no reason to stop a runbook

    def _save_history(self, readline: Any, answer: str) -> None:
        if self.history is None or not answer:
            return
        try:
            self.history.parent.mkdir(parents=True, exist_ok=True)
            self.history.touch(exist_ok=True)
            readline.append_history_file(1, str(self.history))
        except OSError:
            pass

    def ask(self, prompt: str) -> str:
        """One answer. In a terminal: line editing (arrows, Ctrl-A/E) and this run's answers as
        history (up arrow), through readline, loaded here and not by `inv --list`."""
        started = time.monotonic()
        try:
            if self.interactive and sys.stdin.isatty():
                import readline  # input() edits lines once it is loaded

                if not self._editing:
                    self._editing = True
                    self._load_history(readline)
                try:
                    answer = input(prompt).strip()
                except EOFError:
                    raise Abort("stdin closed") from None
                self._save_history(readline, answer)
                return answer
            sys.stdout.write(prompt)
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                raise Abort("stdin closed")
            return line.strip()
        finally:
            self.waiting_s += time.monotonic() - started


class CommandRunner:
    """Runs a runbook command (its argv words, values already filled in, never re-split)
    as `python -m invoke ...` from the project root, with the same state folder (and
    config file) as the run itself; output is shown live and its tail kept. stdin stays
    the responder's terminal, so a task's own confirmation (production asks for the
    environment's name) still reaches them."""

    def __init__(
        self,
        *,
        root: str,
        state_dir: str,
        table: Mapping[str, TaskSpec],
        config_file: str | None = None,
        yes: bool = False,
        incident: str = "",
    ) -> None:
        self.root = root
        self.state_dir = state_dir
        self.table = table
        self.config_file = config_file
        self.yes = yes
        self.incident = incident

    def argv(self, words: Sequence[str], confirmed: bool = False) -> list[str]:
        """`inv TASK ...` words -> the argv run; the words are used as they are, never re-split.
        `confirmed`: the responder said yes to this command at the runbook's prompt, so the task
        gets --yes and does not ask a second time."""
        words = list(words)
        if not words or words[0] not in ("inv", "invoke"):
            raise BadInput(f"`{display(words)}`: only `inv` commands are run by the engine")
        head = [sys.executable, "-m", "invoke"] + (["-f", self.config_file] if self.config_file else [])
        spec = self.table.get(words[1]) if len(words) > 1 else None
        tail = words[1:]
        # Unattended (--yes): the tasks' own confirmations are answered too.
        if (self.yes or confirmed) and spec is not None and "--yes" in spec.flags and "--yes" not in tail:
            tail = tail + ["--yes"]
        return head + tail

    def __call__(
        self, words: Sequence[str], read_only: bool = False, confirmed_env: str | None = None
    ) -> Outcome:
        argv = self.argv(words, confirmed=confirmed_env is not None)
        env = dict(os.environ)
        if confirmed_env is not None and confirmed_env != "":
            # production: the responder typed its name at the runbook's prompt; that is the
            # guard's confirmation (core/guards.py), handed to the task with --yes
            env[CONFIRM_VAR] = confirmed_env
        env["INVOKE_OPS_STATE_DIR"] = self.state_dir
        env["SPYWATCHER_OPS_INCIDENT"] = self.incident
        env.pop(READ_ONLY_ENV, None)
        if read_only:  # a diagnostic step: a task that changes things refuses itself
            env[READ_ONLY_ENV] = "1"
        proc = subprocess.Popen(
            argv, cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        kept = bytearray()
        try:
            fd = proc.stdout.fileno()
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                kept += chunk
                if len(kept) > 4 * OUTPUT_TAIL:
                    del kept[: len(kept) - OUTPUT_TAIL]
        finally:
            code = proc.wait()
            proc.stdout.close()
        text = kept.decode(errors="replace")[-OUTPUT_TAIL:]
        return Outcome(code, text, argv)


Execute = Callable[[Sequence[str], bool], Outcome]
Audit = Callable[..., None]


def _no_audit(*_: Any, **__: Any) -> None:
    return None


@dataclass
class Summary:
    run: str
    incident: str
    outcome: str
    steps: list[dict[str, Any]]


class Walk:
    def __init__(
        self,
        runbook: Runbook,
        options: Options,
        *,
        timeline: Timeline,
        terminal: Terminal,
        execute: Execute,
        clock: Clock,
        table: Mapping[str, TaskSpec],
        audit: Audit = _no_audit,
    ) -> None:
        self.rb = runbook
        self.table = table
        self.kinds = {**BUILTIN_KINDS, **{n: i.kind for n, i in runbook.inputs.items()}}
        self.opt = options
        self.timeline = timeline
        self.term = terminal
        self.execute = execute
        self.clock = clock
        self.audit = audit
        self.values: dict[str, str] = {}
        self.state: RunState | None = None
        self.run_id = ""
        self.results: list[dict[str, Any]] = []
        self.prepared = False
        self.who = os_user()
        self.jump_to: tuple[int, str] | None = None  # set by a step whose check says where to go

    # before the first step ----------------------------------------------------
    def prepare(self) -> None:
        """Everything that can refuse the run, checked before anything happens (idempotent)."""
        if self.prepared:
            return
        rb, opt = self.rb, self.opt
        unknown = [name for name in opt.values if name not in rb.inputs and name not in BUILTINS]
        if unknown:
            declared = ", ".join(rb.inputs) or "none"
            raise BadInput(f"--var {unknown[0]}: runbook {rb.name} has no such input; its inputs: {declared}")
        previous = [s for s in runs(self.timeline.records()).values() if s.runbook == rb.name]
        open_runs = [s for s in previous if not s.finished]
        if opt.resume:
            if not open_runs:
                raise BadInput(
                    f"--resume: incident {opt.incident} has no unfinished run of {rb.name}; "
                    "run it without --resume to start"
                )
            state = open_runs[-1]
            if state.env != opt.env:
                raise BadInput(
                    f"--env {opt.env}: the run being resumed is on {state.env}; pass --env {state.env}"
                )
            titles = [s.title for s in rb.steps]
            if state.step_titles and state.step_titles != titles:
                raise Refused(
                    f"runbook {rb.name} changed since this run started (steps differ); "
                    f"finish it by hand or start a new run with another --incident"
                )
            self.state = state
            self.run_id = state.run
            for name, value in state.inputs.items():  # recorded by an earlier run: checked again
                self.values[name] = self.check(name, value, source=f"{{{name}}} (from the timeline)")
        elif open_runs:
            state = open_runs[-1]
            raise Refused(
                f"incident {opt.incident} already has an unfinished run of {rb.name} "
                f"(stopped at step {state.stopped_at}); pass --resume to continue it"
            )
        for name, value in opt.values.items():
            if name in BUILTINS and not value:
                self.values[name] = value  # e.g. no region on the sandbox: refused only where used
                continue
            source = (
                f"--{name}"
                if name in ("env", "incident")
                else (f"{{{name}}} (from config)" if name in BUILTINS else f"--var {name}")
            )
            self.values[name] = self.check(name, value, source=source)
        remaining = self.remaining_steps()
        if not self.term.interactive:
            if not opt.yes and any(s.kind == "mutating" for s in remaining):
                raise Refused(
                    f"runbook {rb.name} has mutating steps and stdin is not a terminal; "
                    "run it in a terminal, or pass --yes to run them unattended"
                )
            missing = [
                n for n in self._needed(remaining) if n not in self.values and rb.inputs[n].default is None
            ]
            if missing:
                raise BadInput(f"no terminal to ask for {', '.join(missing)}; pass --var {missing[0]}=VALUE")
            for name in self._needed(remaining):  # defaults taken unattended: checked now, not mid-run
                default = rb.inputs[name].default
                if name not in self.values and default is not None:
                    self.check(name, substitute(default, self.values), source=f"default of {name}")
        self.prepared = True

    def check(self, name: str, value: str, *, source: str = "") -> str:
        return check_value(name, value, self.kinds.get(name, DEFAULT_KIND), source=source)

    def remaining_steps(self) -> list[Step]:
        done = self.state.steps_done if self.state else set()
        return [s for s in self.rb.steps if s.number not in done]

    def _needed(self, steps: Sequence[Step]) -> list[str]:
        names: dict[str, None] = {}
        for step in steps:
            for name in step.placeholders():
                if name in self.rb.inputs:
                    names.setdefault(name, None)
        return list(names)

    # records ------------------------------------------------------------------
    def record(self, event: str, **data: Any) -> None:
        self.timeline.write(
            {"event": event, "run": self.run_id, "runbook": self.rb.name, "who": self.who, **redact(data)}
        )

    # the walk -----------------------------------------------------------------
    def run(self) -> Summary:
        self.prepare()
        rb, opt = self.rb, self.opt
        remaining = self.remaining_steps()
        if self.state is None:
            self.run_id = uuid.uuid4().hex[:10]
            self.record(
                "run-start",
                title=rb.title,
                env=opt.env,
                incident=opt.incident,
                steps=[s.title for s in rb.steps],
                file=str(rb.path),
            )
        else:
            self.record("run-resume", env=opt.env, from_step=remaining[0].number if remaining else None)
        for name, value in self.opt.values.items():
            if name in rb.inputs:  # given as --var: on the timeline, so --resume knows it
                self.record("input", step=None, name=name, value=value, given="--var")
        self.banner(remaining)
        current: Step | None = None
        try:
            queue = list(remaining)
            while queue:
                step = queue.pop(0)
                current = step
                self.jump_to = None
                self.walk_step(step)
                if self.jump_to is not None:
                    queue = self.follow_jump(step, self.jump_to, queue)
        except Abort as exc:
            where = f"step {current.number}" if current else "the start"
            if current is not None:
                self.record(
                    "step", step=current.number, title=current.title, kind=current.kind, outcome="aborted"
                )
            self.record("run-end", outcome="aborted", detail=f"at {where}: {exc}")
            self.audit("run", "aborted", at_step=current.number if current else None)
            raise Refused(
                f"runbook {rb.name} aborted at {where}; nothing more was run. "
                f"Continue later with: {self.resume_command()}"
            ) from None
        except KeyboardInterrupt:
            where = f"step {current.number}" if current else "the start"
            if current is not None:
                self.record(
                    "step", step=current.number, title=current.title, kind=current.kind, outcome="interrupted"
                )
            self.record("run-end", outcome="interrupted", detail=f"at {where}")
            self.audit("run", "interrupted", at_step=current.number if current else None)
            self.term.say(f"\ninterrupted at {where}. Continue with: {self.resume_command()}", style="yellow")
            raise
        except OpsError as exc:  # a failed change, or a command refused before it ran
            where = f"step {current.number}" if current else "the start"
            if current is not None:
                self.record(
                    "step",
                    step=current.number,
                    title=current.title,
                    kind=current.kind,
                    outcome="failed-stopped",
                )
            self.record("run-end", outcome="failed", detail=f"at {where}: {exc}")
            self.audit("run", "failed", at_step=current.number if current else None)
            again = OperationFailed if isinstance(exc, OperationFailed) else Refused
            raise again(f"{exc}; continue later with: {self.resume_command()}") from None
        failed = [r for r in self.results if r["outcome"] == "failed"]
        if failed:
            names = "; ".join(f"step {r['step']} ({r['title']})" for r in failed)
            self.record("run-end", outcome="completed-with-failures", detail=f"failed: {names}")
            self.audit("run", "completed-with-failures", failed=[r["step"] for r in failed])
            raise VerificationFailed(
                f"runbook {rb.name} ran to the end, but these steps failed: {names}. "
                f"Timeline: inv runbook.timeline --incident {opt.incident} --format md"
            )
        self.record("run-end", outcome="completed")
        self.audit("run", "completed")
        self.term.say("")
        self.term.say(
            f"Runbook {rb.name} completed. Timeline for the postmortem: "
            f"inv runbook.timeline --incident {opt.incident} --format md",
            style="bold green",
        )
        return Summary(self.run_id, opt.incident, "completed", self.results)

    def resume_command(self) -> str:
        return f"inv runbook.run {self.rb.name} --env {self.opt.env} --incident {self.opt.incident} --resume"

    def banner(self, remaining: list[Step]) -> None:
        rb, opt = self.rb, self.opt
        self.term.say(
            f"Runbook: {rb.title} ({rb.name}), severity {rb.severity}, owner {rb.owner}", style="bold"
        )
        env_line = f"Environment: {opt.env}" + ("  *** PRODUCTION ***" if opt.production else "")
        self.term.say(env_line, style="bold red" if opt.production else None)
        self.term.say(f"Incident: {opt.incident}")
        if self.state is not None and remaining:
            self.term.say(
                f"Resuming at step {remaining[0].number}; steps "
                f"{', '.join(str(n) for n in sorted(self.state.steps_done)) or 'none'} already finished."
            )
        if self.term.interactive:
            self.term.say("At any prompt: type `note` to add a line to the incident timeline.", style="dim")

    def follow_jump(self, step: Step, target: tuple[int, str], queue: list[Step]) -> list[Step]:
        """The step's check said where to go (`ok=N` / `failed=N` on its block): the steps in
        between are recorded as jumped over (so --resume does not offer them), and the walk
        goes on at step N."""
        number, because = target
        skipped = [s for s in queue if s.number < number]
        self.record("jump", step=step.number, to=number, because=because, over=[s.number for s in skipped])
        self.term.say(
            f"-> the check {'passed' if because == 'ok' else 'failed'}: going to step {number}"
            + (f" (steps {', '.join(str(s.number) for s in skipped)} not needed)" if skipped else ""),
            style="bold cyan",
        )
        for s in skipped:
            self.record("step", step=s.number, title=s.title, kind=s.kind, outcome="jumped-over")
            self.results.append({"step": s.number, "title": s.title, "outcome": "jumped-over"})
        return [s for s in queue if s.number >= number]

    def walk_step(self, step: Step) -> None:
        started = self.clock.monotonic()
        waited = getattr(self.term, "waiting_s", 0.0)
        total = len(self.rb.steps)
        self.term.say("")
        self.term.say(f"== Step {step.number}/{total}: {step.title}  [{step.kind}]", style="bold cyan")
        try:
            outcome = self._walk_body(step)
        except SkipStep:
            outcome = "skipped"
            self.term.say(f"step {step.number} skipped", style="yellow")
        # the step's own time: what the responder spent reading and typing at prompts is not in it
        duration = round(
            max(0.0, self.clock.monotonic() - started - (getattr(self.term, "waiting_s", 0.0) - waited)), 3
        )
        self.record(
            "step", step=step.number, title=step.title, kind=step.kind, outcome=outcome, duration_s=duration
        )
        self.audit(f"{step.number}. {step.title}", outcome, kind=step.kind, duration_s=duration)
        self.results.append({"step": step.number, "title": step.title, "outcome": outcome})

    def _walk_body(self, step: Step) -> str:
        if step.kind == "manual":
            # The instructions first (they often say how to find a value), then the questions.
            self.term.markdown(substitute(step.body, self.values))
            self.ensure_values(step.placeholders(), step)
            self.show_commands(step)
            return self.acknowledge(step)
        outcome = "done"
        index = 0
        for segment in step.segments():
            if isinstance(segment, str):
                self.term.markdown(substitute(segment, self.values))
                continue
            self.ensure_values(PLACEHOLDER.findall(segment.text), step)
            result = self.run_block(step, index, segment)
            index += 1
            if result == "failed":
                outcome = "failed"
            elif result == "skipped" and outcome == "done":
                outcome = "skipped"
            jump = segment.jumps.get("ok" if result == "ok" else "failed" if result == "failed" else "")
            if jump is not None and self.jump_to is None:
                self.jump_to = (jump, "ok" if result == "ok" else "failed")
                break
        return outcome

    def ensure_values(self, names: Sequence[str], step: Step) -> None:
        for name in names:
            if name in self.values or name not in self.rb.inputs:
                continue
            spec = self.rb.inputs[name]
            default = substitute(spec.default, self.values) if spec.default is not None else None
            if not self.term.interactive:
                value = self.check(name, default or "", source=f"default of {name}")
            else:
                value = self.ask_value(name, spec.prompt, default, step=step)
            self.values[name] = value
            self.record("input", step=step.number, name=name, value=value)

    def show_commands(self, step: Step) -> None:
        """Shell commands of a manual step again, each on one unwrapped line, ready to copy."""
        lines = [
            substitute(cmd, self.values)
            for b in step.blocks
            if b.run is None and b.info.split()[:1] in ([], ["sh"], ["bash"], ["shell"], ["console"])
            for _, cmd in b.commands()
        ]
        if lines:
            self.term.say("Commands for you to run:", style="bold")
            for line in lines:
                self.term.say(f"  {line}")

    def ask_value(self, name: str, prompt: str, default: str | None, *, step: Step | None = None) -> str:
        """Ask until the answer is a valid value of the input's kind (one argument, never split).
        `note`, `skip` (this step) and `abort` work here as at every prompt."""
        suffix = f" [{default}]" if default else ""
        while True:
            answer = self.term.ask(f"Value for {{{name}}}: {prompt}{suffix} (or note / skip / abort): ")
            if answer.lower() == "note":
                self.take_note(step)
                continue
            if answer.lower() == "abort":
                raise Abort("the responder chose abort")
            if answer.lower() == "skip" and step is not None:
                raise SkipStep()
            answer = answer or (default or "")
            if not answer:
                continue
            try:
                return self.check(name, answer, source="value")
            except BadInput as exc:
                self.term.say(str(exc), style="bold red")

    def prompt(self, step: Step, question: str, choices: dict[str, str]) -> str:
        """Ask until one of `choices` (answer -> meaning) is given; `note` records a note."""
        while True:
            answer = self.term.ask(question).lower()
            if answer == "note":
                self.take_note(step)
                continue
            if answer in choices:
                meaning = choices[answer]
                if meaning == "abort":
                    raise Abort("the responder chose abort")
                return meaning
            self.term.say(f"please answer one of: {', '.join(k for k in choices if len(k) > 1)} (or note)")

    def take_note(self, step: Step | None) -> None:
        text = self.term.ask("Note for the timeline: ")
        if text:
            where = {"step": step.number, "title": step.title} if step is not None else {"step": None}
            self.record("note", **where, text=text)

    def acknowledge(self, step: Step) -> str:
        if not self.term.interactive:
            self.term.say("(no terminal: shown, not acknowledged)", style="yellow")
            return "shown"
        meaning = self.prompt(
            step,
            f"Step {step.number} is for you to do. Done? [y / skip / abort / note] ",
            {
                "y": "done",
                "yes": "done",
                "done": "done",
                "s": "skip",
                "skip": "skip",
                "a": "abort",
                "abort": "abort",
            },
        )
        return "acknowledged" if meaning == "done" else "skipped"

    def run_block(self, step: Step, index: int, block: Block) -> str:
        if self.state is not None and (step.number, index) in self.state.commands_done:
            self.term.say(
                f"(command {index + 1} of this step already finished before; not run again)", style="dim"
            )
            return "ok"
        raw = block.commands()[0][1]
        while True:
            words = argv_for(raw, self.values, self.kinds)
            command = display(words)
            problems = check_invocation(words, self.table, runnable=block.run or "mutating")
            if problems:
                raise Refused(
                    f"step {step.number} ({step.title}): `{command}` is not run: {'; '.join(problems)}"
                )
            # What identifies this attempt in every timeline record below.
            which = {"step": step.number, "title": step.title, "index": index, "command": command}
            if block.run == "mutating":
                where = f"{self.opt.env} (PRODUCTION)" if self.opt.production else self.opt.env
                self.term.say(
                    f"This command CHANGES {where}:",
                    style="bold red" if self.opt.production else "bold yellow",
                )
                self.term.say(f"  $ {command}", style="bold")
                confirmed: str | None = None
                if self.term.interactive:
                    # Asked once, here: the answer goes to the task (--yes), which does not ask
                    # again. Production keeps its guard: the environment's name is typed here.
                    yes_words = {self.opt.env: "run"} if self.opt.production else {"y": "run", "yes": "run"}
                    meaning = self.prompt(
                        step,
                        (
                            f"Type {self.opt.env} to run it, or skip / abort / note: "
                            if self.opt.production
                            else "Run it? [y / skip / abort / note] "
                        ),
                        {**yes_words, "s": "skip", "skip": "skip", "a": "abort", "abort": "abort"},
                    )
                    if meaning == "skip":
                        self.record("command", outcome="skipped", exit=None, **which)
                        return "skipped"
                    confirmed = self.opt.env if self.opt.production else ""
            else:
                confirmed = None
                self.term.say(f"$ {command}", style="bold")
            started = self.clock.monotonic()
            try:
                if confirmed is not None and isinstance(self.execute, CommandRunner):
                    result = self.execute(words, False, confirmed_env=confirmed)
                else:
                    result = self.execute(words, block.run == "diagnostic")
            except KeyboardInterrupt:
                self.record(
                    "command",
                    outcome="interrupted",
                    exit=None,
                    duration_s=round(self.clock.monotonic() - started, 3),
                    **which,
                )
                raise
            duration = round(self.clock.monotonic() - started, 3)
            base = {
                **which,
                "argv": result.argv[1:],
                "exit": result.code,
                "duration_s": duration,
                "output": result.output,
            }
            if result.code == 0:
                self.record("command", outcome="ok", **base)
                return "ok"
            self.term.say(f"`{command}` exited {result.code}", style="bold red")
            if "failed" in block.jumps:  # the runbook says where a failed check leads
                self.record("command", outcome="failed", **base)
                return "failed"
            choice = self.after_failure(step, block, raw)
            if choice == "retry":
                self.record("command", outcome="retried", **base)
                continue
            if choice == "continue":
                self.record("command", outcome="failed", **base)
                return "failed"
            self.record("command", outcome="aborted", **base)
            if choice == "stop":
                raise OperationFailed(f"step {step.number} ({step.title}): `{command}` exited {result.code}")
            raise Abort(f"after `{command}` exited {result.code}")

    def after_failure(self, step: Step, block: Block, raw: str) -> str:
        if not self.term.interactive:
            # Unattended: a failed read-only check is information; a failed change stops the run.
            return "continue" if block.run == "diagnostic" else "stop"
        names = [n for n in step.placeholders() if n in self.rb.inputs and n in raw]
        choices = {
            "r": "retry",
            "retry": "retry",
            "c": "continue",
            "continue": "continue",
            "a": "abort",
            "abort": "abort",
        }
        question = "[retry / continue / abort / note"
        if names:
            choices.update({"e": "edit", "edit": "edit"})
            question += f" / edit ({', '.join(names)})"
        meaning = self.prompt(step, question + "] ", choices)
        if meaning == "edit":
            for name in names:
                spec = self.rb.inputs[name]
                self.values[name] = self.ask_value(name, spec.prompt, self.values.get(name), step=step)
                self.record("input", step=step.number, name=name, value=self.values[name])
            return "retry"
        return meaning
