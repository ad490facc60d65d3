"""`inv status`: the health of every part on one screen."""

from __future__ import annotations

from invoke import Context

from ..backends.table import environment
from ..core.cli import ENV_HELP, JSON_HELP, console, ops_task


@ops_task(
    name="status",
    help={
        "env": ENV_HELP,
        "timeout": "seconds each part may take before it is shown FAILED (the parts are read in parallel), "
        "e.g. 10 (default 5)",
        "json": JSON_HELP,
    },
)
def status(c: Context, env: str | None = None, timeout: float = 5.0, json: bool = False) -> None:
    """One screen with the health of every part: database, cache, application, nodes, alarms, drill, window.

    Read-only. Each line is OK, WARN or FAILED with a hint. Exit 0 when nothing
    is FAILED, 1 when a part is unhealthy, 3 when a part could not be read
    (error or --timeout) and nothing read is FAILED.
    Example: inv status --env production --timeout 10
    """
    from ..core.clock import iso
    from ..core.errors import BadInput, NotReady, OperationFailed
    from .collect import status as read_status
    from .model import exit_code
    from .render import render

    if not timeout > 0:
        raise BadInput(f"--timeout {timeout}: must be a positive number of seconds, e.g. 10")
    out = console(json)
    e = environment(c, env)
    started = e.clock.monotonic()
    results = read_status(e, timeout)
    took = e.clock.monotonic() - started
    lines = [line for r in results for line in r.lines]
    code = exit_code(lines)
    at = iso(e.clock.now()) or ""
    out.emit_json(
        {
            "env": e.name,
            "kind": e.kind,
            "at": at,
            "exit_code": code,
            "took_s": round(took, 3),
            "parts": [
                {
                    "part": r.name,
                    "duration_s": round(r.duration_s, 3),
                    "lines": [x.to_dict() for x in r.lines],
                }
                for r in results
            ],
        }
    )
    render(out, results, env=e.name, kind=e.kind, at=at, took=took)
    bad = sorted({x.part for x in lines if x.level == "FAILED"})
    if code == 1:
        raise OperationFailed(f"{len(bad)} part(s) FAILED on {e.name}: {', '.join(bad)}")
    if code == 3:
        raise NotReady(f"could not read {', '.join(bad)} on {e.name}")
