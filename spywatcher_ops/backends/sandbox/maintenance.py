"""Data-tier maintenance on the sandbox: real restarts, a real switchover, a real
Redis rolling restart, a real certificate reload (see switchover.py and friends)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import OperationFailed
from ...core.plan import Plan, Step
from ...core.ports import (
    Certificate,
    ConnectionInfo,
    MaintenanceResult,
    PendingChange,
    Progress,
    ProviderEvent,
)

if TYPE_CHECKING:
    from ...core.environment import Environment


def _step_param(plan: Plan, action: str, key: str) -> Any:
    return next(s.params[key] for s in plan.steps if s.action == action)


class SandboxMaintenance:
    def __init__(self, environment: Environment) -> None:
        from .postgres.database import SandboxDatabase

        self.environment = environment
        self.db = SandboxDatabase(environment)
        self.box = self.db.box

    def housekeeping_connection(self) -> ConnectionInfo:
        return self.db.admin_connection()

    # database engine -------------------------------------------------------------
    def pending_changes(self) -> list[PendingChange]:
        from .postgres.switchover import load_group

        group = load_group(self.box)
        return [
            PendingChange(
                "database",
                name,
                str(v.get("current")),
                str(v["value"]),
                "pending-reboot",
                f"queued {v.get('queued_at')}",
            )
            for name, v in sorted(group["pending"].items())
        ]

    def queue_change(self, name: str, value: str) -> dict[str, Any]:
        from .postgres.switchover import queue_change

        return queue_change(self.box, name, value)

    def plan_database_maintenance(self) -> Plan:
        from .pairplan import pair_plan
        from .postgres.switchover import check_ready

        state = self.box.load()
        primary, standby = check_ready(self.box, state)
        pending = {c.name: c.pending for c in self.pending_changes()}
        title = f"apply {len(pending)} pending-reboot change(s) to {state['main']} the Multi-AZ way"
        if not pending:
            return Plan(title, notes=["nothing pending"])
        return pair_plan(
            title,
            (
                "restart_standby",
                {"node": standby, "parameters": pending},
                "the standby first; the primary's commits stop waiting for it meanwhile",
            ),
            (
                "switchover",
                {"from": primary, "to": standby},
                "CHECKPOINT, clean shutdown of the primary, standby checked to hold its final WAL, promote",
            ),
            (
                "restart_as_standby",
                {"node": primary, "parameters": pending},
                "the old primary follows the new one (pg_rewind, else a fresh base backup)",
            ),
        )

    def database_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        from .postgres.switchover import apply_pending

        events: list[ProviderEvent] = []

        def note(code: str, message: str) -> None:
            at = self.box.now()
            events.append(ProviderEvent(at=at, source="sandbox", message=message, code=code))
            self.box.event(code, message)

        with self.box.statefile.editing() as state:
            details = apply_pending(self.box, state, progress, note)
        return MaintenanceResult(events, details)

    # cache -------------------------------------------------------------------------
    def plan_cache_maintenance(self) -> Plan:
        from .redis.rolling import plan_rolling_restart

        return plan_rolling_restart(self.environment)

    def cache_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        from .redis.rolling import rolling_restart

        return rolling_restart(self.environment, progress)

    def repair(self, *, progress: Progress) -> str:
        from .lifecycle import up
        from .postgres.switchover import finish_interrupted

        with self.box.statefile.editing() as state:
            done = finish_interrupted(self.box, state, progress)
        report = up(self.environment, progress)
        if not report.healthy:
            raise OperationFailed(
                "the sandbox is still not healthy after `sandbox.up`; see `inv sandbox.status`"
            )
        return ((done + "; ") if done else "") + "sandbox repaired (`sandbox.up`): healthy"

    def standby_ready(self, max_lag_s: float) -> str:
        from .postgres.standby_check import standby_ready

        return standby_ready(self.box, max_lag_s)

    # certificates ------------------------------------------------------------------
    def certificates(self) -> list[Certificate]:
        """The certificate each running node presents (a real TLS handshake)."""
        from .state import node_alive
        from .tls import served

        state = self.box.load()
        main = state["instances"][state["main"]]
        out = []
        for name in [main["primary"]] + ([main["standby"]] if main.get("standby") else []):
            node = state["nodes"][name]
            if not node_alive(node):
                continue
            try:
                cert = served(int(node["port"]))
            except OperationFailed:
                continue  # serves no TLS yet (made before TLS existed): renewal turns it on
            out.append(
                Certificate(
                    id=format(cert.serial_number, "x"),
                    subject=cert.subject.rfc4514_string(),
                    not_after=cert.not_valid_after_utc,
                    source="sandbox-ca",
                    served_at=f"{node['port']}",
                    details={"node": name, "issuer": cert.issuer.rfc4514_string()},
                )
            )
        return out

    def plan_renew_certificate(self, valid_days: int) -> Plan:
        from .tls import server_paths

        state = self.box.load()
        key, crt = server_paths(state)
        nodes = [n for n in state["nodes"] if state["nodes"][n].get("pid")]
        plan = Plan(f"renew the sandbox database's TLS certificate ({valid_days} days) and reload")
        plan.add(
            Step(
                "sandbox",
                "issue_certificate",
                {"ca": "sandbox CA", "valid_days": valid_days, "names": ["localhost", "127.0.0.1"]},
            )
        )
        plan.add(
            Step("sandbox", "install", {"cert": str(crt), "key": str(key), "previous": "kept as *.prev"})
        )
        plan.add(
            Step(
                "sandbox",
                "pg_ctl_reload",
                {"nodes": nodes},
                why="a reload, not a restart: open connections stay; new ones get the new certificate",
            )
        )
        return plan

    def renew_certificate(self, plan: Plan, *, progress: Progress) -> MaintenanceResult:
        from .tls_renewal import renew

        return renew(
            self.box, self.environment.clock, _step_param(plan, "issue_certificate", "valid_days"), progress
        )
