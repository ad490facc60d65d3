"""RTO/RPO arithmetic, history trend and report rendering: pure functions over plain data."""

from __future__ import annotations

import json
import re

import pytest

from spywatcher_ops.drills.cleanup import leftovers
from spywatcher_ops.drills.measure import (
    Attempt,
    Stability,
    Write,
    bands,
    failover_loss,
    percentile,
    recovery,
    restore_check,
    verdict,
)
from spywatcher_ops.drills.reporting import history, report
from spywatcher_ops.drills.reporting.htmlpage import to_html

RULE = Stability(stable_count=3, stable_s=0.0, slow_s=0.5)


def steady(
    start: float, end: float, step: float = 0.1, ok: bool = True, latency: float = 0.002
) -> list[Attempt]:
    out, t = [], start
    while t < end - 1e-9:
        out.append(Attempt(t, t + latency, ok))
        t += step
    return out


def test_rto_is_fault_to_first_success_of_a_stable_run():
    attempts = steady(0, 10) + steady(10.05, 10.5, 0.01, ok=False) + steady(10.5, 12)
    rec = recovery(attempts, fault_at=10.0, rule=RULE)
    assert rec.impacted
    assert rec.first_failure == pytest.approx(10.052)
    assert rec.recovered_at == pytest.approx(10.502)
    assert rec.rto_s == pytest.approx(0.502)


def test_a_short_success_between_failures_is_not_recovery():
    attempts = (
        steady(0, 10)
        + steady(10.0, 10.2, 0.01, ok=False)
        + [Attempt(10.2, 10.21, True)]
        + steady(10.21, 10.4, 0.01, ok=False)
        + steady(10.4, 11)
    )
    rec = recovery(attempts, fault_at=10.0, rule=RULE)
    assert rec.recovered_at == pytest.approx(10.402)


def test_successes_before_the_fault_takes_effect_do_not_count_as_recovery():
    # AWS: the API returns, the outage starts seconds later.
    attempts = steady(0, 15) + steady(15, 20, ok=False) + steady(20, 22)
    rec = recovery(attempts, fault_at=10.0, rule=RULE)
    assert rec.rto_s == pytest.approx(10.002)
    assert rec.first_failure == pytest.approx(15.002)


def test_a_hung_server_is_down_for_as_long_as_it_hangs():
    # SIGSTOP for 3 s: the call in flight answers after 3 s; no call ever fails.
    attempts = steady(0, 10) + [Attempt(10.03, 13.0, True)] + steady(13.0, 14)
    rec = recovery(attempts, fault_at=10.0, rule=RULE)
    assert rec.impacted and rec.failed_attempts == 0 and rec.slow_attempts == 1
    assert rec.first_failure == pytest.approx(10.53)
    assert rec.rto_s == pytest.approx(3.002)


def test_no_impairment_means_rto_zero_and_no_data_means_unknown():
    assert recovery(steady(0, 12), 10.0, RULE).rto_s == 0.0
    assert recovery(steady(0, 9), 10.0, RULE).rto_s is None


def test_not_recovered_when_the_stable_run_is_too_short_or_absent():
    attempts = steady(0, 10) + steady(10, 12, ok=False) + steady(12, 12.2)
    rec = recovery(attempts, 10.0, RULE)
    assert rec.impacted and rec.rto_s is None and not rec.recovered
    assert recovery(attempts + steady(12.2, 12.5), 10.0, RULE).rto_s == pytest.approx(2.002)


def test_stable_run_can_require_a_duration():
    attempts = (
        steady(0, 10)
        + steady(10, 11, ok=False)
        + steady(11, 11.35)
        + steady(11.35, 11.4, ok=False)
        + steady(11.4, 13)
    )
    rule = Stability(stable_count=3, stable_s=1.0)
    assert recovery(attempts, 10.0, rule).recovered_at == pytest.approx(11.402)


def test_relapses_after_recovery_are_counted():
    attempts = (
        steady(0, 10)
        + steady(10, 10.5, ok=False)
        + steady(10.5, 11)
        + steady(11, 11.2, ok=False)
        + steady(11.2, 12)
    )
    assert recovery(attempts, 10.0, RULE).relapses == 1


def writes(n: int, start: float = 0.0, step: float = 0.1, ack: float = 0.003) -> list[Write]:
    return [Write(i + 1, start + i * step, start + i * step + ack) for i in range(n)]


