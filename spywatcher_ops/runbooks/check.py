"""Lint runbooks against the real invoke collection.

Each problem names the file, the line and what is wrong. Rules:
- front matter: title, summary, triggers, severity, owner, last_reviewed, all present and well-formed;
- steps numbered 1..N; runnable blocks say `run=diagnostic` or `run=mutating`, hold exactly
  one `inv` command each (the engine runs toolkit tasks only);
- every `inv` command anywhere in the file (runnable blocks, shown blocks, inline code)
  names an existing task with existing options, with values where the option takes one;
- runnable commands pass `--env {env}` when the task has `--env` (else they would hit the
  default environment, not the one the responder chose);
- a diagnostic block never mutates: its task must be declared read-only (core/cli.py
  `ops_task`: derived from the task, read-only unless it takes --dry-run or --yes), or be
  given `--dry-run`; the engine checks the same again on the exact argv before running it;
- placeholders are built-in ({env}, {incident}, {project}, {region}, {db_instance}, {db_secret})
  or declared under `inputs`, with a known `kind` (runbooks/values.py);
- every alarm listed in config (`ops.alarms`) is a trigger of some runbook.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..core.errors import BadInput
from ..core.journal import SECRET_WORDS
from .model import BUILTINS, PLACEHOLDER, REQUIRED, RUN_KINDS, SEVERITIES, Problem, Runbook, display_path
from .values import KINDS, check_value


@dataclass(frozen=True)
class TaskSpec:
    name: str
    flags: dict[str, Any]  # "--to" -> invoke Argument
    inverse: dict[str, str]  # "--no-wait" -> "--wait"
    positional: list[str]  # names of positional arguments, in order
    required: list[str] = field(default_factory=list)  # positional names without a default
    read_only: bool = False  # the task's own declaration (core/cli.py ops_task); unknown: mutating


def task_table(collection: Any) -> dict[str, TaskSpec]:
    """Task name (and alias) -> its options, from a real invoke Collection."""
    table: dict[str, TaskSpec] = {}
    for ctx in collection.to_contexts():
        long_flags = {flag: arg for flag, arg in ctx.flags.items() if flag.startswith("--")}
        positional = [a.name for a in ctx.positional_args]
        spec = TaskSpec(
            ctx.name,
            long_flags,
            dict(ctx.inverse_flags),
            positional,
            [a.name for a in ctx.positional_args if not a.optional],
            read_only=getattr(collection[ctx.name], "read_only", False) is True,
        )
        table[ctx.name] = spec
        for alias in ctx.aliases:
            table[alias] = spec
    return table


def load_collection(root: str) -> Any:
    """The project's real collection, loaded from `<root>/tasks.py` the way `inv` does."""
    from invoke import Collection
    from invoke.loader import FilesystemLoader

    module, _parent = FilesystemLoader(start=root).load("tasks")
    return Collection.from_module(module)


def _dummy(text: str) -> str:
    # A placeholder stands for one word; its value is checked when the command runs.
    return PLACEHOLDER.sub(lambda m: f"PLACEHOLDER_{m.group(1)}", text)


def parse_words(
    name: str, rest: list[str], spec: TaskSpec
) -> tuple[dict[str, str | None], list[str], list[str]]:
    """The words after the task name, read the way invoke reads them: options given
    (name -> value), positional words, and problems. A word that is neither an option of
    the task, its value, nor one of the task's positional arguments is a problem: invoke
    would take it as a second task."""
    problems: list[str] = []
    seen: dict[str, str | None] = {}
    positionals: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        i += 1
        if not word.startswith("-"):
            positionals.append(word)
            continue
        flag, has_eq, inline_value = word.partition("=")
        if not flag.startswith("--"):
            problems.append(
                f"{flag}: use the long option name in runbooks (options of {name}: {_accepted(spec)})"
            )
            if not has_eq and i < len(rest) and not rest[i].startswith("-"):
                i += 1
            continue
        if flag in spec.inverse:
            seen[spec.inverse[flag]] = "false"
            continue
        arg = spec.flags.get(flag)
        if arg is None:
            close = difflib.get_close_matches(flag, list(spec.flags) + list(spec.inverse), n=1, cutoff=0.7)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"{flag}: task {name} has no such option{hint} (it accepts: {_accepted(spec)})")
            if not has_eq and i < len(rest) and not rest[i].startswith("-"):
                i += 1  # most likely its value; not a second problem
            continue
        value: str | None = None
        if arg.takes_value:
            if has_eq:
                value = inline_value
            elif i < len(rest) and not rest[i].startswith("--"):
                value = rest[i]
                i += 1
            else:
                problems.append(f"{flag}: needs a value (e.g. {flag} VALUE)")
                continue
            if arg.kind is int and not value.startswith("PLACEHOLDER_"):
                try:
                    int(value)
                except ValueError:
                    problems.append(f"{flag} {value}: {name} expects a whole number")
        elif has_eq:
            problems.append(f"{flag}={inline_value}: {flag} is a switch and takes no value")
        seen[flag[2:].replace("-", "_")] = value
    if len(positionals) > len(spec.positional):
        extra = positionals[len(spec.positional) :]
        problems.append(f"`{' '.join(extra)}`: {name} takes no further arguments (one task per command)")
    return seen, positionals, problems


