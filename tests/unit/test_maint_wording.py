"""maint.run's words: the state said once, counts in the right number, one duration format
(the log's expected time reads as the plan's)."""

from __future__ import annotations

from spywatcher_ops.drills.reporting.report import fmt_seconds
from spywatcher_ops.maintenance.impact import sentence
from spywatcher_ops.maintenance.report import summary_line
from spywatcher_ops.maintenance.run import cutoff_detail, started_line


def test_the_summary_does_not_repeat_the_state():
    report = {
        "state": "complete",
        "steps": [{"status": "ok", "summary": ""}, {"status": "ok", "summary": ""}],
    }
    assert summary_line(report) == "2 ok"


def test_one_failed_attempt_is_singular():
    impact = {"db-write": {"impaired_s": 0.2, "failed": 1}}
    assert (
        sentence("db-engine", impact, {})
        == "database writes paused 0.20 s (1 failed attempt) during db-engine"
    )


def test_the_log_gives_expected_durations_as_the_plan_does():
    assert fmt_seconds(600.0) == "10.0 min"
    assert (
        started_line(2, "db-engine", 600.0, "default")
        == "step 2. db-engine started (expected 10.0 min, default)"
    )
    assert cutoff_detail(3600.0, "p95 of 4 runs", "2026-12-06T05:00:00Z") == (
        "expected 60.0 min (p95 of 4 runs) would cross the cutoff 2026-12-06T05:00:00Z"
    )
