"""Manual snapshots: named `{project}-{environment}-{label}-{UTC stamp}`, tagged as ours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.clock import utc_stamp
from ..core.errors import BadInput
from ..core.plan import Plan
from ..core.ports import MANAGED_BY, Progress, Snapshot
from ..core.timeparse import check_label
from .common import Approver, check_region

if TYPE_CHECKING:
    from ..core.config import Settings
    from ..core.environment import Environment


@dataclass(frozen=True)
class SnapshotOutcome:
    plan: Plan
    applied: bool
    snapshot: Snapshot | None = None
    duration_s: float | None = None
    copy_to_region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "applied": self.applied,
            "plan": self.plan.to_dict(),
            "snapshot": None
            if snap is None
            else {
                "id": snap.id,
                "status": snap.status,
                "size_bytes": snap.size_bytes,
                "created": snap.created,
                "source": snap.source,
            },
            "duration_s": self.duration_s,
            "copy_to_region": self.copy_to_region,
        }


def snapshot_name(project: str, environment: str, label: str, now: datetime) -> str:
    return f"{project}-{environment}-{label}-{utc_stamp(now)}".lower()


def snapshot_tags(settings: Settings, environment: str, label: str) -> dict[str, str]:
    return {
        "Environment": environment,
        "Project": settings.project,
        "CostCenter": settings.cost_center,
        "ManagedBy": MANAGED_BY,
        "Purpose": label,
    }


def take_snapshot(
    environment: Environment,
    *,
    label: str,
    copy_to_region: str | None,
    wait: bool,
    approve: Approver,
    progress: Progress,
) -> SnapshotOutcome:
    label = check_label(label)
    if copy_to_region:
        check_region(copy_to_region, flag="--copy-to-region")
        if not wait:
            raise BadInput(
                "--copy-to-region with --no-wait: the copy starts only when the snapshot is "
                "available; drop --no-wait"
            )
    clock = environment.clock
    name = snapshot_name(environment.settings.project, environment.name, label, clock.now())
    tags = snapshot_tags(environment.settings, environment.name, label)
    database = environment.database
    plan = database.plan_snapshot(name, tags, copy_to_region)
    if not approve(plan):
        return SnapshotOutcome(plan, applied=False, copy_to_region=copy_to_region)
    args = {"label": label, "copy_to_region": copy_to_region, "wait": wait, "snapshot": name}
    with environment.operation("db.snapshot", args) as op:
        started = clock.monotonic()
        snap = database.create_snapshot(plan, wait=wait, progress=progress)
        duration = round(clock.monotonic() - started, 1)
        op.result = {
            "snapshot": snap.id,
            "status": snap.status,
            "size_bytes": snap.size_bytes,
            "duration_s": duration,
        }
    return SnapshotOutcome(
        plan, applied=True, snapshot=snap, duration_s=duration, copy_to_region=copy_to_region
    )