def check_command(command: str, table: dict[str, TaskSpec], *, runnable: str | None) -> list[str]:
    """Problems with one `inv ...` command line (empty list: fine)."""
    try:
        argv = shlex.split(_dummy(command))
    except ValueError as exc:
        return [f"`{command}`: cannot split into words ({exc})"]
    if not argv or argv[0] not in ("inv", "invoke"):
        if runnable:
            return [
                f"`{command}`: a runnable block holds one `inv` command; other commands go in a block without run= (a manual step)"
            ]
        return []
    if len(argv) < 2:
        return [f"`{command}`: no task named"]
    name, rest = argv[1], argv[2:]
    if name.startswith("-"):
        return [
            f"`{command}`: put the task name right after `inv` (invoke's own options are not used in runbooks)"
        ]
    spec = table.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.7)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see inv --list"
        return [f"`{command}`: task {name} does not exist{hint}"]
    seen, positionals, problems = parse_words(name, rest, spec)
    given = set(spec.positional[: len(positionals)]) | set(seen)
    for required in spec.required:
        if required not in given:
            problems.append(f"{name} needs --{required.replace('_', '-')}")
    if runnable:
        if "--env" in spec.flags:
            env_value = seen.get("env")
            if env_value is None:
                problems.append(
                    f"{name}: add --env {{env}} so it runs on the environment the responder chose"
                )
            elif env_value != "PLACEHOLDER_env":
                problems.append(f"--env {env_value}: hard-coded environment; use --env {{env}}")
        if runnable == "diagnostic" and not spec.read_only and "dry_run" not in seen:
            problems.append(
                f"{name} changes things (the task is not declared read-only): mark the block "
                "run=mutating" + (", or add --dry-run" if "--dry-run" in spec.flags else "")
            )
    return [f"`{command}`: {p}" if not p.startswith("`") else p for p in problems]


def check_invocation(argv: list[str], table: Mapping[str, TaskSpec], *, runnable: str) -> list[str]:
    """Problems with the exact argv a runbook step is about to run (values filled in): it
    must be one known task whose every word is that task's option, option value or
    positional argument (nothing invoke would run as a second task), and a diagnostic
    step's task must be declared read-only (or be given --dry-run)."""
    if len(argv) < 2 or argv[0] not in ("inv", "invoke") or argv[1].startswith("-"):
        return ["not an `inv TASK ...` command"]
    name, rest = argv[1], argv[2:]
    spec = table.get(name)
    if spec is None:
        return [f"task {name} does not exist"]
    seen, _positionals, problems = parse_words(name, rest, spec)
    if runnable == "diagnostic" and not spec.read_only and "dry_run" not in seen:
        problems.append(f"{name} changes things (not declared read-only): a diagnostic step never runs it")
    return problems


def _accepted(spec: TaskSpec) -> str:
    names = sorted(spec.flags) + sorted(spec.inverse)
    return ", ".join(names) or "no options"


