"""Retention is a pure function of the snapshot list and the clock (freezegun)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from spywatcher_ops.core.ports import Snapshot
from spywatcher_ops.recovery.prune import choose

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def snap(
    id_: str, days: float, *, ours: bool = True, kind: str = "manual", status: str = "available"
) -> Snapshot:
    return Snapshot(
        id=id_,
        source="db",
        kind=kind,
        status=status,
        created=NOW - timedelta(days=days),
        size_bytes=None,
        ours=ours,
    )


def _now() -> datetime:
    return datetime.now(UTC)


@freeze_time(NOW)
def test_old_snapshots_of_ours_go_beyond_keep_min():
    snaps = [snap(f"s{d}", d) for d in (1, 2, 8, 9, 30)]
    decision = choose(snaps, now=_now(), retention_days=7, keep_min=3)
    # s1, s2 young; s8 kept as the third newest (keep_min); s9 and s30 are older than 7 days
    assert [s.id for s in decision.delete] == ["s9", "s30"]
    assert dict((s.id, why) for s, why in decision.keep)["s8"].startswith("among the 3 newest")


@freeze_time(NOW)
def test_never_the_newest_even_when_everything_is_old():
    snaps = [snap("a", 40), snap("b", 50)]
    decision = choose(snaps, now=_now(), retention_days=7, keep_min=0)
    assert [s.id for s in decision.delete] == ["b"]
    assert decision.keep[0][0].id == "a" and decision.keep[0][1] == "the newest of ours"


@freeze_time(NOW)
def test_only_manual_snapshots_made_by_us_are_candidates():
    snaps = [
        snap("mine-new", 1),
        snap("mine-old", 20),
        snap("hand-made", 90, ours=False),
        snap("rds:auto", 6, kind="automated", ours=False),
        snap("mine-creating", 30, status="creating"),
    ]
    decision = choose(snaps, now=_now(), retention_days=7, keep_min=1)
    assert [s.id for s in decision.delete] == ["mine-old"]
    reasons = {s.id: why for s, why in decision.keep}
    assert reasons["hand-made"] == "not made by spywatcher-ops"
    assert reasons["rds:auto"].startswith("automated")
    assert reasons["mine-creating"] == "status creating"


@freeze_time(NOW)
def test_the_boundary_is_exactly_retention_days():
    snaps = [snap("n1", 0), snap("n2", 0.5), snap("edge", 7), snap("past", 7 + 1 / 86400)]
    decision = choose(snaps, now=_now(), retention_days=7, keep_min=2)
    assert [s.id for s in decision.delete] == ["past"]


def test_the_clock_moving_on_makes_a_snapshot_eligible():
    snaps = [snap("n1", 0), snap("n2", 0), snap("n3", 0), snap("x", 6)]
    with freeze_time(NOW):
        assert choose(snaps, now=_now(), retention_days=7, keep_min=3).delete == []
    with freeze_time(NOW + timedelta(days=1, seconds=1)):
        assert [s.id for s in choose(snaps, now=_now(), retention_days=7, keep_min=3).delete] == ["x"]
