"""The Sunday maintenance job: window, notice, plan against the time budget, run, report."""

# Only invoke and core.cli at module level: `inv --list` must not import psycopg,
# redis, boto3, yaml or rich. Each task imports the maintenance package when it runs.
from __future__ import annotations

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import ENV_HELP, JSON_HELP, console, ops_task, settings

PLAN_HELP = "plan name in maintenance/, e.g. sunday (default: ops.maintenance.plan)"


@ops_task(help={"env": ENV_HELP, "plan": PLAN_HELP, "json": JSON_HELP})
def window(c: Context, env: str | None = None, plan: str | None = None, json: bool = False) -> None:
    """Show the next maintenance window (start, end, cutoff) in UTC and local time, and whether it is open now.

    Example: inv maint.window --env production --json
    """
    from spywatcher_ops.maintenance.context import setup
    from spywatcher_ops.maintenance.window import current_or_next

    out = console(json)
    e = environment(c, env)
    s = setup(e, plan)
    now = e.clock.now()
    win = current_or_next(s.spec, now)
    data = {
        "env": e.name,
        "plan": s.plan.name,
        "window": s.spec.describe(),
        "notice_days": s.spec.notice_days,
        **win.to_dict(now),
    }
    out.emit_json(data)
    out.print(f"{e.name}: {s.spec.describe()}")
    if win.always:
        out.print("open now: yes (always)")
        return
    out.print(
        f"{'current' if win.inside(now) else 'next'} window: {data['start']} .. {data['end']} UTC, "
        f"cutoff {data['cutoff']}"
    )
    out.print(
        f"  local ({win.timezone}): {data['start_local']} .. {data['end_local']}, cutoff {data['cutoff_local']}"
    )
    out.print(f"open now: {'yes' if win.inside(now) else 'no'}")


@ops_task(help={"json": JSON_HELP})
def check(c: Context, json: bool = False) -> None:
    """Validate every maintenance plan: steps, settings, environments (exit 2 with file and line).

    Example: inv maint.check
    """
    from spywatcher_ops.core.errors import BadInput
    from spywatcher_ops.maintenance import plans
    from spywatcher_ops.maintenance.context import kinds, plans_folder

    out = console(json)
    s = settings(c)
    files, problems = plans.check_all(kinds(s), plans_folder(s))
    out.emit_json({"files": [f"maintenance/{p.name}" for p in files], "problems": [str(p) for p in problems]})
    for p in problems:
        out.failed(str(p))
    if problems:
        more = f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""
        raise BadInput(f"{problems[0]}{more}")
    for f in files:
        out.ok(f"maintenance/{f.name}")
    if not files:
        out.print("no plans in maintenance/")
