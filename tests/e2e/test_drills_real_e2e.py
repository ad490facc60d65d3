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
from support.paths import ROOT
from support.sandbox import sandbox_environment, server_pids_under

from spywatcher_ops.backends.sandbox.net import process_state
from spywatcher_ops.core.journal import read


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
