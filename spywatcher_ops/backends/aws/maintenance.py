"""Data-tier maintenance on AWS: what the Sunday job asks RDS and ElastiCache.

Housekeeping runs over the master user's real connection (RdsDatabase.connection,
TLS always). Pending maintenance is read with RDS describe_pending_maintenance_actions
(moto 5.2 lacks it: the tests use botocore's Stubber). Applying engine, cache and
certificate maintenance on AWS is not in this part of the job yet: those calls
say so (exit 2) instead of pretending.
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
        rds = self.clients.client("rds")
        arn = rds.describe_db_instances(DBInstanceIdentifier=self.environment.database.instance_id())[
            "DBInstances"
        ][0]["DBInstanceArn"]
        reply = rds.describe_pending_maintenance_actions(ResourceIdentifier=arn)
        out = []
        for resource in reply.get("PendingMaintenanceActions", []):
            for action in resource.get("PendingMaintenanceActionDetails", []):
                out.append(
                    PendingChange(
                        "database",
                        str(action.get("Action")),
                        None,
                        None,
                        "next-maintenance"
                        if action.get("OptInStatus") == "next-maintenance"
                        else "immediate",
                        str(action.get("Description") or ""),
                    )
                )
        return out

    def repair(self, *, progress: Progress) -> str:
        return "nothing to repair: RDS and ElastiCache finish the actions they accepted"

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

    def plan_database_maintenance(self) -> Plan:
        raise self._not_yet("database engine maintenance")

    def database_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        raise self._not_yet("database engine maintenance")

    def plan_cache_maintenance(self) -> Plan:
        raise self._not_yet("cache maintenance")

    def cache_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        raise self._not_yet("cache maintenance")

    def certificates(self) -> list[Certificate]:
        raise self._not_yet("certificate checks")

    def plan_renew_certificate(self, valid_days: int) -> Plan:
        raise self._not_yet("certificate renewal")

    def renew_certificate(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        raise self._not_yet("certificate renewal")