def test_rpo_is_the_span_of_acknowledged_writes_lost():
    ws = writes(100)  # ts 0.0 .. 9.9; fault at 10.0
    surviving = set(range(1, 94))  # 94..100 lost: ts 9.3 .. 9.9
    loss = failover_loss(ws, surviving, fault_at=10.0)
    assert loss.lost == 7 and loss.lost_seqs == [94, 95, 96, 97, 98, 99, 100]
    assert loss.rpo_s == pytest.approx(0.7)
    assert loss.newest_surviving_ts == pytest.approx(9.2)


def test_no_loss_is_rpo_zero_and_unacknowledged_writes_do_not_count():
    ws = writes(50) + [Write(51, 5.0, None)]
    loss = failover_loss(ws, set(range(1, 51)), fault_at=5.0)
    assert loss.lost == 0 and loss.rpo_s == 0.0 and loss.unknown == 1


def test_writes_acked_after_the_fault_and_lost_are_reported_separately():
    ws = writes(10) + [Write(11, 10.1, 10.2)]
    loss = failover_loss(ws, set(range(1, 11)), fault_at=10.0)
    assert loss.lost == 0 and loss.lost_after_fault == 1


def test_restore_rpo_is_restore_point_minus_newest_surviving_write():
    ws = writes(100)
    check = restore_check(ws, set(range(1, 51)), restore_point=4.95)
    assert check.rpo_s == pytest.approx(0.05)
    assert check.missing_before_point == 0 and check.present_after_point == 0


def test_restore_check_flags_missing_and_overshooting_writes():
    ws = writes(100)
    check = restore_check(ws, set(range(1, 40)) | {70}, restore_point=4.95)
    assert check.missing_before_point == 11 and check.missing_seqs[0] == 40
    assert check.present_after_point == 1
    assert restore_check(ws, set(), 4.95).rpo_s is None


def test_bands_merge_attempts_by_state():
    attempts = steady(0, 1) + steady(1, 1.5, 0.01, ok=False) + [Attempt(1.5, 2.4, True)] + steady(2.4, 3)
    states = [b[2] for b in bands(attempts, 0.5)]
    assert states == ["up", "down", "slow", "up"]


def test_percentile_and_verdict():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert verdict(0.2, 60) == "met" and verdict(61, 60) == "missed"
    assert verdict(None, 60) == "missed" and verdict(1.0, None) == "n/a"


# history ----------------------------------------------------------------------


def run(i: int, rto: float, outcome: str = "met", **extra: object) -> dict:
    return {
        "id": f"r{i}",
        "at": f"2026-11-26T00:00:{i:02d}Z",
        "env": "sandbox",
        "scenario": "db-failover",
        "outcome": outcome,
        "rto_s": rto,
        "rpo_s": 0.0,
        "lost_writes": 0,
        "rto_verdict": "met",
        "rpo_verdict": "met",
        **extra,
    }


def test_trend_gives_p50_p95_and_flags_a_regression(tmp_path):
    path = history.history_path(tmp_path)
    for i, rto in enumerate([0.1, 0.12, 0.11, 0.13, 2.5]):
        history.append(path, run(i, rto))
    history.append(path, {**run(9, 9.0), "scenario": "cache-failover"})
    trend = history.trend(history.read(path), scenario="db-failover")
    (group,) = trend["groups"]
    assert group["runs"] == 5
    assert group["stats"]["rto_s"]["p50"] == pytest.approx(0.12)
    assert group["stats"]["rto_s"]["p95"] == pytest.approx(2.0266, rel=1e-3)
    assert len(group["regressions"]) == 1 and group["regressions"][0].startswith("rto_s 2.5")


def test_noise_and_short_history_are_not_regressions():
    assert history.regressions([run(i, r) for i, r in enumerate([0.07, 0.08, 0.07, 0.09])]) == []
    assert history.regressions([run(0, 0.1), run(1, 5.0)]) == []
    missed = [run(i, 0.1) for i in range(3)] + [run(3, 0.1, outcome="missed", rto_verdict="missed")]
    assert history.regressions(missed) == ["RTO target missed after 3 runs that met it"]


# reports from journal records ---------------------------------------------------


