"""The incident timeline: one append-only JSONL file per incident,
`<state_dir>/incidents/<ID>/timeline.jsonl`, written as each step ends.

Records (all carry `at`, UTC, and `run`, the id of one walk through a runbook):
  run-start / run-resume   runbook, title, env, who, steps
  input                    a value the responder typed (name, value)
  command                  step, index, command, argv, exit, outcome, duration_s, output (tail)
  step                     step, title, kind, outcome, duration_s
  note                     step, text
  run-end                  outcome: completed | completed-with-failures | aborted | interrupted | failed
Resume reads it back: a step whose last outcome is finished is not run again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.clock import Clock
from ..core.errors import BadInput
from ..core.journal import Journal, read

FINISHED_STEP = ("done", "skipped", "acknowledged", "failed", "shown")
FINISHED_COMMAND = ("ok", "failed", "skipped")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_incident_id(value: str) -> str:
    if not _ID.match(value) or ".." in value:
        raise BadInput(
            f"--incident {value}: not a valid incident id; use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, e.g. INC-2041"
        )
    return value


def incident_dir(state_dir: Path, incident: str) -> Path:
    return state_dir / "incidents" / check_incident_id(incident)


class Timeline:
    def __init__(self, state_dir: Path, incident: str, clock: Clock) -> None:
        self.incident = incident
        self.path = incident_dir(state_dir, incident) / "timeline.jsonl"
        # The audit journal's writer: append, fsync, `at` stamped, secrets masked by callers.
        self._writer = Journal(self.path, clock)

    def write(self, record: dict[str, Any]) -> None:
        self._writer.write(record)

    def records(self) -> list[dict[str, Any]]:
        return read(self.path)


@dataclass
class RunState:
    run: str
    runbook: str
    env: str
    status: str  # last run-* event: started | resumed | completed | aborted | interrupted | failed
    inputs: dict[str, str] = field(default_factory=dict)
    steps_done: set[int] = field(default_factory=set)
    commands_done: set[tuple[int, int]] = field(default_factory=set)
    stopped_at: int | None = None  # first step not finished
    step_titles: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        # Walked to the end; "completed-with-failures": a check failed on the way (exit 1).
        return self.status in ("completed", "completed-with-failures")


def runs(records: list[dict[str, Any]]) -> dict[str, RunState]:
    out: dict[str, RunState] = {}
    for r in records:
        run_id = r.get("run")
        event = r.get("event")
        if not run_id:
            continue
        if event == "run-start":
            out[run_id] = RunState(
                run_id,
                r.get("runbook", "?"),
                r.get("env", "?"),
                "started",
                step_titles=list(r.get("steps") or []),
            )
            continue
        state = out.get(run_id)
        if state is None:
            continue
        if event == "run-resume":
            state.status = "resumed"
        elif event == "run-end":
            state.status = str(r.get("outcome"))
        elif event == "input":
            state.inputs[str(r["name"])] = str(r["value"])
        elif event == "command":
            key = (int(r["step"]), int(r["index"]))
            if r.get("outcome") in FINISHED_COMMAND:
                state.commands_done.add(key)
            else:
                state.commands_done.discard(key)
        elif event == "step":
            if r.get("outcome") in FINISHED_STEP:
                state.steps_done.add(int(r["step"]))
            else:
                state.steps_done.discard(int(r["step"]))
    for state in out.values():
        total = len(state.step_titles)
        state.stopped_at = next((n for n in range(1, total + 1) if n not in state.steps_done), None)
    return out


def unfinished(records: list[dict[str, Any]], runbook: str | None = None) -> list[RunState]:
    return [s for s in runs(records).values() if not s.finished and (runbook is None or s.runbook == runbook)]


def all_unfinished(state_dir: Path) -> list[tuple[str, RunState]]:
    """(incident, run) for every run that did not complete, to tell a responder what --resume can pick up."""
    base = state_dir / "incidents"
    out: list[tuple[str, RunState]] = []
    if base.is_dir():
        for folder in sorted(base.iterdir()):
            for state in unfinished(read(folder / "timeline.jsonl")):
                out.append((folder.name, state))
    return out


# rendering --------------------------------------------------------------------


def _when(at: str | None) -> str:
    return (at or "").replace("T", " ")[:19] + ("Z" if at else "")


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def describe(r: dict[str, Any]) -> tuple[str, str, str] | None:
    """(what, outcome, detail) for one record, or None for records not shown in the table."""
    event = r.get("event")
    if event == "run-start":
        return (f"runbook {r.get('runbook')} started on {r.get('env')}", "started", r.get("title", ""))
    if event == "run-resume":
        return (
            f"runbook {r.get('runbook')} resumed on {r.get('env')}",
            "resumed",
            f"from step {r.get('from_step')}",
        )
    if event == "run-end":
        return (f"runbook {r.get('runbook')} ended", str(r.get("outcome")), r.get("detail") or "")
    if event == "input":
        return (f"value {r.get('name')}", "entered", f"{r.get('name')} = {r.get('value')}")
    if event == "command":
        code = r.get("exit")
        detail = f"`{r.get('command')}`" + (f" exit {code}" if code is not None else "")
        if r.get("duration_s") is not None:
            detail += f", {r['duration_s']} s"
        return (f"{r.get('step')}. {r.get('title')}", str(r.get("outcome")), detail)
    if event == "step":
        kind = r.get("kind", "")
        detail = f"{kind} step" + (f", {r['duration_s']} s" if r.get("duration_s") is not None else "")
        return (f"{r.get('step')}. {r.get('title')}", str(r.get("outcome")), detail)
    if event == "note":
        return (f"{r.get('step')}. {r.get('title', '')}".strip(), "note", r.get("text", ""))
    return None


def render_markdown(incident: str, records: list[dict[str, Any]]) -> str:
    lines = [f"# Incident {incident}: timeline", ""]
    if not records:
        return "\n".join(lines + ["(no records)", ""])
    people = sorted({str(r.get("who")) for r in records if r.get("who")})
    envs = sorted({str(r.get("env")) for r in records if r.get("env")})
    lines += [
        f"- first record: {_when(records[0].get('at'))}",
        f"- last record: {_when(records[-1].get('at'))}",
        f"- environment: {', '.join(envs) or '?'}",
        f"- responders: {', '.join(people) or '?'}",
        "",
    ]
    lines += ["| time (UTC) | runbook | what | outcome | detail |", "|---|---|---|---|---|"]
    for r in records:
        row = describe(r)
        if row is None:
            continue
        what, outcome, detail = row
        lines.append(
            f"| {_when(r.get('at'))} | {_cell(r.get('runbook'))} | {_cell(what)} | {_cell(outcome)} | {_cell(detail)} |"
        )
    outputs = [r for r in records if r.get("event") == "command" and (r.get("output") or "").strip()]
    if outputs:
        lines += ["", "## Command output", ""]
        for r in outputs:
            lines += [
                f"### {_when(r.get('at'))} step {r.get('step')}: `{r.get('command')}` (exit {r.get('exit')})",
                "",
                "```text",
                str(r.get("output")).rstrip("\n").replace("```", "'''"),
                "```",
                "",
            ]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_json(incident: str, records: list[dict[str, Any]]) -> str:
    return json.dumps({"incident": incident, "records": records}, indent=2, default=str) + "\n"
