"""RTO and RPO from what the probes saw: pure functions over plain data.

Times are float seconds on one clock (epoch seconds derived from the
monotonic clock, see probes.Anchor), so a fault instant, probe attempts and
the client timestamps written into the drill table compare directly.

Definitions (docs/design.md and docs/report-schema.md):

- An attempt is *impaired* when it failed, or when it succeeded but took
  longer than `slow_s` (a hung server that answers after 3 s was down for 3 s).
- A probe's *first failure* is the first evidence of impairment after the fault.
- A probe *recovered* at the end of the first successful attempt after the
  first impairment that is followed by a stable run: `stable_count`
  consecutive good attempts spanning at least `stable_s` seconds.
- RTO = recovered - fault; 0 when the probe never saw an impairment.
- RPO (failover) = fault - client timestamp of the oldest write that was
  acknowledged before the fault and is absent after recovery; 0 when none is.
- RPO (restore) = restore point - client timestamp of the newest surviving write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attempt:
    """One probe call: when it started and ended, and whether it succeeded."""

    start: float
    end: float
    ok: bool
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Write:
    """One writer-probe write: sequence number, the client timestamp stored in
    the row, and when (if) the server acknowledged it."""

    seq: int
    ts: float
    acked_at: float | None  # None: failed or outcome unknown (in flight at the fault)

    @property
    def acked(self) -> bool:
        return self.acked_at is not None


@dataclass(frozen=True)
class Stability:
    stable_count: int = 5
    stable_s: float = 0.0
    slow_s: float = 0.5


@dataclass
class Recovery:
    impacted: bool
    first_failure: float | None
    recovered_at: float | None
    rto_s: float | None  # None: impaired and not (yet) recovered
    relapses: int = 0  # impairments after the recovery point
    failed_attempts: int = 0
    slow_attempts: int = 0

    @property
    def recovered(self) -> bool:
        return self.rto_s is not None


def impaired(a: Attempt, slow_s: float) -> bool:
    return (not a.ok) or a.latency > slow_s


def _impairment_seen(a: Attempt, fault_at: float, slow_s: float) -> float:
    """When the client knew: a failure at its end; a slow call once it passed slow_s."""
    if not a.ok:
        return a.end
    return max(a.start, fault_at) + slow_s


def recovery(attempts: Sequence[Attempt], fault_at: float, rule: Stability = Stability()) -> Recovery:
    """Recovery of one probe after a fault at `fault_at` (see module docstring)."""
    after = sorted((a for a in attempts if a.end > fault_at), key=lambda a: a.end)
    bad = [i for i, a in enumerate(after) if impaired(a, rule.slow_s)]
    failed = sum(1 for a in after if not a.ok)
    slow = sum(1 for a in after if a.ok and a.latency > rule.slow_s)
    if not bad:
        return Recovery(False, None, fault_at if after else None, 0.0 if after else None, 0, 0, 0)
    first_bad = bad[0]
    first_failure = _impairment_seen(after[first_bad], fault_at, rule.slow_s)
    i = first_bad + 1
    while i < len(after):
        if impaired(after[i], rule.slow_s):
            i += 1
            continue
        j = i
        while j < len(after) and not impaired(after[j], rule.slow_s):
            j += 1
        run = after[i:j]
        if len(run) >= rule.stable_count and run[-1].end - run[0].end >= rule.stable_s:
            recovered_at = run[0].end
            relapses = _count_runs(after[j:], rule.slow_s)
            return Recovery(
                True, first_failure, recovered_at, max(0.0, recovered_at - fault_at), relapses, failed, slow
            )
        i = j
    return Recovery(True, first_failure, None, None, 0, failed, slow)


def _count_runs(attempts: Sequence[Attempt], slow_s: float) -> int:
    """Number of separate impaired stretches."""
    runs, inside = 0, False
    for a in attempts:
        bad = impaired(a, slow_s)
        if bad and not inside:
            runs += 1
        inside = bad
    return runs


@dataclass
class Loss:
    """What the writer probe lost: acknowledged writes absent after recovery."""

    acked: int
    acked_before_fault: int
    lost: int  # acked before the fault and absent
    lost_after_fault: int  # acked after the fault and absent (should never happen)
    rpo_s: float
    lost_seqs: list[int] = field(default_factory=list)
    oldest_lost_ts: float | None = None
    newest_surviving_ts: float | None = None
    unknown: int = 0  # not acknowledged (failed or in flight); may or may not exist


def failover_loss(writes: Iterable[Write], surviving: Iterable[int], fault_at: float) -> Loss:
    """RPO of a failover: the span of acked-before-fault writes that did not survive."""
    present = set(surviving)
    acked = [w for w in writes if w.acked]
    unknown = sum(1 for w in writes if not w.acked)
    before = [w for w in acked if w.acked_at is not None and w.acked_at <= fault_at]
    lost = sorted((w for w in before if w.seq not in present), key=lambda w: w.ts)
    lost_after = [
        w for w in acked if w.acked_at is not None and w.acked_at > fault_at and w.seq not in present
    ]
    kept = [w.ts for w in acked if w.seq in present and w.ts <= fault_at]
    oldest = lost[0].ts if lost else None
    return Loss(
        acked=len(acked),
        acked_before_fault=len(before),
        lost=len(lost),
        lost_after_fault=len(lost_after),
        rpo_s=max(0.0, fault_at - oldest) if oldest is not None else 0.0,
        lost_seqs=[w.seq for w in lost],
        oldest_lost_ts=oldest,
        newest_surviving_ts=max(kept) if kept else None,
        unknown=unknown,
    )


@dataclass
class RestoreCheck:
    """What a restored copy holds compared with what was acknowledged."""

    restore_point: float
    rpo_s: float | None  # None: no write of this run survived
    newest_surviving_ts: float | None
    surviving: int
    missing_before_point: int  # acked before the restore point, absent: the restore lost data
    present_after_point: int  # written after the restore point, present: the restore overshot
    missing_seqs: list[int] = field(default_factory=list)


def restore_check(writes: Iterable[Write], surviving: Iterable[int], restore_point: float) -> RestoreCheck:
    """RPO of a restore: restore point minus the newest surviving write's timestamp."""
    present = set(surviving)
    writes = list(writes)
    by_seq = {w.seq: w for w in writes}
    kept = [by_seq[s].ts for s in present if s in by_seq]
    newest = max(kept) if kept else None
    missing = sorted(
        w.seq
        for w in writes
        if w.acked_at is not None and w.acked_at < restore_point and w.seq not in present
    )
    overshoot = sum(1 for w in writes if w.ts > restore_point and w.seq in present)
    return RestoreCheck(
        restore_point=restore_point,
        rpo_s=max(0.0, restore_point - newest) if newest is not None else None,
        newest_surviving_ts=newest,
        surviving=len(kept),
        missing_before_point=len(missing),
        present_after_point=overshoot,
        missing_seqs=missing,
    )


def bands(attempts: Sequence[Attempt], slow_s: float) -> list[tuple[float, float, str]]:
    """Merge attempts into (start, end, state) stretches; state is up, slow or down."""
    out: list[tuple[float, float, str]] = []
    for a in sorted(attempts, key=lambda a: a.start):
        state = "down" if not a.ok else ("slow" if a.latency > slow_s else "up")
        if out and out[-1][2] == state and a.start - out[-1][1] < 1.0:
            out[-1] = (out[-1][0], max(out[-1][1], a.end), state)
        else:
            out.append((a.start, a.end, state))
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank-with-interpolation percentile (q in 0..100); None for no values."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def verdict(achieved: float | None, target: float | None) -> str:
    """met / missed / n/a. A missing measurement against a target is a miss."""
    if target is None:
        return "n/a"
    if achieved is None:
        return "missed"
    return "met" if achieved <= target else "missed"