def check_runbook(
    runbook: Runbook, table: dict[str, TaskSpec], *, today: date | None = None
) -> list[Problem]:
    where = display_path(runbook.path)
    problems = list(runbook.problems)
    meta = runbook.meta
    if meta or not runbook.problems:
        for key in REQUIRED:
            if meta.get(key) in (None, "", []):
                problems.append(Problem(where, runbook.line_of(key), f"front matter: `{key}` is missing"))
        if runbook.severity and runbook.severity not in SEVERITIES:
            problems.append(
                Problem(
                    where,
                    runbook.line_of("severity"),
                    f"front matter: severity {runbook.severity}: use one of {', '.join(SEVERITIES)}",
                )
            )
        reviewed = meta.get("last_reviewed")
        if reviewed not in (None, ""):
            parsed = _date(reviewed)
            line = runbook.line_of("last_reviewed")
            if parsed is None:
                problems.append(
                    Problem(
                        where, line, f"front matter: last_reviewed {reviewed}: use a date, e.g. 2026-11-20"
                    )
                )
            elif parsed > (today or date.today()):
                problems.append(
                    Problem(where, line, f"front matter: last_reviewed {parsed}: is in the future")
                )
        if meta.get("triggers") not in (None, "", []) and not isinstance(meta.get("triggers"), list | str):
            problems.append(
                Problem(
                    where,
                    runbook.line_of("triggers"),
                    "front matter: triggers must be a list of alarm names or symptoms",
                )
            )
        raw_inputs = meta.get("inputs")
        if raw_inputs is not None and not isinstance(raw_inputs, dict):
            problems.append(
                Problem(
                    where,
                    runbook.line_of("inputs"),
                    "front matter: inputs must map a name to {prompt, default}",
                )
            )
        for name, spec in runbook.inputs.items():
            if spec.kind not in KINDS:
                problems.append(
                    Problem(
                        where,
                        runbook.line_of("inputs"),
                        f"front matter: input {name}: kind {spec.kind} is unknown; use one of {', '.join(KINDS)}",
                    )
                )
            elif spec.default is not None and not PLACEHOLDER.search(spec.default):
                try:
                    check_value(name, spec.default, spec.kind, source=f"default of {name}")
                except BadInput as exc:
                    problems.append(Problem(where, runbook.line_of("inputs"), f"front matter: {exc}"))
            if any(word in name.lower() for word in SECRET_WORDS):
                problems.append(
                    Problem(
                        where,
                        runbook.line_of("inputs"),
                        f"front matter: input {name} looks like a secret; runbooks never take secrets "
                        "(they would land in the timeline): tasks read them from Secrets Manager",
                    )
                )
            if name in BUILTINS:
                problems.append(
                    Problem(
                        where,
                        runbook.line_of("inputs"),
                        f"front matter: input {name} is built in; remove it from inputs",
                    )
                )
    if not runbook.steps:
        problems.append(
            Problem(where, runbook.body_line, "no steps; write them as `## 1. Title`, `## 2. Title`, ...")
        )
    for expected, step in enumerate(runbook.steps, 1):
        if step.number != expected:
            problems.append(
                Problem(
                    where,
                    step.line,
                    f"step {step.number}: expected step {expected} (number steps 1, 2, 3, ... in order)",
                )
            )
    known = set(BUILTINS) | set(runbook.inputs)
    for step in runbook.steps:
        for name in step.placeholders():
            if name not in known:
                problems.append(
                    Problem(
                        where,
                        step.line,
                        f"step {step.number}: placeholder {{{name}}} is not built in ({', '.join(BUILTINS)}) nor declared under inputs",
                    )
                )
        for block in step.blocks:
            for attr in block.bad_attrs:
                problems.append(
                    Problem(
                        where,
                        block.line,
                        f"code block attribute {attr}: accepted are run=diagnostic, run=mutating, manual, "
                        "ok=N, failed=N (the step to go to)",
                    )
                )
            numbers = [s.number for s in runbook.steps]
            for key, target in block.jumps.items():
                if block.run is None or target not in numbers or target <= step.number:
                    problems.append(
                        Problem(
                            where,
                            block.line,
                            f"{key}={target}: a runnable block can only jump forward to a step of this "
                            f"runbook (steps after {step.number}: "
                            f"{', '.join(str(n) for n in numbers if n > step.number) or 'none'})",
                        )
                    )
            if block.run is None:
                continue
            if block.run not in RUN_KINDS:
                problems.append(
                    Problem(
                        where, block.line, f"run={block.run}: use run=diagnostic (read-only) or run=mutating"
                    )
                )
                continue
            commands = block.commands()
            if len(commands) != 1:
                problems.append(
                    Problem(
                        where,
                        block.line,
                        f"a runnable block holds exactly one command; this one has {len(commands)}",
                    )
                )
            for line, command in commands:
                problems.extend(
                    Problem(where, line, p) for p in check_command(command, table, runnable=block.run)
                )
    for line, command in runbook.shown_commands + runbook.inline_commands:
        problems.extend(Problem(where, line, p) for p in check_command(command, table, runnable=None))
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message))


def check_alarms(
    runbooks: Iterable[Runbook], alarms: Iterable[str], *, config_name: str = "invoke.yaml"
) -> list[Problem]:
    covered = {t for rb in runbooks for t in rb.triggers}
    return [
        Problem(config_name, 0, f"alarm {alarm} (ops.alarms) has no runbook; add it to the triggers of one")
        for alarm in alarms
        if alarm not in covered
    ]


def check_all(
    runbooks: list[Runbook], table: dict[str, TaskSpec], alarms: Iterable[str], *, today: date | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    for runbook in runbooks:
        problems.extend(check_runbook(runbook, table, today=today))
    problems.extend(check_alarms(runbooks, alarms))
    return problems


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None
