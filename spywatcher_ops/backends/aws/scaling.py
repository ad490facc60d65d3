"""Vertical scaling by the provider: the Scaling port of an aws environment.

RDS: `modify_db_instance(DBInstanceClass=...)` (Multi-AZ: the standby first, then a failover);
ElastiCache: `modify_replication_group(CacheNodeType=...)`. `now=False` leaves the change to
the provider's maintenance window. recovery/resize.py plans, measures and waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.ports import Sizing

if TYPE_CHECKING:
    from ...core.environment import Environment


class AwsScaling:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.clients = clients

    def database_size(self, instance_id: str) -> Sizing:
        raw = self.clients.client("rds").describe_db_instances(DBInstanceIdentifier=instance_id)[
            "DBInstances"
        ][0]
        return Sizing(
            resource=instance_id,
            size=str(raw.get("DBInstanceClass")),
            status=str(raw.get("DBInstanceStatus")),
            multi_az=bool(raw.get("MultiAZ")),
            window=raw.get("PreferredMaintenanceWindow"),
        )

    def resize_database(self, instance_id: str, size: str, *, now: bool) -> None:
        self.clients.client("rds").modify_db_instance(
            DBInstanceIdentifier=instance_id, DBInstanceClass=size, ApplyImmediately=now
        )

    def cache_size(self) -> Sizing:
        from .elasticache import ElastiCacheCache

        cache = ElastiCacheCache(self.environment, self.clients)
        group = cache.group()
        return Sizing(
            resource=cache.group_id,
            size=str(group.get("CacheNodeType") or "?"),
            status=str(group.get("Status")),
            multi_az=str(group.get("MultiAZ")) == "enabled",
            window=None,
        )

    def resize_cache(self, group_id: str, size: str, *, now: bool) -> None:
        self.clients.client("elasticache").modify_replication_group(
            ReplicationGroupId=group_id, CacheNodeType=size, ApplyImmediately=now
        )
