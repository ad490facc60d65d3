"""Cache failover: cache-failover, on both backends.

| scenario       | injects                                                                      | judged by                        |
|----------------|------------------------------------------------------------------------------|----------------------------------|
| cache-failover | sandbox: SIGKILL Redis primary, sentinels promote; ElastiCache TestFailover  | RTO/RPO cache (else application) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..preflight import cache_replica
from ..scenario import Check, DrillContext, DrillOptions
from .failover import PartFailover
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment
    from ...core.ports import Cache


@register
class CacheFailover(PartFailover):
    name = "cache-failover"
    injects = (
        "sandbox: SIGKILL the Redis primary, the sentinels promote the replica; aws: ElastiCache TestFailover"
    )
    part = "cache"
    rto_key = "cache"
    rpo_key = "cache"
    probes = ("cache-write", "cache-read")
    judged_by = ("cache-write", "cache-read")
    aws_actions: tuple[str, ...] = (
        "elasticache:DescribeReplicationGroups",
        "elasticache:DescribeCacheClusters",
        "elasticache:TestFailover",
        "elasticache:DescribeEvents",
    )

    def port(self, env: Environment) -> Cache:
        return env.cache

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        checks = [cache_replica(env)]
        if env.kind == "aws":
            from ..aws import test_failover_quota

            checks.append(test_failover_quota(env))
        return checks

    def setup(self, ctx: DrillContext) -> None:
        from ..probes import CACHE_KEY_PREFIX

        ctx.undo("cache-key", key=CACHE_KEY_PREFIX + ctx.run_id)
