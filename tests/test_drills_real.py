"""Honesty tests: real PostgreSQL/Redis processes, faults of known size, and the
measurement must find exactly them. Plus a drill killed halfway, and `inv dr.drill`
end to end on a fresh sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_sandbox import sandbox_environment, server_pids_under

from spywatcher_ops.backends.sandbox.net import process_state
from spywatcher_ops.core.journal import read
from spywatcher_ops.drills.reporting import report
from spywatcher_ops.drills.runner import run_scenario
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios.registry import get

ROOT = Path(__file__).resolve().parents[1]


def inv(state_dir: Path, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), **env},
    )


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
@pytest.mark.e2e
def _kill_a_drill_halfway(state_dir):
    """Start a db-stall drill (primary frozen for 30 s), SIGKILL it mid-freeze; (fault record, frozen pids)."""
    journal = state_dir / "journal" / "sandbox.jsonl"
    before = len(read(journal))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "dr.drill",
            "--scenario",
            "db-stall",
            "--param",
            "stall_s=30",
            "--no-up",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)},
    )
    try:
        deadline = time.monotonic() + 30
        fault = None
        while fault is None and time.monotonic() < deadline:
            fault = next((r for r in read(journal)[before:] if r.get("step") == "fault"), None)
            time.sleep(0.05)
        assert fault is not None, proc.stderr.read() if proc.poll() is not None else "no fault step"
        frozen = fault["pids"]
        assert all(process_state(p) == "T" for p in frozen)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.2)
    assert all(process_state(p) == "T" for p in frozen), "the killed drill's SIGSTOP should still be in force"
    return fault, frozen


@pytest.mark.real
@pytest.mark.e2e
def test_a_drill_killed_halfway_is_cleaned_up_by_the_next_run(pg_pair):
    state_dir = pg_pair.state_dir
    journal = state_dir / "journal" / "sandbox.jsonl"
    fault, frozen = _kill_a_drill_halfway(state_dir)

    done = inv(state_dir, "dr.preflight", "--scenario", "db-failover")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"cleaned up after drill {fault['op_id']}" in done.stdout
    assert process_state(frozen[0]) not in ("T", "Z", None)  # the postmaster runs again
    assert not any(process_state(p) == "T" for p in frozen)  # (backends of the dead drill may have exited)
    cleaned = [r for r in read(journal) if r.get("event") == "cleaned" and r["op_id"] == fault["op_id"]]
    assert len(cleaned) == 1 and cleaned[0]["actions"][0]["status"] == "ok"
    again = inv(state_dir, "dr.preflight", "--scenario", "db-failover")
    assert "cleaned up" not in again.stdout  # once only
    shown = inv(state_dir, "dr.report", fault["op_id"], "--json")
    assert json.loads(shown.stdout)["outcome"] == "killed"


@pytest.mark.real
@pytest.mark.e2e
def test_the_next_drill_cleans_up_before_it_brings_the_sandbox_up(pg_pair_factory):
    """Without the cleanup first, sandbox.up would wait for a standby of a frozen primary."""
    state_dir = pg_pair_factory().state_dir
    try:
        fault, frozen = _kill_a_drill_halfway(state_dir)
        done = inv(state_dir, "dr.drill", "--scenario", "db-failover")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"cleaned up after drill {fault['op_id']}" in done.stdout
        assert done.stdout.index("cleaned up after drill") < done.stdout.index("db-failover ")
    finally:
        inv(state_dir, "sandbox.down", "--purge", "--yes")  # dr.drill's sandbox.up added Redis


@pytest.mark.real
@pytest.mark.e2e
def test_inv_dr_drill_on_a_fresh_machine_prints_a_scorecard_and_three_reports(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("fresh")
    started = time.monotonic()
    try:
        done = inv(state_dir, "dr.drill", timeout=300)
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        # as a scheduler logs it, sandbox start included: a short log of timestamped lines
        log = done.stderr.splitlines()
        assert len(log) <= 40 and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", ln) for ln in log), log
        lines = done.stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("scenario "))
        assert "RTO achieved / target" in lines[header] and "RPO achieved / target" in lines[header]
        rows = [line.split(" | ") for line in lines[header + 2 : header + 6]]
        assert [r[0].strip() for r in rows] == [
            "db-failover",
            "cache-failover",
            "pitr-restore",
            "snapshot-restore",
        ]
        for row in rows:
            assert row[3].strip() == "MET"
            html = Path(row[4].strip())
            for suffix in (".html", ".json", ".md"):
                assert html.with_suffix(suffix).is_file()
            data = json.loads(html.with_suffix(".json").read_text())
            assert data["schema_version"] == 1 and data["outcome"] == "met"
            assert html.parent == state_dir / "reports"
        assert elapsed < 120, f"default suite with sandbox start took {elapsed:.0f} s"
        # the measurement agrees with what the providers logged
        reports = {
            r[0].strip(): json.loads(Path(r[4].strip()).with_suffix(".json").read_text()) for r in rows
        }
        cache = reports["cache-failover"]
        # sentinels hand out the new master from +failover-state-reconf-slaves on, before +switch-master
        codes = {t.get("code"): t["t_s"] for t in reversed(cache["timeline"])}
        assert (
            codes["+promoted-slave"] - 0.05 <= cache["rto"]["achieved_s"] <= codes["+switch-master"] + 0.5
        ), codes
        db = reports["db-failover"]
        promoted = next(t["t_s"] for t in db["timeline"] if t.get("code") == "promote")
        assert abs(db["rto"]["achieved_s"] - promoted) <= 0.3, (promoted, db["rto"])
        hist = inv(state_dir, "dr.history", "--json")
        assert len(json.loads(hist.stdout)["groups"]) == 4
        from spywatcher_ops.drills.cleanup import leftovers

        # every drill settled everything it journalled as to-undo: nothing for the next run to clean
        assert leftovers(read(state_dir / "journal" / "sandbox.jsonl")) == []
        # the restore drills removed the instances they made; --keep keeps one
        instances = lambda: set(sandbox_environment(state_dir).database.box.statefile.load()["instances"])  # noqa: E731
        before = instances()
        assert not [i for i in before if "-drill-" in i], before
        kept = inv(state_dir, "dr.drill", "--scenario", "pitr-restore", "--keep", "--no-up", "--json")
        assert kept.returncode == 0, kept.stdout + kept.stderr
        (new,) = instances() - before
        assert "-drill-" in new
        report_id = json.loads(kept.stdout)["scorecard"][0]["report_id"]
        shown = json.loads(inv(state_dir, "dr.report", report_id, "--json").stdout)
        assert shown["details"]["restore"] == {**shown["details"]["restore"], "instance": new, "kept": True}
    finally:
        from spywatcher_ops.backends.sandbox import lifecycle

        env = sandbox_environment(state_dir)
        base = None
        try:
            base = Path(env.database.box.statefile.load()["pg_base"])
        except Exception:  # noqa: BLE001 - nothing was provisioned
            pass
        lifecycle.down(env, purge=True)
        stray = server_pids_under(state_dir) + (server_pids_under(base) if base else [])
        assert not stray, f"processes left running: {stray}"


@pytest.mark.real
@pytest.mark.e2e
def test_sigterm_during_a_drill_rolls_back_and_exits_4(pg_pair):
    state_dir = pg_pair.state_dir
    journal = state_dir / "journal" / "sandbox.jsonl"
    before = len(read(journal))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "dr.drill",
            "--scenario",
            "db-stall",
            "--param",
            "stall_s=30",
            "--no-up",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)},
    )
    try:
        deadline = time.monotonic() + 30
        fault = None
        while fault is None and time.monotonic() < deadline and proc.poll() is None:
            fault = next((r for r in read(journal)[before:] if r.get("step") == "fault"), None)
            time.sleep(0.05)
        assert fault is not None, proc.communicate()
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, out + err
    assert time.monotonic() - sent < 10  # it did not sit out the 30 s freeze
    assert "aborted (terminated by signal SIGTERM); rollback ran" in err
    assert process_state(fault["pids"][0]) not in ("T", "Z", None)
    records = [r for r in read(journal) if r.get("op_id") == fault["op_id"]]
    assert records[-1]["event"] == "end" and records[-1]["outcome"] == "RolledBack"
    assert any(r.get("step") == "undone" for r in records)
    assert "db-stall" in out and "ABORTED" in out  # the scorecard still says what happened


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
