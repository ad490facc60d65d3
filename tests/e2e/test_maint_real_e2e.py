"""The maintenance engine on a real sandbox: housekeeping on real bloat, the
Multi-AZ style switchover measured by the probes (no acknowledged write lost),
a standby that is down, and `inv maint.run` end to end: report, two runs at
once, SIGKILL mid-step then --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT

from spywatcher_ops.core.journal import read
from spywatcher_ops.maintenance import report as rep

pytestmark = pytest.mark.real


def _inv(
    state_dir: Path, plans_dir: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(state_dir, plans_dir),
    )


def _env(state_dir: Path, plans_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "INVOKE_OPS_STATE_DIR": str(state_dir),
        "INVOKE_OPS_MAINTENANCE_PLANS_DIR": str(plans_dir),
    }


def test_inv_maint_run_end_to_end_locked_killed_and_resumed(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    state_dir = env.settings.state_dir
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n    window: always\n    steps: [db-housekeeping, db-engine]\n"
    )
    done = _inv(state_dir, plans_dir, "maint.pending", "--set", "max_locks_per_transaction=80")
    assert done.returncode == 0, done.stderr
    journal = state_dir / "journal" / "sandbox.jsonl"
    first = subprocess.Popen(
        [sys.executable, "-m", "invoke", "maint.run"],
        cwd=ROOT,
        env=_env(state_dir, plans_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        started = None
        while started is None and time.monotonic() < deadline:
            started = next(
                (
                    r
                    for r in read(journal)
                    if r.get("step") == "maint-step" and r.get("index") == 2 and r.get("status") == "started"
                ),
                None,
            )
            time.sleep(0.01)
        assert started is not None, first.communicate(timeout=60)
        # Freeze the run inside the step (the step takes 0.7 s on a quiet machine), so that the
        # second run below cannot outlast it, then kill it there.
        time.sleep(0.2)
        os.kill(first.pid, signal.SIGSTOP)
        # a second run while the first holds the environment lock
        second = _inv(state_dir, plans_dir, "maint.run")
        assert second.returncode == 3 and "locked" in second.stderr, second.stderr
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    run_id = started["op_id"]
    status = _inv(state_dir, plans_dir, "maint.status")
    assert f"UNFINISHED: run {run_id}" in status.stdout and "next step 2. db-engine" in status.stdout, (
        status.stdout
    )
    fresh = _inv(state_dir, plans_dir, "maint.run")
    assert fresh.returncode == 3 and f"--resume {run_id}" in fresh.stderr, fresh.stderr
    resumed = _inv(state_dir, plans_dir, "maint.run", "--resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = json.loads(resumed.stdout)
    assert doc["id"] == run_id and doc["state"] == "complete"
    assert [s["status"] for s in doc["steps"]] == ["ok", "ok"]
    assert len(doc["operations"]) >= 2  # the killed one and the resume
    assert env.database.describe().status == "available"
    assert env.parts.maintenance().pending_changes() == []
    report = _inv(state_dir, plans_dir, "maint.report", run_id, "--env", "sandbox")
    assert report.returncode == 0, report.stderr
    html = Path(next(ln.split(": ", 1)[1] for ln in report.stdout.splitlines() if ln.startswith("html: ")))
    page = html.read_text()
    assert "<svg" in page and "db-engine" in page and run_id in page
    built = rep.build([r for r in read(journal) if r.get("op_id") in doc["operations"]], run_id)
    assert built["state"] == "complete"
    history = _inv(state_dir, plans_dir, "maint.history", "--env", "sandbox", "--json")
    groups = {g["step"]: g for g in json.loads(history.stdout)["groups"]}
    assert groups["db-engine"]["ok"] >= 1


def test_sigterm_mid_step_rolls_it_back_and_exits_4(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    state_dir = env.settings.state_dir
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n    window: always\n    steps: [db-engine, tls-renew]\n"
    )
    assert _inv(state_dir, plans_dir, "maint.pending", "--set", "max_prepared_transactions=5").returncode == 0
    journal = state_dir / "journal" / "sandbox.jsonl"
    seen = len(read(journal))
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "maint.run"],
        cwd=ROOT,
        env=_env(state_dir, plans_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    started = None
    while started is None and time.monotonic() < deadline:
        started = next(
            (
                r
                for r in read(journal)[seen:]
                if r.get("step") == "maint-step" and r.get("status") == "started"
            ),
            None,
        )
        time.sleep(0.01)
    assert started is not None
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert f"--resume {started['op_id']}" in err
    records = [r for r in read(journal) if r.get("op_id") == started["op_id"]]
    final = [r for r in records if r.get("step") == "maint-step" and r.get("status") != "started"]
    assert [(r["index"], r["status"]) for r in final][-1] == (2, "not-started")
    first = next(r for r in final if r["index"] == 1)
    # the step ended, or was rolled back and will run again: either way the data tier is whole
    assert first["status"] in ("ok", "interrupted"), first
    assert env.database.describe().status == "available"
    resumed = _inv(state_dir, plans_dir, "maint.run", "--resume", started["op_id"])
    assert resumed.returncode == 0, resumed.stderr
    assert env.parts.maintenance().pending_changes() == []


def test_cutoff_reached_the_rest_is_not_started_exit_1(sandbox_env: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    env = sandbox_env
    state_dir = env.settings.state_dir
    # a zone where the window below does not cross midnight, so its day is today's
    zone = next(
        z for z in ("UTC", "Asia/Tokyo", "America/New_York") if 1 <= datetime.now(ZoneInfo(z)).hour <= 22
    )
    now = datetime.now(ZoneInfo(zone))
    start, end = now - timedelta(minutes=5), now + timedelta(minutes=18)  # the cutoff 2-3 minutes from now
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n"
        f"    window: {{day: {now.strftime('%A').lower()}, start: '{start:%H:%M}', end: '{end:%H:%M}', "
        f"timezone: {zone}, notice_days: 0, cutoff_minutes: 15}}\n"
        "    steps: [tls-renew, db-housekeeping, db-engine]\n"
    )
    history = state_dir / "maintenance" / "history.jsonl"
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a") as fh:  # tls-renew is known to be quick here, housekeeping to take 10 minutes
        for step, took in [("tls-renew", 1.0)] * 20 + [("db-housekeeping", 600.0)] * 20:
            fh.write(
                json.dumps(
                    {
                        "env": "sandbox",
                        "step": step,
                        "status": "ok",
                        "duration_s": took,
                        "at": datetime.now(UTC).isoformat(),
                        "run_id": "x",
                        "impact": {},
                        "lost": {},
                    }
                )
                + "\n"
            )
    plan = _inv(state_dir, plans_dir, "maint.plan", "--json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["not_started"] == ["db-housekeeping", "db-engine"]
    done = _inv(state_dir, plans_dir, "maint.run", "--json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["state"] == "cutoff"
    assert [(s["name"], s["status"], s["reason"]) for s in doc["steps"]] == [
        ("tls-renew", "ok", None),
        ("db-housekeeping", "not-started", "cutoff"),
        ("db-engine", "not-started", "cutoff"),
    ]
    assert "error: run" in done.stderr and "cutoff" in done.stderr

    # a run in which not even the first step fits takes no pre-maintenance snapshot: nothing will change
    def snapshot_ids() -> list[str]:
        return [s["id"] for s in json.loads(_inv(state_dir, plans_dir, "db.snapshots", "--json").stdout)]

    before = snapshot_ids()
    (plans_dir / "sunday.yaml").write_text(
        (plans_dir / "sunday.yaml")
        .read_text()
        .replace("[tls-renew, db-housekeeping, db-engine]", "[db-housekeeping]")
    )
    again = _inv(state_dir, plans_dir, "maint.run", "--json")
    assert again.returncode == 1, again.stderr
    assert [(s["name"], s["status"]) for s in json.loads(again.stdout)["steps"]] == [
        ("db-housekeeping", "not-started")
    ]
    assert snapshot_ids() == before
