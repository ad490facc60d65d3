"""Delete a database instance the toolkit created (a restore, a failed restore, a replaced
pair): never the live one, never one it did not create."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import Refused
from ..core.plan import Plan
from ..core.ports import Progress
from .common import Approver, known_instance, stamped_name

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class DeleteOutcome:
    plan: Plan
    applied: bool
    instance: str
    final_snapshot: str | None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "instance": self.instance,
            "final_snapshot": self.final_snapshot,
            "duration_s": self.duration_s,
            "plan": self.plan.to_dict(),
        }


def delete(
    environment: Environment,
    instance: str | None,
    *,
    final_snapshot: bool,
    approve: Approver,
    progress: Progress,
) -> DeleteOutcome:
    database = environment.database
    target = known_instance(environment, instance, flag="--instance")
    if target.id.lower() == database.instance_id().lower():
        raise Refused(
            f"--instance {target.id}: it is the live instance (it serves the database endpoint); "
            "it is never deleted"
        )
    if not target.created_by_us:
        raise Refused(f"--instance {target.id}: not created by spywatcher-ops; it is never deleted by it")
    clock = environment.clock
    snapshot = stamped_name(target.id, "final", clock.now()) if final_snapshot else None
    plan = database.plan_delete_instance(target.id, final_snapshot=snapshot)
    # a kind that keeps no final snapshot (the sandbox) says so in the plan's notes
    if not any(snapshot and snapshot in step.params.values() for step in plan.steps):
        snapshot = None
    if not approve(plan):
        return DeleteOutcome(plan, False, target.id, snapshot)
    with environment.operation("db.delete", {"instance": target.id, "final_snapshot": snapshot}) as op:
        started = clock.monotonic()
        database.delete_instance(plan, progress=progress)
        duration = round(clock.monotonic() - started, 1)
        op.result = {"instance": target.id, "final_snapshot": snapshot, "duration_s": duration}
    return DeleteOutcome(plan, True, target.id, snapshot, duration)
