"""The parts of the `sandbox` environment: local PostgreSQL and Redis processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...core.environment import Environment


class SandboxParts:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def database(self) -> Any:
        from .database import SandboxDatabase

        return SandboxDatabase(self.environment)

    def cache(self) -> Any:
        from .cache import SandboxCache

        return SandboxCache(self.environment)

    def cluster(self) -> Any:
        return None  # the sandbox has no Kubernetes cluster; Environment.cluster says so

    def infrastructure(self) -> Any:
        from ..terraform import for_environment

        return for_environment(self.environment)

    def lock(self) -> Any:
        return self.environment.file_lock()

    def maintenance(self) -> Any:
        from .maintenance import SandboxMaintenance

        return SandboxMaintenance(self.environment)

    def identity(self) -> dict[str, str]:
        return {}
