"""Database failover: db-failover, on both backends.

| scenario       | injects                                                       | judged by        |
|----------------|---------------------------------------------------------------|------------------|
| db-failover    | sandbox: SIGKILL primary + promote; RDS: reboot ForceFailover | RTO/RPO database |

Also the base every database scenario shares (the drill table, both database
probes). The families: database.py, cache.py, proofs.py (restores and the
measurement proofs), application.py; registry.py loads them in that order.
What the database and cache failovers share is in failover.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..preflight import standby_ready
from ..probes import ensure_drill_table
from ..scenario import Check, DrillContext, DrillOptions, Fault, Scenario
from .failover import PartFailover, failover_result
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment
    from ...core.ports import Database

DB_PROBES = ("db-write", "db-read")  # the writer and the reader probe of the database


class DbScenario(Scenario):
    part = "database"
    rto_key = "database"
    rpo_key = "database"

    def setup(self, ctx: DrillContext) -> None:
        ensure_drill_table(ctx.env.database.connection(), ctx.options.cadence)
        ctx.undo("drill-rows", run_id=ctx.run_id)


@register
class DbFailover(DbScenario, PartFailover):
    name = "db-failover"
    injects = "sandbox: SIGKILL the primary, promote the standby, rebuild; aws: RDS reboot with ForceFailover"
    probes = DB_PROBES
    judged_by = DB_PROBES
    aws_actions: tuple[str, ...] = (
        "rds:DescribeDBInstances",
        "rds:RebootDBInstance",
        "rds:DescribeEvents",
        "secretsmanager:GetSecretValue",
    )  # the probes' credentials

    def port(self, env: Environment) -> Database:
        return env.database

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        return [standby_ready(env)]

    def inject(self, ctx: DrillContext) -> Fault:
        fault, result = self.failover(ctx)
        fault.details.update(old_primary=result.old_primary, new_primary=result.new_primary)
        failover_result(ctx, result)
        return fault

    def recheck(self, env: Environment) -> list[Check]:
        # the sandbox rebuilds its standby in seconds; RDS reports "available" again within minutes
        return [standby_ready(env, deadline_s=30.0 if env.kind == "sandbox" else 600.0)]
