"""Snapshot retention: which snapshots go, and why every other one stays.

Only manual snapshots this toolkit made are ever candidates; the newest of
them always stays, and so do at least `keep_min`; of the rest, those older
than the retention go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.plan import Plan
from ..core.ports import Snapshot
from .common import Approver
from .snapshots import newest_first

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class PruneDecision:
    delete: list[Snapshot] = field(default_factory=list)
    keep: list[tuple[Snapshot, str]] = field(default_factory=list)


def choose(snapshots: list[Snapshot], *, now: datetime, retention_days: int, keep_min: int) -> PruneDecision:
    """Pure: the snapshots to delete, and every kept one with its reason."""
    cutoff = now - timedelta(days=retention_days)
    decision = PruneDecision()
    ours_kept = 0
    for snap in newest_first(snapshots):
        if snap.kind != "manual":
            reason = f"{snap.kind}: the provider's own retention applies"
        elif not snap.ours:
            reason = "not made by spywatcher-ops"
        elif snap.status != "available":
            reason = f"status {snap.status}"
        elif ours_kept == 0:
            reason = "the newest of ours"
        elif ours_kept < keep_min:
            reason = f"among the {keep_min} newest of ours (keep_min)"
        elif snap.created is None or snap.created >= cutoff:
            reason = f"younger than {retention_days} days"
        else:
            decision.delete.append(snap)
            continue
        if snap.kind == "manual" and snap.ours and snap.status == "available":
            ours_kept += 1
        decision.keep.append((snap, reason))
    return decision


@dataclass(frozen=True)
class PruneOutcome:
    decision: PruneDecision
    plan: Plan | None
    applied: bool
    retention_days: int
    keep_min: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "retention_days": self.retention_days,
            "keep_min": self.keep_min,
            "delete": [{"id": s.id, "created": iso(s.created)} for s in self.decision.delete],
            "keep": [{"id": s.id, "created": iso(s.created), "reason": r} for s, r in self.decision.keep],
            "plan": self.plan.to_dict() if self.plan else None,
        }


def prune(environment: Environment, *, approve: Approver) -> PruneOutcome:
    settings = environment.settings
    database = environment.database
    decision = choose(
        database.list_snapshots(),
        now=environment.clock.now(),
        retention_days=settings.retention_days,
        keep_min=settings.retention_keep_min,
    )
    outcome = PruneOutcome(decision, None, False, settings.retention_days, settings.retention_keep_min)
    if not decision.delete:
        return outcome
    plan = database.plan_delete_snapshots([s.id for s in decision.delete])
    outcome = PruneOutcome(decision, plan, False, settings.retention_days, settings.retention_keep_min)
    if not approve(plan):
        return outcome
    ids = [s.id for s in decision.delete]
    with environment.operation(
        "db.prune",
        {"delete": ids, "retention_days": settings.retention_days, "keep_min": settings.retention_keep_min},
    ) as op:
        database.delete_snapshots(plan)
        op.result = {"deleted": ids}
    return PruneOutcome(decision, plan, True, settings.retention_days, settings.retention_keep_min)
