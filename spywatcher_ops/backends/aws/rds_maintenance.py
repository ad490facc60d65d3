"""RDS engine maintenance inside the window: the instance's pending maintenance
actions applied now (`apply_pending_maintenance_action`, OptInType=immediate)
and a minor engine upgrade within the major version (the newest 15.y that
`describe_db_engine_versions` lists as a valid, non-major upgrade target;
never a major version). Waited on until the instance is available on the new
version with nothing pending; its RDS events go on the run's timeline.

moto 5.2 lacks describe_pending_maintenance_actions, apply_pending_maintenance_action
and describe_db_engine_versions: the tests drive this module with botocore's Stubber.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.plan import Plan, Step
from ...core.ports import MaintenanceResult, PendingChange, Progress
from ...core.waiting import wait_for

if TYPE_CHECKING:
    from ...core.environment import Environment


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def newest_minor(rds: Any, engine: str, version: str) -> str | None:
    """The newest upgrade target of the same major version, or None."""
    major = version.split(".")[0]
    reply = rds.describe_db_engine_versions(Engine=engine, EngineVersion=version)
    targets = [
        t["EngineVersion"]
        for v in reply.get("DBEngineVersions", [])
        for t in v.get("ValidUpgradeTarget", [])
        if not t.get("IsMajorVersionUpgrade") and str(t["EngineVersion"]).split(".")[0] == major
    ]
    newer = [t for t in targets if _version_key(t) > _version_key(version)]
    return max(newer, key=_version_key) if newer else None


class RdsEngineMaintenance:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.rds = clients.client("rds")
        aws = environment.settings.section("aws")
        self.poll = float(aws.get("poll_seconds", 3))
        self.timeout = float(aws.get("failover_timeout_seconds", 1800))

    def _instance(self) -> dict[str, Any]:
        ident = self.environment.database.instance_id()
        return dict(self.rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0])

    def _actions(self, arn: str) -> list[dict[str, Any]]:
        reply = self.rds.describe_pending_maintenance_actions(ResourceIdentifier=arn)
        return [
            a
            for r in reply.get("PendingMaintenanceActions", [])
            for a in r.get("PendingMaintenanceActionDetails", [])
        ]

    def pending_changes(self) -> list[PendingChange]:
        inst = self._instance()
        out = [
            PendingChange(
                "database",
                str(a.get("Action")),
                None,
                None,
                str(a.get("OptInStatus") or "next-maintenance"),
                str(a.get("Description") or ""),
            )
            for a in self._actions(inst["DBInstanceArn"])
        ]
        target = newest_minor(self.rds, inst["Engine"], inst["EngineVersion"])
        if target:
            out.append(
                PendingChange(
                    "database",
                    "engine-version",
                    inst["EngineVersion"],
                    target,
                    "minor-upgrade",
                    f"newest {inst['EngineVersion'].split('.')[0]}.x",
                )
            )
        return out

    def plan(self) -> Plan:
        inst = self._instance()
        ident, arn = inst["DBInstanceIdentifier"], inst["DBInstanceArn"]
        plan = Plan(f"RDS maintenance of {ident} ({inst['Engine']} {inst['EngineVersion']}) in the window")
        for action in self._actions(arn):
            plan.add(
                Step(
                    "rds",
                    "apply_pending_maintenance_action",
                    {"ResourceIdentifier": arn, "ApplyAction": action["Action"], "OptInType": "immediate"},
                    why=str(action.get("Description") or ""),
                )
            )
        target = newest_minor(self.rds, inst["Engine"], inst["EngineVersion"])
        if target:
            plan.add(
                Step(
                    "rds",
                    "modify_db_instance",
                    {
                        "DBInstanceIdentifier": ident,
                        "EngineVersion": target,
                        "ApplyImmediately": True,
                        "AllowMajorVersionUpgrade": False,
                    },
                    why=f"minor upgrade {inst['EngineVersion']} -> {target} (Multi-AZ: standby first, then a failover)",
                )
            )
        if not plan.steps:
            plan.notes.append("nothing pending")
        return plan

    def apply(self, plan: Plan, progress: Progress) -> MaintenanceResult:
        clock = self.environment.clock
        started = clock.now()
        target = next(
            (s.params["EngineVersion"] for s in plan.steps if s.action == "modify_db_instance"), None
        )
        for step in plan.steps:
            getattr(self.rds, step.action)(**step.params)
        if not plan.steps:
            return MaintenanceResult([], {"applied": []})

        def settled() -> tuple[bool, dict[str, Any], str]:
            inst = self._instance()
            status, version = inst.get("DBInstanceStatus"), inst.get("EngineVersion")
            pending = inst.get("PendingModifiedValues") or {}
            if status != "available" or pending or (target and version != target):
                return (
                    False,
                    inst,
                    f"{status}, engine {version}" + (f", pending {sorted(pending)}" if pending else ""),
                )
            left = self._actions(inst["DBInstanceArn"])
            if any(a.get("OptInStatus") == "immediate" for a in left):
                return False, inst, f"available; {len(left)} action(s) still pending"
            return True, inst, f"available, engine {version}"

        inst = wait_for(
            settled,
            what=f"{plan.title} to finish",
            clock=clock,
            timeout=self.timeout,
            interval=self.poll,
            progress=progress,
        )
        events = self.environment.database.events(started)
        return MaintenanceResult(
            events,
            {"applied": [s.to_dict() for s in plan.steps], "engine_version": inst.get("EngineVersion")},
        )
