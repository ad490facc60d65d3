"""A run refused because an earlier one was killed says what the killed step may have left
(audit of issue 13): it said 'the toolkit was killed (no end in the journal); nothing was
changed' while the killed cache-restart had left a Redis node stopped."""

from __future__ import annotations

from spywatcher_ops.maintenance import prechecks


def test_the_unfinished_run_check_says_the_step_may_be_left_part_way() -> None:
    killed = {
        "run_id": "ddad2d646436",
        "started_at": "2026-11-29T11:50:31.275Z",
        "state": "unfinished",
        "next_step": "3. cache-restart",
        "why": "the toolkit was killed (no end in the journal)",
        "env": "sandbox",
    }
    check = prechecks.unfinished([killed])
    assert not check.ok
    assert check.detail.startswith(
        "run ddad2d646436 (2026-11-29T11:50:31.275Z) stopped at step 3. cache-restart"
    )
    assert "may be left part-way" in check.detail and "--resume first brings it back" in check.detail
    assert check.hint == "finish it with `inv maint.run --env sandbox --resume ddad2d646436`"
    assert "nothing was changed" not in check.detail


def test_finished_runs_pass() -> None:
    done = {
        "run_id": "a",
        "started_at": "x",
        "state": "finished",
        "next_step": None,
        "why": "complete",
        "env": "s",
    }
    assert prechecks.unfinished([done]).ok
