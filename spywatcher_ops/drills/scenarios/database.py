"""Database failover: db-failover, on both backends.

| scenario       | injects                                                       | judged by        |
|----------------|---------------------------------------------------------------|------------------|
| db-failover    | sandbox: SIGKILL primary + promote; RDS: reboot ForceFailover | RTO/RPO database |

Also the base every database scenario shares (the drill table, the provider's
fault instant). The families: database.py, cache.py, proofs.py (restores and
the measurement proofs), application.py; registry.py loads them in that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.plan import Plan
from ..preflight import standby_ready
from ..probes import ensure_drill_table
from ..runner import mark_fault
from ..scenario import Check, DrillContext, DrillOptions, Fault, Scenario
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment


def at_provider_fault(ctx: DrillContext, fault: Fault, events: list[Any]) -> None:
    """Move the fault instant from "we asked" to "it happened" when the provider
    reports the instant (the sandbox's `fault` event: the SIGKILL itself)."""
    killed = [e.at.timestamp() for e in events if e.code == "fault"]
    if killed and fault.at <= killed[0] <= (fault.done_at or ctx.now()):
        fault.details["requested_at"] = fault.at
        fault.at = killed[0]
        ctx.step("fault", "injected", t=fault.at, description=fault.description, **fault.details)


class DbScenario(Scenario):
    part = "database"
    rto_key = "database"
    rpo_key = "database"

    def setup(self, ctx: DrillContext) -> None:
        ensure_drill_table(ctx.env.database.connection(), ctx.options.cadence)
        ctx.undo("drill-rows", run_id=ctx.run_id)


@register
class DbFailover(DbScenario):
    name = "db-failover"
    injects = "sandbox: SIGKILL the primary, promote the standby, rebuild; aws: RDS reboot with ForceFailover"
    kinds = ("sandbox", "aws")
    default_for = ("sandbox", "aws")
    probes = ("db-write", "db-read")
    judged_by = ("db-write", "db-read")
    timeout_s = 60.0
    aws_actions: tuple[str, ...] = (
        "rds:DescribeDBInstances",
        "rds:RebootDBInstance",
        "rds:DescribeEvents",
        "secretsmanager:GetSecretValue",
    )  # the probes' credentials

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        return [standby_ready(env)]

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        return env.database.plan_failover()

    def inject(self, ctx: DrillContext) -> Fault:
        db = ctx.env.database
        plan = db.plan_failover()
        fault = mark_fault(ctx, plan.title)
        result = db.failover(plan, progress=ctx.progress)
        fault.done_at = ctx.now()
        at_provider_fault(ctx, fault, result.events)
        fault.details.update(old_primary=result.old_primary, new_primary=result.new_primary)
        ctx.step(
            "failover-result",
            "ok",
            old_primary=result.old_primary,
            new_primary=result.new_primary,
            started=result.started,
            finished=result.finished,
        )
        return fault

    def recheck(self, env: Environment) -> list[Check]:
        # the sandbox rebuilds its standby in seconds; RDS reports "available" again within minutes
        return [standby_ready(env, deadline_s=30.0 if env.kind == "sandbox" else 600.0)]