def journal(op: str = "abc123", fault: float = 1000.0) -> list[dict]:
    base = {"op_id": op, "op": "dr.drill", "env": "sandbox"}

    def step(name: str, status: str = "ok", **d: object) -> dict:
        return {
            "at": "2026-11-26T00:00:01.000Z",
            "event": "step",
            **base,
            "step": name,
            "status": status,
            **d,
        }

    probe = {
        "name": "db-write",
        "part": "database",
        "kind": "write",
        "attempts": 40,
        "failed": 3,
        "impacted": True,
        "first_failure": fault + 0.02,
        "recovered_at": fault + 0.12,
        "rto_s": 0.12,
        "latency_p50_s": 0.003,
        "bands": [
            [fault - 2, fault + 0.01, "up"],
            [fault + 0.02, fault + 0.11, "down"],
            [fault + 0.12, fault + 1, "up"],
        ],
        "loss": {"lost": 2, "rpo_s": 0.2, "lost_seqs": [19, 20]},
    }
    return [
        {
            "at": "2026-11-26T00:00:00.000Z",
            "event": "start",
            **base,
            "who": {"os_user": "me"},
            "args": {"scenario": "db-failover", "run_id": "db-failover-1"},
        },
        step(
            "scenario",
            scenario={
                "name": "db-failover",
                "injects": "kill",
                "part": "database",
                "rto_target": "database",
                "rpo_target": "database",
                "probes": ["db-write"],
            },
            kind="sandbox",
        ),
        step("preflight", checks=[{"name": "lock free", "status": "ok", "detail": "free", "hint": None}]),
        step("fault", "injected", t=fault, description="primary killed"),
        step(
            "event",
            t=fault + 0.08,
            kind="provider",
            source="sandbox",
            message="standby promoted",
            code="promote",
        ),
        step("fault-done", t=fault + 2.0, description="primary killed"),
        step("probe", probe=probe),
        step(
            "measured",
            rto_s=0.12,
            rpo_s=0.2,
            lost_writes=2,
            rto_target_s=60.0,
            rpo_target_s=300.0,
            rto_verdict="met",
            rpo_verdict="met",
            rto_basis="b1",
            rpo_basis="b2",
            rto_target_key="database",
        ),
        step(
            "recheck", checks=[{"name": "database writable", "status": "ok", "detail": "yes", "hint": None}]
        ),
        {
            "at": "2026-11-26T00:00:03.000Z",
            "event": "end",
            **base,
            "outcome": "ok",
            "duration_s": 3.0,
            "result": {"outcome": "met"},
            "error": None,
        },
    ]


def test_report_is_built_from_the_journal_with_a_phase_breakdown():
    rep = report.build(journal())
    assert rep["schema"] == report.SCHEMA and rep["schema_version"] == 1
    assert rep["outcome"] == "met" and rep["rto"]["achieved_s"] == 0.12 and rep["rpo"]["lost_writes"] == 2
    kinds = [(t["kind"], t["t_s"]) for t in rep["timeline"]]
    assert kinds == [
        ("fault", 0.0),
        ("first-failure", 0.02),
        ("provider", 0.08),
        ("recovered", 0.12),
        ("fault-done", 2.0),
    ]
    assert [p["duration_s"] for p in rep["phases"]] == [0.02, 0.06, 0.04]
    assert rep["summary"].startswith("database writable again after 0.12 s; longest phase 0.06 s")
    assert rep["probes"][0]["bands_t_s"][1] == [0.02, 0.11, "down"]


def test_markdown_and_html_are_self_contained(tmp_path):
    rep = report.build(journal())
    paths = report.write(rep, tmp_path)
    assert set(paths) == {"json", "markdown", "html"}
    assert json.loads((tmp_path / paths["json"]).read_text())["id"] == "abc123"
    md = (tmp_path / paths["markdown"]).read_text()
    assert "| RTO | 0.12 s | 60.0 s (database) | met |" in md
    html = (tmp_path / paths["html"]).read_text()
    assert "<svg" in html and "RTO target" in html and "standby promoted" in html
    # no network fetches: no src/href to anything, no scripts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "@import" not in html


def test_a_killed_drill_still_renders_and_says_so():
    records = [r for r in journal() if r["event"] != "end" and r.get("step") not in ("measured", "probe")]
    rep = report.build(records)
    assert rep["outcome"] == "unfinished" and rep["rto"]["achieved_s"] is None
    to_html(rep)  # renders without measurements
    cleaned = records + [{"event": "cleaned", "op_id": "abc123", "actions": [{"kind": "sigcont"}]}]
    assert report.build(cleaned)["outcome"] == "killed"


