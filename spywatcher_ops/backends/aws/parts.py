"""The parts of an `aws` environment: RDS, ElastiCache, EKS, Terraform."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .session import AwsClients

if TYPE_CHECKING:
    from ...core.environment import Environment
    from ...core.lock import Lock
    from ...core.ports import (
        Cache,
        Cluster,
        ClusterUpgrades,
        Credentials,
        Database,
        DataMaintenance,
        FaultInjector,
        Hosts,
        Infrastructure,
        Monitoring,
        Notifications,
        Permissions,
        Progress,
        Scaling,
    )


class AwsParts:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    @cached_property
    def clients(self) -> AwsClients:
        env = self.environment.env
        return AwsClients(env.region, env.profile, self.environment.journal.note_request_id)

    def database(self) -> Database:
        from .rds import RdsDatabase

        return RdsDatabase(self.environment, self.clients)

    def cache(self) -> Cache:
        from .elasticache import ElastiCacheCache

        return ElastiCacheCache(self.environment, self.clients)

    def cluster(self) -> Cluster | None:
        from .eks import EksCluster

        return EksCluster(self.environment, self.clients)

    def infrastructure(self) -> Infrastructure | None:
        from ..terraform import for_environment

        return for_environment(self.environment)

    def lock(self) -> Lock:
        from .lock import DynamoLock

        return DynamoLock(self.environment, self.clients)

    @cached_property
    def _identity(self) -> dict[str, str]:
        from .identity import caller_identity

        return caller_identity(self.clients)

    def maintenance(self) -> DataMaintenance:
        from .maintenance import AwsMaintenance

        return AwsMaintenance(self.environment, self.clients)

    def faults(self) -> FaultInjector | None:
        return None  # AWS's faults are the provider's: RDS reboot with failover, TestFailover (Database/Cache.failover)

    def ensure_running(self, progress: Progress) -> None:
        return None  # nothing to start: the provider runs RDS, ElastiCache and EKS

    def upgrades(self) -> ClusterUpgrades | None:
        from .eks_updates import EksUpgrades

        return EksUpgrades(self.environment, self.clients)

    def hosts(self) -> Hosts:
        from ..ssh import SshHosts

        return SshHosts(self.environment)

    def identity(self) -> dict[str, str]:
        return self._identity

    def monitoring(self) -> Monitoring | None:
        from .cloudwatch import AwsMonitoring

        return AwsMonitoring(self.clients)

    def notifications(self) -> Notifications | None:
        from .sns import AwsNotifications

        return AwsNotifications(self.clients)

    def permissions(self) -> Permissions | None:
        from .iam import AwsPermissions

        return AwsPermissions(self.environment, self.clients)

    def credentials(self) -> Credentials:
        from .credentials import AwsCredentials

        return AwsCredentials(self.environment, self.clients)

    def scaling(self) -> Scaling | None:
        from .scaling import AwsScaling

        return AwsScaling(self.environment, self.clients)

    def connect(self) -> None:
        # boto3 clients are not safe to create from several threads (inv status reads parts in parallel)
        for service in ("rds", "elasticache", "eks", "sts", "cloudwatch"):
            self.clients.client(service)
