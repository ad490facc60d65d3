"""`infra.drift`: does the real infrastructure still match the code?

`terraform plan -detailed-exitcode` into a throw-away plan file: exit 2 means
something would change. The report lists every resource the plan would touch
and the ones Terraform saw changed outside it (refresh). Nothing is applied.
A plan made against no state (Terraform never applied there) is not drift: the
resources are not under Terraform yet, and the report says so (`no_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.clock import utc_stamp
from .summary import PlanSummary, prior_state, summarize

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import Infrastructure


@dataclass
class DriftReport:
    drifted: bool
    summary: PlanSummary
    duration_s: float
    no_state: bool = False  # planned against no state: nothing is under Terraform yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "no_state": self.no_state,
            "duration_s": self.duration_s,
            **self.summary.to_dict(),
        }


def detect_drift(environment: Environment, infra: Infrastructure) -> DriftReport:
    clock = environment.clock
    with environment.operation("infra.drift", {}, mutating=False) as op:
        started = clock.monotonic()
        infra.prepare()
        folder = infra.plans_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"drift-{utc_stamp(clock.now())}.tfplan"
        try:
            planned = infra.plan(path)
            changes = planned["changes"]
            summary = summarize(planned, infra.stateful(), []) if changes else PlanSummary()
            no_state = bool(changes) and prior_state(path)[1] is None  # lineage '': no state yet
        finally:
            path.unlink(missing_ok=True)
        drifted = bool(changes and (summary.changes or summary.drift))
        op.result = {
            "drifted": drifted,
            "resources": [c.address for c in summary.changes],
            "changed_outside": [c.address for c in summary.drift],
            "no_state": no_state,
        }
        if drifted:
            op.outcome = "drift"
    return DriftReport(drifted, summary, round(clock.monotonic() - started, 3), no_state)
