"""What the clients felt during a step: pure functions over the probes' attempts.

A probe attempts every `interval` s while healthy (10 ms after a failure).
The impairment of a step is the longest a client waited during it: from the
start of the first failed attempt of a stretch to the end of the success
that ended it, or one slow successful call. "database writes paused 0.11 s"
means a write issued then was acknowledged 0.11 s later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..drills.measure import Attempt, Write

PROBE_WORDS = {
    "db-write": "database writes",
    "db-read": "database reads",
    "cache-write": "cache writes",
    "cache-read": "cache reads",
}


def impairment(attempts: Sequence[Attempt], t0: float, t1: float, interval: float) -> dict[str, Any]:
    """The longest time a client waited during [t0, t1]: from the start of the first failed
    attempt of a stretch to the end of the success after it, or one slow successful call."""
    longest, at, failed, seen = 0.0, None, 0, 0
    stretch: float | None = None
    last_end = t0
    for a in sorted(attempts, key=lambda a: a.start):
        if a.end < t0:
            continue
        if a.start > t1 and stretch is None:
            break
        seen += a.start <= t1
        last_end = max(last_end, a.end)
        if not a.ok:
            failed += a.start <= t1
            if stretch is None:
                stretch = a.start
            continue
        wait = a.end - stretch if stretch is not None else a.latency
        if wait > longest:
            longest, at = wait, stretch if stretch is not None else a.start
        stretch = None
    if stretch is not None:  # not recovered (yet): the open stretch counts to the last attempt
        wait = max(t1, last_end) - stretch
        if wait > longest:
            longest, at = wait, stretch
    return {
        "impaired_s": round(longest, 3) if seen else None,
        "failed": failed,
        "attempts": seen,
        "from": at,
        "recovered": stretch is None,
    }


def lost_writes(writes: Iterable[Write], surviving: set[int] | None, until: float) -> list[int]:
    """Sequence numbers acknowledged before `until` that are absent now."""
    if surviving is None:
        return []
    return sorted(
        w.seq for w in writes if w.acked_at is not None and w.acked_at <= until and w.seq not in surviving
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def sentence(step: str, impact: dict[str, dict[str, Any]], lost: dict[str, int]) -> str:
    """'database writes paused 0.11 s, cache writes paused 1.52 s (2 writes lost)' or 'no client impact seen'."""
    parts = []
    for probe, data in impact.items():
        value = data.get("impaired_s")
        if value is None:
            parts.append(f"{PROBE_WORDS.get(probe, probe)}: not measured")
        elif value >= 0.05 or data.get("failed"):
            parts.append(
                f"{PROBE_WORDS.get(probe, probe)} paused {value:.2f} s"
                + (f" ({_count(data['failed'], 'failed attempt')})" if data.get("failed") else "")
            )
    for probe, n in lost.items():
        if n:
            parts.append(f"{n} acknowledged {PROBE_WORDS.get(probe, probe).split()[0]} write(s) lost")
    return ", ".join(parts) + f" during {step}" if parts else f"no client impact seen during {step}"
