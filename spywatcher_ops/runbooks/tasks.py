"""Incident runbooks: list, show, walk through step by step, lint."""

from __future__ import annotations

import os
from typing import Any

from invoke import Context

from ..backends.table import environment
from ..core.cli import ENV_HELP, JSON_HELP, console, ops_task, settings
from ..core.errors import BadInput, OperationFailed

PATH_HELP = (
    "an extra folder of runbook .md files (repeatable; config: ops.runbooks.paths), e.g. --path ./my-runbooks"
)
NAME_HELP = (
    "runbook name as `inv runbook.list` shows it, e.g. data-corruption, or an alarm name one of its "
    "triggers names, e.g. spywatcher-production-db-unavailable"
)
INCIDENT_HELP = "incident id the timeline is filed under, e.g. INC-2041 (default: a new id from the time)"


def _paths(c: Context, path: list[str] | None) -> list[str]:
    configured = (settings(c).raw.get("runbooks") or {}).get("paths") or []
    return [str(p) for p in configured] + list(path or [])


def _root() -> str:
    from ..core.config import PROJECT_ROOT  # here, not at module level: `inv --list` skips it (2.5 ms)

    return str(PROJECT_ROOT) if (PROJECT_ROOT / "tasks.py").exists() else os.getcwd()


@ops_task(
    name="list",
    iterable=["path"],
    help={"path": PATH_HELP, "json": JSON_HELP},
)
def list_(c: Context, path: Any = None, json: bool = False) -> None:
    """List every runbook with its triggers (alarm or symptom), severity and a one-line summary.

    In a terminal: a table. Piped: one line per runbook, tab-separated and never cut:
    name, severity, triggers (joined by "; "), summary; so `| grep ALARM` finds it.
    Example: inv runbook.list | grep spywatcher-production-db-unavailable
    """
    from .library import load_all

    out = console(json)
    runbooks = load_all(_paths(c, path))
    out.emit_json(
        [
            {
                "name": rb.name,
                "severity": rb.severity,
                "triggers": rb.triggers,
                "summary": rb.summary,
                "title": rb.title,
                "owner": rb.owner,
                "mutating": rb.mutating,
                "path": str(rb.path),
            }
            for rb in runbooks
        ]
    )
    if json:
        return
    if not out.out.is_terminal:
        import sys

        for rb in runbooks:
            sys.stdout.write("\t".join([rb.name, rb.severity, "; ".join(rb.triggers), rb.summary]) + "\n")
        return
    from rich.table import Table

    table = Table(show_lines=True)
    table.add_column("runbook", no_wrap=True)
    table.add_column("severity")
    table.add_column("triggers (alarm or symptom)", overflow="fold")  # alarm names stay whole
    table.add_column("summary")
    for rb in runbooks:
        table.add_row(rb.name, rb.severity, "\n".join(rb.triggers), rb.summary)
    out.out.print(table)


@ops_task(
    iterable=["path"],
    help={"name": NAME_HELP, "path": PATH_HELP, "raw": "print the Markdown source instead of rendering it"},
)
def show(c: Context, name: str, path: Any = None, raw: bool = False) -> None:
    """Show a runbook rendered for the terminal: its front matter, then every step.

    NAME: the runbook's name, or an alarm name one of its triggers names (as the pager shows it).
    Example: inv runbook.show spywatcher-production-db-unavailable
    """
    from .library import find
    from .render import render

    runbook = find(name, _paths(c, path))
    render(runbook, raw=raw)


@ops_task(
    iterable=["path", "var"],
    help={
        "name": NAME_HELP,
        "env": ENV_HELP,
        "incident": INCIDENT_HELP,
        "resume": "continue the unfinished run of this runbook in --incident from its first unfinished step",
        "yes": "unattended: run mutating steps without asking (and answer the tasks' own confirmations); "
        "production also needs SPYWATCHER_OPS_CONFIRM=<env>",
        "var": "a value for a runbook input, NAME=VALUE (repeatable), e.g. --var to=2026-11-25T14:03:00Z",
        "path": PATH_HELP,
    },
)
def run(
    c: Context,
    name: str,
    env: Any = None,
    incident: Any = None,
    resume: bool = False,
    yes: bool = False,
    var: Any = None,
    path: Any = None,
) -> None:
    """Walk through a runbook: diagnostics run, every change asks first, each step goes on the incident timeline.

    NAME may be the alarm name from the page. At every prompt (values too): `note`, `skip`,
    `abort`; line editing and history with the arrow keys. A change is confirmed once, at
    the runbook's prompt (production: type the environment's name), and the task gets it.
    Example: inv runbook.run spywatcher-production-db-unavailable --env staging --incident INC-2041
    """
    from ..core.clock import SystemClock, utc_stamp
    from .check import check_runbook, load_collection, task_table
    from .engine import CommandRunner, Options, Terminal, Walk
    from .library import find
    from .timeline import Timeline, all_unfinished, check_incident_id

    values = _parse_vars(var or [])
    runbook = find(name, _paths(c, path))
    environ = environment(c, env)
    state_dir = environ.settings.state_dir
    if resume and not incident:
        pending = [
            f"{inc} ({s.runbook} on {s.env}, stopped at step {s.stopped_at})"
            for inc, s in all_unfinished(state_dir)
            if s.runbook == runbook.name
        ]
        raise BadInput(
            f"--resume needs --incident ID; unfinished runs of {runbook.name}: {'; '.join(pending) or 'none'}"
        )
    incident = check_incident_id(incident or f"INC-{utc_stamp(SystemClock().now())}")
    table = task_table(load_collection(_root()))
    problems = check_runbook(runbook, table)
    if problems:
        listing = "; ".join(str(p) for p in problems[:5])
        raise BadInput(f"runbook {runbook.name} does not pass runbook.check, so it is not run: {listing}")
    options = Options(
        env=environ.name,
        incident=incident,
        production=environ.env.production,
        resume=resume,
        yes=yes,
        values={**builtins(environ, incident), **values},
    )
    runner = CommandRunner(
        root=_root(),
        state_dir=str(state_dir),
        table=table,
        config_file=getattr(c.config, "_runtime_path", None),
        yes=yes,
        incident=incident,
    )
    walk = Walk(
        runbook,
        options,
        timeline=Timeline(state_dir, incident, environ.clock),
        terminal=Terminal(history=state_dir / "runbooks" / "prompt-history"),
        execute=runner,
        clock=environ.clock,
        table=table,
    )
    walk.prepare()  # refusals (no terminal, unfinished run, missing values) happen before any record
    with environ.operation(
        "runbook.run",
        {"runbook": runbook.name, "incident": incident, "resume": resume, "yes": yes},
        mutating=False,
    ) as op:
        walk.audit = op.step
        summary = walk.run()
        op.result = {"incident": incident, "run": summary.run, "outcome": summary.outcome}


