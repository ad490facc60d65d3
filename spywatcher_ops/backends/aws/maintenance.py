"""Data-tier maintenance on AWS: what the Sunday job asks RDS and ElastiCache.

Housekeeping runs over the master user's real connection (RdsDatabase.connection,
TLS always). Engine maintenance (pending actions, minor upgrade) is rds_maintenance.py.
ElastiCache service updates are elasticache_maintenance.py. Certificates
(certificates.py) are checked, not renewed: ACM renews the ones it issued, and an
imported one due for renewal fails the step's pre-check with the command to replace it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import Unsupported
from ...core.plan import Plan
from ...core.ports import Certificate, ConnectionInfo, MaintenanceResult, PendingChange, Progress

if TYPE_CHECKING:
    from ...core.environment import Environment


class AwsMaintenance:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.clients = clients

    def housekeeping_connection(self) -> ConnectionInfo:
        return self.environment.database.connection()

    def pending_changes(self) -> list[PendingChange]:
        from .rds_maintenance import RdsEngineMaintenance

        return RdsEngineMaintenance(self.environment, self.clients).pending_changes()

    def plan_database_maintenance(self) -> Plan:
        from .rds_maintenance import RdsEngineMaintenance

        return RdsEngineMaintenance(self.environment, self.clients).plan()

    def database_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        from .rds_maintenance import RdsEngineMaintenance

        return RdsEngineMaintenance(self.environment, self.clients).apply(plan, progress)

    def repair(self, *, progress: Progress) -> str:
        return "nothing to repair: RDS and ElastiCache finish the actions they accepted"

    def standby_ready(self, max_lag_s: float) -> str:
        # A Multi-AZ standby is RDS's own: not reachable, and RDS fails over only to a synchronous
        # one. The instance's status (the database check) is what RDS says about it.
        inst = self.environment.database.describe()
        if not inst.multi_az:
            return f"{inst.id} is Single-AZ: no standby"
        return f"{inst.id}: the Multi-AZ standby is RDS's own (synchronous, not reachable to ask)"

    def queue_change(self, name: str, value: str) -> dict[str, Any]:
        raise Unsupported(
            f"{self.environment.name}: change the RDS parameter group itself "
            "(ApplyMethod=pending-reboot); inv maint.pending lists what it holds"
        )

    def _not_yet(self, what: str) -> Unsupported:
        return Unsupported(
            f"{what} on {self.environment.name} (aws) is not part of the maintenance job yet; "
            "remove the step from this environment's plan"
        )

    def plan_cache_maintenance(self) -> Plan:
        from .elasticache_maintenance import CacheServiceUpdates

        return CacheServiceUpdates(self.environment, self.clients).plan()

    def cache_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        from .elasticache_maintenance import CacheServiceUpdates

        return CacheServiceUpdates(self.environment, self.clients).apply(plan, progress)

    def certificates(self) -> list[Certificate]:
        """ACM certificates tagged with this environment, and the API endpoint's (a real handshake)."""
        from .certificates import acm_certificates, endpoint_certificate

        out = acm_certificates(self.environment, self.clients)
        url = self.environment.env.raw.get("health_url")
        if url:
            out.append(endpoint_certificate(str(url)))
        return out

    def plan_renew_certificate(self, valid_days: int) -> Plan:
        raise self._not_yet(
            "renewing certificates (ACM renews what it issued; imported ones are replaced by hand)"
        )

    def renew_certificate(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        raise self._not_yet(
            "renewing certificates (ACM renews what it issued; imported ones are replaced by hand)"
        )