def test_leftovers_lists_what_killed_drills_and_failed_rollbacks_left_pending():
    base = {"op": "dr.drill", "env": "sandbox"}
    records = [
        {"event": "start", "op_id": "a", **base},
        {
            "event": "step",
            "op_id": "a",
            "step": "undo",
            "undo": {"id": "u1", "kind": "sigcont", "pids": [[1, 2]]},
        },
        {
            "event": "step",
            "op_id": "a",
            "step": "undo",
            "undo": {"id": "u2", "kind": "delete-instance", "instance": "x"},
        },
        {"event": "step", "op_id": "a", "step": "undone", "undo_id": "u1"},
        {"event": "start", "op_id": "b", **base},
        {"event": "step", "op_id": "b", "step": "undo", "undo": {"id": "u3", "kind": "sigcont", "pids": []}},
        {"event": "end", "op_id": "b", **base},
        {"event": "start", "op_id": "c", "op": "db.restore", "env": "sandbox"},
    ]
    found = leftovers(records)
    # a: killed, u2 never undone; b: ended, but its rollback left u3 pending; c: not a drill
    assert [(s["op_id"], [u["id"] for u in pending]) for s, pending in found] == [
        ("a", ["u2"]),
        ("b", ["u3"]),
    ]
    cleaned = records + [
        {"event": "cleaned", "op_id": "a", "actions": [{"undo_id": "u2", "status": "ok"}]},
        {"event": "cleaned", "op_id": "b", "actions": [{"undo_id": "u3", "status": "failed"}]},
    ]
    assert [(s["op_id"], [u["id"] for u in p]) for s, p in leftovers(cleaned)] == [("b", ["u3"])]  # retried
    legacy = records + [
        {"event": "cleaned", "op_id": "a", "actions": [{"kind": "delete-instance", "status": "ok"}]}
    ]
    assert [s["op_id"] for s, _ in leftovers(legacy)] == ["b"]
    killed_clean = [{"event": "start", "op_id": "k", **base}]
    assert [s["op_id"] for s, _ in leftovers(killed_clean)] == ["k"]  # listed once, to be closed
    assert leftovers(killed_clean + [{"event": "cleaned", "op_id": "k", "actions": []}]) == []


def test_one_more_lost_write_than_usual_is_a_regression():
    runs = [run(i, 0.1, lost_writes=2) for i in range(3)] + [run(3, 0.1, lost_writes=3)]
    assert history.regressions(runs) == ["lost_writes 3 vs median 2 of the 3 runs before"]
    assert history.regressions(runs[:3] + [run(3, 0.1, lost_writes=2)]) == []


def test_probe_owned_entries_of_a_drill_that_ended_are_settled():
    """Older journals never marked drill rows / cache keys undone: an ended drill is not a leftover for them."""
    base = {"op": "dr.drill", "env": "sandbox"}
    records = [
        {"event": "start", "op_id": "old", **base},
        {
            "event": "step",
            "op_id": "old",
            "step": "undo",
            "undo": {"id": "r1", "kind": "drill-rows", "run_id": "x"},
        },
        {
            "event": "step",
            "op_id": "old",
            "step": "undo",
            "undo": {"id": "k1", "kind": "cache-key", "key": "k"},
        },
        {"event": "end", "op_id": "old", **base},
        {"event": "start", "op_id": "dead", **base},
        {
            "event": "step",
            "op_id": "dead",
            "step": "undo",
            "undo": {"id": "r2", "kind": "drill-rows", "run_id": "y"},
        },
    ]
    assert [(s["op_id"], [u["id"] for u in p]) for s, p in leftovers(records)] == [("dead", ["r2"])]


def test_a_drill_whose_probe_cleanup_failed_leaves_its_rows_for_the_next_run():
    base = {"op": "dr.drill", "env": "sandbox"}
    records = [
        {"event": "start", "op_id": "flap", **base},
        {
            "event": "step",
            "op_id": "flap",
            "step": "undo",
            "undo": {"id": "r1", "kind": "drill-rows", "run_id": "x"},
        },
        {"event": "step", "op_id": "flap", "step": "probe-cleanup", "status": "failed", "probe": "db-write"},
        {"event": "end", "op_id": "flap", **base},
    ]
    assert [(s["op_id"], [u["id"] for u in p]) for s, p in leftovers(records)] == [("flap", ["r1"])]
