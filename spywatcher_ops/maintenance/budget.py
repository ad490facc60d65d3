"""The time budget: which steps fit before the cutoff, from their expected durations.

A step starts only if its expected duration (p95 of earlier runs) ends before
the cutoff. The steps run in order: once one does not fit, neither does any
after it (the plan's order is the operator's, it is not reshuffled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core.clock import iso
from .history import Estimate
from .plans import PlannedStep
from .window import Window


@dataclass(frozen=True)
class Slot:
    index: int
    step: str
    expected_s: float
    basis: str
    starts: datetime | None  # None: always-open window
    ends: datetime | None
    running_total_s: float
    fits: bool
    impact: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "step": self.step,
            "expected_s": self.expected_s,
            "basis": self.basis,
            "starts": iso(self.starts),
            "ends": iso(self.ends),
            "running_total_s": round(self.running_total_s, 2),
            "fits": self.fits,
            "expected_impact_s": self.impact,
        }


def fits(expected_s: float, window: Window, now: datetime) -> bool:
    """Would a step started now, taking expected_s, end before the cutoff?"""
    if window.always:
        return True
    return window.before_cutoff(now) and now + timedelta(seconds=expected_s) <= window.cutoff


def schedule(
    steps: list[PlannedStep], estimates: dict[str, Estimate], window: Window, now: datetime
) -> list[Slot]:
    """Lay the steps out from the later of now and the window start. Pure."""
    start = None if window.always else max(now, window.start)
    total = 0.0
    out = []
    stopped = False
    for s in steps:
        est = estimates[s.step]
        at = None if start is None else start + timedelta(seconds=total)
        ok = not stopped and (at is None or fits(est.expected_s, window, at))
        if ok:
            total += est.expected_s
        else:
            stopped = True
        out.append(
            Slot(
                s.index,
                s.step,
                est.expected_s,
                est.basis,
                at if ok else None,
                None if at is None or not ok else at + timedelta(seconds=est.expected_s),
                total,
                ok,
                est.impact,
            )
        )
    return out
