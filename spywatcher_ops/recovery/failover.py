"""A forced failover to the standby, with the provider's events on a timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.plan import Plan
from ..core.ports import FailoverResult, Progress
from .common import Approver

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class FailoverOutcome:
    plan: Plan
    applied: bool
    result: FailoverResult | None = None

    @property
    def duration_s(self) -> float | None:
        r = self.result
        return None if r is None else round((r.finished - r.started).total_seconds(), 1)

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "applied": self.applied,
            "plan": self.plan.to_dict(),
            "old_primary": r.old_primary if r else None,
            "new_primary": r.new_primary if r else None,
            "started": iso(r.started) if r else None,
            "finished": iso(r.finished) if r else None,
            "duration_s": self.duration_s,
            "lost_commits": r.lost_commits if r else None,  # None: the provider cannot tell
            "warnings": list(r.warnings) if r else [],
            "events": [
                {"at": iso(e.at), "code": e.code, "source": e.source, "message": e.message}
                for e in (r.events if r else [])
            ],
        }


def failover(environment: Environment, *, approve: Approver, progress: Progress) -> FailoverOutcome:
    database = environment.database
    plan = database.plan_failover()
    if not approve(plan):
        return FailoverOutcome(plan, False)
    with environment.operation("db.failover", {"instance": database.instance_id()}) as op:
        result = database.failover(plan, progress=progress)
        for event in result.events:
            op.step("provider-event", "seen", at=iso(event.at), code=event.code, message=event.message)
        op.result = {
            "old_primary": result.old_primary,
            "new_primary": result.new_primary,
            "duration_s": round((result.finished - result.started).total_seconds(), 1),
            "lost_commits": result.lost_commits,
        }
    return FailoverOutcome(plan, True, result)
