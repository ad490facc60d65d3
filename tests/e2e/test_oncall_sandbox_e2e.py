"""`inv oncall` / `inv status` on the sandbox: its alarms, evaluated from the real servers now,
lead to the runbooks (`inv runbook.show` on the linked name)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from support.paths import ROOT

from spywatcher_ops.backends.sandbox import lifecycle


def _inv(env: Any, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(env.settings.state_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_a_healthy_sandbox_has_nothing_firing(sandbox_env: Any) -> None:
    done = _inv(sandbox_env, "oncall", "--env", "sandbox")
    assert done.returncode == 0, done.stderr
    assert "no alarm in ALARM on sandbox" in done.stdout, done.stdout
    listed = json.loads(_inv(sandbox_env, "oncall", "--all", "--json").stdout)
    assert listed["source"] == "sandbox state, evaluated now (no alarm history)"
    # only the one without a limit to measure against (no maxmemory) is shown, never as OK
    assert [a["alarm"] for a in listed["alarms"]] == ["spywatcher-sandbox-cache-memory-high"]
    status = _inv(sandbox_env, "status", "--env", "sandbox")
    assert "none in ALARM of 8 evaluated now" in status.stdout, status.stdout


def test_a_killed_primary_pages_with_the_database_runbook(sandbox_env: Any) -> None:
    env = sandbox_env
    env.faults.kill(env.faults.primary())
    try:
        done = _inv(env, "oncall", "--env", "sandbox")
        data = json.loads(_inv(env, "oncall", "--json").stdout)
        status = _inv(env, "status", "--env", "sandbox")
    finally:
        lifecycle.up(env)
    # the README: a firing alarm a runbook covers exits 0 (1 only for an alarm no runbook covers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spywatcher-sandbox-db-unavailable" in done.stdout
    assert "inv runbook.run database-unavailable --env sandbox" in done.stdout
    row = next(a for a in data["alarms"] if a["alarm"] == "spywatcher-sandbox-db-unavailable")
    assert row["state"] == "ALARM" and row["runbook"] == "database-unavailable"
    assert "does not answer SELECT 1 within 2 s" in row["reason"] and row["age_s"] is not None
    assert "spywatcher-sandbox-db-unavailable" in status.stdout and status.returncode == 1, status.stdout
    shown = _inv(env, "runbook.show", row["runbook"])
    assert shown.returncode == 0 and "spywatcher-production-db-unavailable" in shown.stdout


def test_a_frozen_standby_fires_the_replication_alarm_with_its_runbook(sandbox_env: Any) -> None:
    from spywatcher_ops.backends.sandbox import net
    from spywatcher_ops.core.ports import Processes

    env = sandbox_env
    pid = int(env.database.describe().details["standby"]["pid"])
    standby = Processes("standby", tuple((p, net.start_time(p)) for p in [pid, *net.children(pid)]))
    env.faults.freeze(standby)
    try:
        done = _inv(env, "oncall", "--env", "sandbox")
    finally:
        env.faults.thaw(standby)
    # runbooks/replication-degraded.md names it: covered, exit 0 (1 only for an alarm no runbook covers)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spywatcher-sandbox-db-replica-lag" in done.stdout
    assert "inv runbook.run replication-degraded --env sandbox" in done.stdout
    assert "without a runbook" not in done.stderr
