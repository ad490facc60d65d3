"""Cache failover: cache-failover, on both backends.

| scenario       | injects                                                                      | judged by                        |
|----------------|------------------------------------------------------------------------------|----------------------------------|
| cache-failover | sandbox: SIGKILL Redis primary, sentinels promote; ElastiCache TestFailover  | RTO/RPO cache (else application) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.plan import Plan
from ..preflight import cache_replica
from ..runner import mark_fault
from ..scenario import Check, DrillContext, DrillOptions, Fault, Scenario
from .database import at_provider_fault
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment


@register
class CacheFailover(Scenario):
    name = "cache-failover"
    injects = (
        "sandbox: SIGKILL the Redis primary, the sentinels promote the replica; aws: ElastiCache TestFailover"
    )
    part = "cache"
    rto_key = "cache"
    rpo_key = "cache"
    kinds = ("sandbox", "aws")
    default_for = ("sandbox", "aws")
    probes = ("cache-write", "cache-read")
    judged_by = ("cache-write", "cache-read")
    timeout_s = 60.0
    aws_actions: tuple[str, ...] = (
        "elasticache:DescribeReplicationGroups",
        "elasticache:DescribeCacheClusters",
        "elasticache:TestFailover",
        "elasticache:DescribeEvents",
    )

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        checks = [cache_replica(env)]
        if env.kind == "aws":
            from ..aws import test_failover_quota

            checks.append(test_failover_quota(env))
        return checks

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        return env.cache.plan_failover()

    def setup(self, ctx: DrillContext) -> None:
        from ..probes import CACHE_KEY_PREFIX

        ctx.undo("cache-key", key=CACHE_KEY_PREFIX + ctx.run_id)

    def inject(self, ctx: DrillContext) -> Fault:
        cache = ctx.env.cache
        plan = cache.plan_failover()
        fault = mark_fault(ctx, plan.title)
        result = cache.failover(plan, progress=ctx.progress)
        fault.done_at = ctx.now()
        at_provider_fault(ctx, fault, result.events)
        ctx.step(
            "failover-result",
            "ok",
            old_primary=result.old_primary,
            new_primary=result.new_primary,
            started=result.started,
            finished=result.finished,
        )
        return fault