def builtins(environ: Any, incident: str) -> dict[str, str]:
    """The placeholders every runbook may use; resource names honour config overrides."""
    project = environ.settings.project
    return {
        "env": environ.name,
        "incident": incident,
        "project": project,
        "region": environ.env.region or "",
        "db_instance": environ.env.resource(project, "db"),
        "db_secret": environ.env.resource(project, "db-credentials"),
    }


def _parse_vars(items: list[str]) -> dict[str, str]:
    from .model import BUILTINS

    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise BadInput(f"--var {item}: use NAME=VALUE, e.g. --var to=2026-11-25T14:03:00Z")
        if key.strip() in BUILTINS:
            raise BadInput(
                f"--var {key.strip()}: built in, not an input; use --env / --incident to choose it"
            )
        out[key.strip()] = value.strip()
    return out


@ops_task(
    help={
        "incident": "the incident id given to runbook.run, e.g. INC-2041",
        "format": "md (a table and the command output, ready for a postmortem) or json",
        "json": JSON_HELP + " (the same as --format json)",
    },
)
def timeline(c: Context, incident: Any = None, format: str = "md", json: bool = False) -> None:
    """Print an incident's timeline (every step, command, answer and note, with times) for the postmortem.

    Example: inv runbook.timeline --incident INC-2041 --format md
    """
    import sys

    from .timeline import Timeline, render_json, render_markdown

    if json:
        format = "json"
    if format not in ("md", "json"):
        raise BadInput(f"--format {format}: use md or json")
    state_dir = settings(c).state_dir
    if not incident:
        base = state_dir / "incidents"
        known = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
        raise BadInput(f"--incident is required; incidents on record: {', '.join(known) or 'none'}")
    from ..core.clock import SystemClock

    line = Timeline(state_dir, incident, SystemClock())
    records = line.records()
    if not records:
        base = state_dir / "incidents"
        known = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
        raise BadInput(
            f"--incident {incident}: no timeline; incidents on record: {', '.join(known) or 'none'}"
        )
    text = render_markdown(incident, records) if format == "md" else render_json(incident, records)
    sys.stdout.write(text)


@ops_task(
    iterable=["path"],
    help={
        "path": PATH_HELP,
        "json": JSON_HELP,
        "write_readme": "rewrite the runbook list in runbooks/README.md from the runbooks' front matter, "
        "e.g. after adding one: inv runbook.check --write-readme",
    },
)
def check(c: Context, path: Any = None, json: bool = False, write_readme: bool = False) -> None:
    """Lint every runbook: front matter, step numbering, every inv command and option exists, every alarm has one.

    Also checks that runbooks/README.md lists exactly the shipped runbooks with
    their current triggers (--write-readme regenerates that list).
    Problems are printed as FILE:LINE: problem; exit 1 when there is any.
    Example: inv runbook.check --write-readme
    """
    from . import index
    from .check import check_all, load_collection, task_table
    from .library import SHIPPED, load_all

    out = console(json)
    runbooks = load_all(_paths(c, path))
    shipped = [rb for rb in runbooks if rb.path.parent == SHIPPED]
    if write_readme and index.write(SHIPPED / "README.md", shipped):
        out.info(f"rewrote the runbook list in {SHIPPED / 'README.md'}")
    alarms = [str(a) for a in (settings(c).raw.get("alarms") or [])]
    problems = check_all(runbooks, task_table(load_collection(_root())), alarms)
    problems += index.check(SHIPPED / "README.md", shipped)
    out.emit_json({"runbooks": [str(rb.path) for rb in runbooks], "problems": [str(p) for p in problems]})
    for problem in problems:
        out.print(str(problem))
    if problems:
        raise OperationFailed(f"{len(problems)} problem(s) in {len(runbooks)} runbook(s)")
    out.ok(f"{len(runbooks)} runbook(s) checked: {', '.join(rb.name for rb in runbooks)}")
