"""`inv status`: parts read in parallel with a deadline; real sandbox; aws through moto and the in-test
Kubernetes API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.paths import ROOT

# --- the real sandbox ----------------------------------------------------------------------


def _inv(
    state_dir: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _history(state_dir: Path, env: str, outcome: str, at: datetime) -> None:
    path = state_dir / "drills" / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for scenario in ("db-failover", "cache-failover"):
            f.write(
                json.dumps(
                    {
                        "id": f"d-{scenario}",
                        "at": at.isoformat(),
                        "env": env,
                        "scenario": scenario,
                        "outcome": outcome if scenario == "cache-failover" else "met",
                    }
                )
                + "\n"
            )


def test_status_of_the_real_sandbox(sandbox_env: Any):
    state_dir = sandbox_env.settings.state_dir
    done = _inv(state_dir, "status", "--timeout", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in (
        "OK      database     spywatcher-sandbox-db: primary",
        "replication: n2 streaming (sync)",
        "storage:",
        "connections:",
        "OK      cache",
        "sentinels: 3 of 3 answer",
        "memory:",
        "SKIPPED application  the sandbox has no cluster",
        "OK      alarms       none in ALARM of 8 evaluated now",  # the sandbox's, from its servers
        "WARN    drill        no drill on record",
        "OK      window       restorable from",
    ):
        assert expected in out, out
    # a generous deadline: this machine is shared, and a part past --timeout is exit 3 (tested below)
    data = json.loads(_inv(state_dir, "status", "--json", "--timeout", "20").stdout)
    assert data["exit_code"] == 0, data
    assert [p["part"] for p in data["parts"]] == [
        "database",
        "cache",
        "application",
        "nodes",
        "alarms",
        "drill",
        "maintenance",
        "window",
    ]

    _history(state_dir, "sandbox", "missed", datetime.now(UTC) - timedelta(hours=2))
    try:
        done = _inv(state_dir, "status")
        assert done.returncode == 1, done.stdout + done.stderr
        assert (
            "FAILED  drill        last drill" in done.stdout
            and "cache-failover missed or failed" in done.stdout
        )
        assert "runbook drill-failed" in done.stdout
        assert done.stderr.strip().endswith("error: 1 part(s) FAILED on sandbox: drill")
    finally:
        (state_dir / "drills" / "history.jsonl").unlink()


def test_a_frozen_primary_times_out_and_the_rest_still_shows(sandbox_env: Any):
    """SIGSTOP the PostgreSQL primary: connecting hangs; the database part is FAILED after --timeout,
    the cache and the rest are read. The sandbox's alarms (their own 2 s bound) say the primary
    does not answer: db-unavailable in ALARM, so exit 1 (unhealthy), not 3 (only unreadable)."""
    state_dir = sandbox_env.settings.state_dir
    pid = sandbox_env.database.describe().details["primary"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        done = _inv(state_dir, "status", "--timeout", "3")
        took = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED  database     did not answer within 3 s" in done.stdout
    assert "FAILED  alarms       1 in ALARM: spywatcher-sandbox-db-unavailable" in done.stdout
    assert "sentinels: 3 of 3 answer" in done.stdout and "restorable from" in done.stdout
    assert "error: 2 part(s) FAILED on sandbox: alarms, database" in done.stderr
    assert took < 15


def test_bad_timeout_is_refused(state_dir: Path):
    done = _inv(state_dir, "status", "--timeout", "0")
    assert done.returncode == 2
    assert "--timeout 0.0: must be a positive number of seconds" in done.stderr
