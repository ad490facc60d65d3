"""Honesty tests: real PostgreSQL/Redis processes, faults of known size, and the
measurement must find exactly them. Plus a drill killed halfway, and `inv dr.drill`
end to end on a fresh sandbox."""

from __future__ import annotations

import os
import signal
import time

import pytest

from spywatcher_ops.backends.sandbox.net import process_state
from spywatcher_ops.drills.reporting import report
from spywatcher_ops.drills.runner import run_scenario
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios.registry import get


@pytest.mark.real
def test_a_3_second_freeze_of_the_primary_measures_as_a_3_second_rto(pg_pair):
    env = pg_pair.environment
    run = run_scenario(env, get("db-stall", "sandbox"), DrillOptions(params={"stall_s": 3}))
    assert run.outcome == "met", run.error
    rep = report.build(run.records)
    assert abs(rep["rto"]["achieved_s"] - 3.0) <= 0.3, rep["rto"]
    for probe in rep["probes"]:
        assert probe["impacted"] and abs(probe["rto_s"] - 3.0) <= 0.3
    resumed = next(t for t in rep["timeline"] if t["kind"] == "resumed")
    assert abs(resumed["t_s"] - 3.0) <= 0.05  # the fault really lasted 3 s
    assert all(c["status"] == "ok" for c in rep["recheck"])


@pytest.mark.real
def test_an_asynchronous_loss_of_n_writes_is_counted_exactly(pg_pair_factory):
    """docs/measured.md: pausing replay loses nothing (received WAL is replayed at promotion);
    stopping WAL receipt does. N acknowledged writes after that are lost, no more, no less."""
    pair = pg_pair_factory("asynchronous")
    n = 5
    run = run_scenario(pair.environment, get("db-async-loss", "sandbox"), DrillOptions(params={"writes": n}))
    assert run.outcome in ("met", "missed"), run.error
    rep = report.build(run.records)
    writer = next(p for p in rep["probes"] if p["name"] == "db-write")
    lost = writer["loss"]
    # what timing says must be lost: writes acknowledged between the WAL stop and the kill
    (window,) = [r["acked_after_wal_stop"] for r in run.records if r.get("step") == "loss-window"]
    assert len(window) == n
    assert lost["lost"] == n and rep["rpo"]["lost_writes"] == n
    assert lost["lost_seqs"] == window
    # one write every 100 ms; the first lost one follows the stop by less than an interval
    assert (n - 1) * 0.1 - 0.02 <= rep["rpo"]["achieved_s"] <= n * 0.1 + 0.05
    # independent count: the sandbox's pg_waldump of the old primary after the fork point
    loss_event = next(t for t in rep["timeline"] if t.get("code") == "data-loss")
    assert loss_event["message"].startswith(f"{n} transaction(s)")
    assert rep["recheck"] and all(c["status"] == "ok" for c in rep["recheck"])


@pytest.mark.real
def test_an_instance_left_by_a_killed_restore_drill_is_removed_by_the_next_run(pg_pair):
    from spywatcher_ops.core.errors import BadInput
    from spywatcher_ops.drills.cleanup import clean_up

    env = pg_pair.environment
    db = env.database
    new_id = "spywatcher-sandbox-db-drill-killed"
    db.restore(db.plan_restore(new_id, to_time=None, snapshot_id=None))
    assert db.describe(new_id).created_by_us
    # what a pitr-restore drill killed after its restore leaves in the journal
    env.journal.write(
        {"event": "start", "op_id": "deadbeef0001", "op": "dr.drill", "env": "sandbox", "args": {}}
    )
    env.journal.write(
        {
            "event": "step",
            "op_id": "deadbeef0001",
            "op": "dr.drill",
            "env": "sandbox",
            "step": "undo",
            "status": "pending",
            "undo": {"id": "u1", "kind": "delete-instance", "instance": new_id},
        }
    )
    (done,) = clean_up(env)
    assert done["op_id"] == "deadbeef0001"
    assert done["actions"] == [
        {"kind": "delete-instance", "undo_id": "u1", "status": "ok", "detail": f"deleted instance {new_id}"}
    ]
    with pytest.raises(BadInput):
        db.describe(new_id)
    assert clean_up(env) == []


@pytest.mark.real
def test_preflight_fails_when_the_standby_is_configured_but_dead(pg_pair_factory):
    from spywatcher_ops.drills.preflight import standby_ready

    pair = pg_pair_factory()
    assert standby_ready(pair.environment).status == "ok"
    state = pair.state()
    standby = state["nodes"][state["instances"][state["main"]]["standby"]]
    os.kill(standby["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_state(standby["pid"]) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    check = standby_ready(pair.environment)
    assert check.status == "failed" and "Multi-AZ on but status degraded" in check.detail, check


@pytest.mark.real
def test_ctrl_c_during_a_rollback_cuts_the_recheck_wait_short(pg_pair_factory):
    from spywatcher_ops.drills.preflight import standby_ready
    from spywatcher_ops.drills.signals import shielded

    pair = pg_pair_factory()
    state = pair.state()
    standby = state["nodes"][state["instances"][state["main"]]["standby"]]
    os.kill(standby["pid"], signal.SIGKILL)  # the re-check would wait its whole deadline for it
    deadline = time.monotonic() + 10
    while process_state(standby["pid"]) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert standby_ready(pair.environment).status == "failed"
    with shielded() as deferred:
        os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, held back by the rollback
        started = time.monotonic()
        check = standby_ready(pair.environment, deadline_s=30.0)
        waited = time.monotonic() - started
    assert deferred == [signal.SIGINT]
    assert check.status == "failed" and check.detail.endswith("stopped waiting: interrupted"), check
    assert waited < 2.0, waited
