"""ElastiCache service updates for the replication group, applied inside the
window: `describe_update_actions` (not yet applied) -> `batch_apply_update_action`
-> waited on until each update action is complete. ElastiCache applies an update
node by node (replicas first, then a failover), as the sandbox's rolling restart does.

moto 5.2 lacks describe_update_actions and batch_apply_update_action: the tests
drive this module with botocore's Stubber.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import OperationFailed
from ...core.plan import Plan, Step
from ...core.ports import MaintenanceResult, Progress
from ...core.waiting import wait_for

if TYPE_CHECKING:
    from ...core.environment import Environment

OPEN = ["not-applied", "waiting-to-start", "stopped", "scheduled"]


class CacheServiceUpdates:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.client = clients.client("elasticache")
        self.group_id = environment.env.resource(environment.settings.project, "redis")
        aws = environment.settings.section("aws")
        self.poll = float(aws.get("poll_seconds", 3))
        self.timeout = float(aws.get("failover_timeout_seconds", 1800))

    def _actions(self, statuses: list[str] | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ReplicationGroupIds": [self.group_id]}
        if statuses:
            kwargs["UpdateActionStatus"] = statuses
        out: list[dict[str, Any]] = []
        for page in self.client.get_paginator("describe_update_actions").paginate(**kwargs):
            out += page.get("UpdateActions", [])
        return out

    def plan(self) -> Plan:
        plan = Plan(f"apply ElastiCache service updates to {self.group_id}")
        for action in self._actions(OPEN):
            plan.add(
                Step(
                    "elasticache",
                    "batch_apply_update_action",
                    {
                        "ReplicationGroupIds": [self.group_id],
                        "ServiceUpdateName": action["ServiceUpdateName"],
                    },
                    why=f"{action.get('ServiceUpdateSeverity', '?')} {action.get('ServiceUpdateType', '')} "
                    f"update, {action.get('UpdateActionStatus')}".strip(),
                )
            )
        if not plan.steps:
            plan.notes.append("no service update to apply")
        return plan

    def apply(self, plan: Plan, progress: Progress) -> MaintenanceResult:
        clock = self.environment.clock
        started = clock.now()
        names = [s.params["ServiceUpdateName"] for s in plan.steps]
        for step in plan.steps:
            reply = self.client.batch_apply_update_action(**step.params)
            if reply.get("UnprocessedUpdateActions"):
                raise OperationFailed(
                    f"ElastiCache did not accept {step.params['ServiceUpdateName']}: "
                    f"{reply['UnprocessedUpdateActions'][0].get('ErrorMessage')}"
                )
        if not names:
            return MaintenanceResult([], {"applied": []})

        def done() -> tuple[bool, list[dict[str, Any]], str]:
            mine = [a for a in self._actions() if a.get("ServiceUpdateName") in names]
            open_ = [
                f"{a['ServiceUpdateName']} {a.get('UpdateActionStatus')}"
                for a in mine
                if a.get("UpdateActionStatus") != "complete"
            ]
            return (not open_, mine, "; ".join(open_) or "complete")

        wait_for(
            done,
            what=f"service updates of {self.group_id}",
            clock=clock,
            timeout=self.timeout,
            interval=self.poll,
            progress=progress,
        )
        return MaintenanceResult(self.environment.cache.events(started), {"applied": names})
