"""The job's pre-checks, before anything changes: no paging alarm firing, the
database and the cache healthy, no earlier run left unfinished. (The fresh
pre-maintenance snapshot is taken by the run itself, after these pass.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import OperationFailed, OpsError
from .steps import Check

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import Monitoring

ALARM, NO_DATA = "ALARM", "INSUFFICIENT_DATA"  # CloudWatch's alarm states


def alarms(env: Environment) -> Check:
    """No CloudWatch alarm of ops.alarms (the paging ones) in state ALARM."""
    names = [str(n) for n in (env.settings.raw.get("alarms") or [])]
    monitoring = env.parts.monitoring()
    if monitoring is None:
        return Check("paging alarms", "ok", f"{env.kind}: no CloudWatch alarms to consult")
    if env.kind == "sandbox":
        return _evaluated(monitoring)
    if not names:
        return Check("paging alarms", "warn", "ops.alarms lists no paging alarm; nothing to consult")
    try:
        firing = monitoring.firing(names)
    except OperationFailed as exc:  # the provider refused; no credentials stays NotReady (exit 3)
        return Check(
            "paging alarms",
            "failed",
            f"could not read the alarms: {exc.message}",
            hint="the role needs cloudwatch:DescribeAlarms",
        )
    if firing:
        return Check(
            "paging alarms",
            "failed",
            f"in ALARM: {', '.join(sorted(firing))}",
            hint="maintenance does not start while someone is being paged; follow the alarm's runbook",
        )
    return Check("paging alarms", "ok", f"none of {len(names)} paging alarm(s) in ALARM")


def _evaluated(monitoring: Monitoring) -> Check:
    """The sandbox has none of ops.alarms (production's CloudWatch names): what pages there are
    its own alarms, evaluated from its servers now; asking it for production's names measured
    nothing while the check said it had looked."""
    try:
        evaluated = monitoring.alarms([ALARM, "OK", NO_DATA])
    except OperationFailed as exc:
        return Check("paging alarms", "failed", f"could not evaluate the sandbox's alarms: {exc.message}")
    firing = sorted(str(a["AlarmName"]) for a in evaluated if a["StateValue"] == ALARM)
    if firing:
        return Check(
            "paging alarms",
            "failed",
            f"in ALARM (sandbox, evaluated now): {', '.join(firing)}",
            hint="maintenance does not start while an alarm fires; `inv oncall --env sandbox` names its runbook",
        )
    blind = sorted(str(a["AlarmName"]) for a in evaluated if a["StateValue"] == NO_DATA)
    return Check(
        "paging alarms",
        "ok",
        f"none of {len(evaluated)} sandbox alarm(s) in ALARM, evaluated now"
        + (f" ({len(blind)} without data: {', '.join(blind)})" if blind else ""),
    )


def database(env: Environment) -> Check:
    try:
        inst = env.database.describe()
    except OpsError as exc:
        return Check("database healthy", "failed", exc.message, hint=exc.hint)
    if inst.status != "available":
        return Check(
            "database healthy",
            "failed",
            f"{inst.id} is {inst.status}",
            hint="run `inv sandbox.up` to repair the sandbox"
            if env.kind == "sandbox"
            else "wait until the instance is available",
        )
    try:
        from ..drills.probes import Cadence, pg_connect

        with pg_connect(env.database.connection(), Cadence()) as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure to query is the finding
        return Check("database healthy", "failed", f"{inst.id}: SELECT 1 failed: {type(exc).__name__}: {exc}")
    return Check(
        "database healthy",
        "ok",
        f"{inst.id} {inst.status}, answers queries" + (", Multi-AZ" if inst.multi_az else ""),
    )


def cache(env: Environment) -> Check:
    try:
        nodes = [n for n in env.cache.status() if n.role in ("primary", "replica")]
    except OpsError as exc:
        return Check("cache healthy", "failed", exc.message, hint=exc.hint)
    down = [n.id for n in nodes if not n.alive]
    if not nodes or down:
        return Check(
            "cache healthy",
            "failed",
            f"down: {', '.join(down) or 'no nodes'}",
            hint="run `inv sandbox.up`" if env.kind == "sandbox" else "see `inv cache.status`",
        )
    return Check("cache healthy", "ok", f"{len(nodes)} node(s) up")


def unfinished(runs: list[dict[str, Any]]) -> Check:
    """`runs`: the run summaries of journal.runs(); any still unfinished blocks a new run."""
    open_runs = [r for r in runs if r["state"] == "unfinished"]
    if open_runs:
        r = open_runs[-1]
        return Check(
            "no unfinished run",
            "failed",
            f"run {r['run_id']} ({r['started_at']}) stopped at step {r['next_step'] or '?'}: {r['why']}; "
            "what that step was changing may be left part-way (--resume first brings it back "
            "to a known state, then runs the step again)",
            hint=f"finish it with `inv maint.run --env {r['env']} --resume {r['run_id']}`",
        )
    return Check("no unfinished run", "ok", "every earlier run finished")


def all_checks(env: Environment, runs: list[dict[str, Any]], *, needs_cache: bool) -> list[Check]:
    checks = [unfinished(runs), alarms(env), database(env)]
    if needs_cache:
        checks.append(cache(env))
    return checks
