"""`inv oncall`: the first command after a page."""

from __future__ import annotations

from invoke import Context

from ..backends.table import environment
from ..core.cli import ENV_HELP, JSON_HELP, console, ops_task, settings


@ops_task(
    name="oncall",
    help={
        "env": ENV_HELP,
        "all": "also show alarms in INSUFFICIENT_DATA (a metric that stopped reporting), e.g. --all",
        "json": JSON_HELP + " (for chat bots)",
    },
)
def oncall(c: Context, env: str | None = None, all: bool = False, json: bool = False) -> None:  # noqa: A002
    """Every alarm firing now, newest first, with the runbook that covers it and the command to start it.

    Read-only. An alarm no runbook covers is shown in red with the nearest
    runbooks by trigger text, and the exit code is 1.
    Example: inv oncall --env production --all
    """
    from ..core.errors import OperationFailed
    from ..runbooks.library import load_all
    from .alarms import read_alarms
    from .render import render
    from .triage import triage

    out = console(json)
    e = environment(c, env)
    states = ["ALARM", "INSUFFICIENT_DATA"] if all else ["ALARM"]
    runbooks = load_all([str(p) for p in (settings(c).raw.get("runbooks") or {}).get("paths") or []])
    rows = triage(
        read_alarms(e, states),
        runbooks,
        env=e.name,
        project=e.settings.project,
        environments=list(e.settings.environments),
    )
    now = e.clock.now()
    where = (
        f"CloudWatch {e.env.region or 'default region'}"
        if e.kind == "aws"
        else f"{e.kind} state, evaluated now (no alarm history)"
    )
    out.emit_json(
        {
            "env": e.name,
            "source": where,
            "states": states,
            "at": now.isoformat(),
            "alarms": [r.to_dict(now) for r in rows],
        }
    )
    render(out, rows, env=e.name, where=where, states=states, now=now)
    uncovered = [r.alarm.name for r in rows if not r.covered]
    if uncovered:
        raise OperationFailed(
            f"{len(uncovered)} alarm(s) without a runbook: {', '.join(uncovered)}; "
            "add each name to the triggers of a runbook (and to ops.alarms if it pages)"
        )
