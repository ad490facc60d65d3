"""dr.history names the target each run was judged against: a group whose runs were judged
against different targets does not show the newest run's target as everyone's."""

from __future__ import annotations

from spywatcher_ops.drills.reporting.history import group_lines, trend


def run(i: int, rto_target: float) -> dict:
    return {
        "id": f"id{i}",
        "at": f"2026-11-2{i}T10:00:00Z",
        "env": "sandbox",
        "scenario": "db-stall",
        "outcome": "met",
        "rto_s": 4.0,
        "rto_target_s": rto_target,
        "rto_target_key": "database",
        "rpo_s": 0.0,
        "rpo_target_s": 300.0,
        "rpo_target_key": "database",
        "lost_writes": 0,
    }


def test_each_run_shows_its_own_target_when_they_differ():
    (group,) = trend([run(1, 60.0), run(2, 10.0)])["groups"]
    lines = group_lines(group)
    (header,) = [x for x in lines if x.startswith("  targets:")]
    assert "10.0 s" not in header and "60.0 s" not in header  # the newest run's target is not everyone's
    (first,) = [x for x in lines if "id1" in x]
    (second,) = [x for x in lines if "id2" in x]
    assert "RTO 60.0 s (database)" in first and "RTO 10.0 s (database)" in second


def test_one_shared_target_is_said_once():
    (group,) = trend([run(1, 60.0), run(2, 60.0)])["groups"]
    lines = group_lines(group)
    assert "  targets: RTO 60.0 s (database), RPO 5.0 min (database)" in lines
    assert sum("60.0 s" in x for x in lines) == 1
