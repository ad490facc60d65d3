"""A drill suite stopped mid-run through `inv dr.drill` still has a run index that says so:
SIGKILL during its second drill (the index on disk says how far it got; `inv dr.report
latest` re-reads the journal and calls it interrupted), and Ctrl-C (the index says
interrupted at once). Real PostgreSQL pair; the drill that is killed is db-stall."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.paths import ROOT
from support.sandbox_cli import inv

from spywatcher_ops.core.journal import read

pytestmark = [pytest.mark.real, pytest.mark.e2e]

SUITE = ["--scenario", "db-failover,db-stall,pitr-restore", "--param", "stall_s=30", "--no-up"]


def _stop_at_the_stall(state_dir: Path, sig: int) -> tuple[subprocess.Popen, dict]:
    """Run the suite; once db-stall has frozen the primary, send `sig`. (process, the index on disk then)"""
    journal = state_dir / "journal" / "sandbox.jsonl"
    before = len(read(journal))
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "dr.drill", *SUITE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        fault = None
        while fault is None and time.monotonic() < deadline and proc.poll() is None:
            recs = read(journal)[before:]
            stall = {r["op_id"] for r in recs if (r.get("args") or {}).get("scenario") == "db-stall"}
            fault = next((r for r in recs if r.get("op_id") in stall and r.get("step") == "fault"), None)
            time.sleep(0.05)
        assert fault is not None, proc.communicate(timeout=60) if proc.poll() is not None else "no fault"
        (path,) = (state_dir / "reports").glob("*-run-*.json")
        on_disk = json.loads(path.read_text())
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, on_disk


def test_a_suite_killed_mid_run_has_an_index_and_reports_as_interrupted(pg_pair_factory):
    state_dir = pg_pair_factory().state_dir
    proc, during = _stop_at_the_stall(state_dir, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    # what the killed process left: the index as of its last drill
    assert during["state"] == "running" and during["ended_at"] is None
    assert [(i["name"], i["outcome"]) for i in during["items"]] == [("db-failover", "met")]
    assert during["pending"] == ["db-stall", "pitr-restore"]

    shown = inv(state_dir, "dr.report", "latest")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"run {during['id']} on sandbox: INTERRUPTED" in shown.stdout
    assert "db-stall: UNFINISHED" in shown.stdout and "pitr-restore: not run" in shown.stdout
    assert "interrupted after 2 drill(s); never run: pitr-restore" in shown.stdout
    (path,) = (state_dir / "reports").glob("*-run-*.json")
    index = json.loads(path.read_text())  # rewritten by dr.report: now it says interrupted too
    assert index["id"] == during["id"] and index["state"] == index["outcome"] == "interrupted"
    assert [i["outcome"] for i in index["items"]] == ["met", "unfinished"]
    assert "| pitr-restore | - | - | NOT RUN | - |" in path.with_suffix(".md").read_text()

    # the next drill command thaws the frozen primary; the run stays interrupted
    cleaned = inv(state_dir, "dr.preflight", "--scenario", "db-failover")
    assert cleaned.returncode == 0 and "cleaned up after drill" in cleaned.stdout, (
        cleaned.stdout + cleaned.stderr
    )
    again = json.loads(inv(state_dir, "dr.report", "latest", "--json").stdout)
    assert again["state"] == "interrupted" and [i["outcome"] for i in again["items"]] == ["met", "killed"]


def test_ctrl_c_mid_suite_rolls_back_and_the_index_says_interrupted(pg_pair_factory):
    state_dir = pg_pair_factory().state_dir
    proc, _during = _stop_at_the_stall(state_dir, signal.SIGINT)
    out, err = proc.communicate()
    assert proc.returncode == 4, out + err  # the drill was aborted and rolled back
    (path,) = (state_dir / "reports").glob("*-run-*.json")
    index = json.loads(path.read_text())
    assert index["state"] == index["outcome"] == "interrupted" and index["ended_at"]
    assert [(i["name"], i["outcome"]) for i in index["items"]] == [
        ("db-failover", "met"),
        ("db-stall", "aborted"),
    ]
    assert index["pending"] == ["pitr-restore"]
    shown = inv(state_dir, "dr.report", "latest", "--json")
    assert json.loads(shown.stdout)["state"] == "interrupted", shown.stdout + shown.stderr
