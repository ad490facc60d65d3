"""The parts of the `sandbox` environment: local PostgreSQL and Redis processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


class SandboxParts:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def database(self) -> Database:
        from .postgres.database import SandboxDatabase

        return SandboxDatabase(self.environment)

    def cache(self) -> Cache:
        from .redis.cache import SandboxCache

        return SandboxCache(self.environment)

    def cluster(self) -> Cluster | None:
        return None  # the sandbox has no Kubernetes cluster; Environment.cluster says so

    def infrastructure(self) -> Infrastructure | None:
        from ..terraform import for_environment

        return for_environment(self.environment)

    def lock(self) -> Lock:
        return self.environment.file_lock()

    def maintenance(self) -> DataMaintenance:
        from .maintenance import SandboxMaintenance

        return SandboxMaintenance(self.environment)

    def faults(self) -> FaultInjector:
        from .faults import SandboxFaults

        return SandboxFaults(self.environment)

    def ensure_running(self, progress: Progress) -> None:
        from .lifecycle import up

        up(self.environment, progress)

    def upgrades(self) -> ClusterUpgrades | None:
        return None  # no Kubernetes cluster

    def hosts(self) -> Hosts:
        from ..ssh import SshHosts

        return SshHosts(self.environment)

    def identity(self) -> dict[str, str]:
        return {}

    def monitoring(self) -> Monitoring | None:
        from .monitoring import SandboxMonitoring  # alarms evaluated from the sandbox's state now

        return SandboxMonitoring(self.environment)

    def notifications(self) -> Notifications | None:
        return None  # no SNS

    def permissions(self) -> Permissions | None:
        return None  # local processes run as whoever started them: no policy to simulate

    def credentials(self) -> Credentials:
        from .postgres.credentials import SandboxCredentials

        return SandboxCredentials(self.environment)

    def scaling(self) -> Scaling | None:
        return None  # no instance class: db.resize becomes memory settings (DataMaintenance)

    def connect(self) -> None:
        return None  # no provider clients
