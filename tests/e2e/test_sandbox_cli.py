"""End to end through the real `inv` command: sandbox.up/status/down and db.* on the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.paths import ROOT
from support.sandbox import server_pids_under, tracked_pids

from spywatcher_ops.backends.sandbox.net import pid_alive
from spywatcher_ops.backends.sandbox.paths import MARKER


def inv(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    return subprocess.run(["inv", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.real
@pytest.mark.e2e
def test_sandbox_lifecycle_and_db_tasks_through_inv(tmp_path):
    state_dir = tmp_path / "state"
    try:
        up = inv(state_dir, "sandbox.up")
        assert up.returncode == 0, up.stderr
        assert "target_session_attrs=read-write" in up.stdout and "created" in up.stdout
        assert (state_dir / "sandbox" / "redis" / MARKER).is_file()

        status = inv(state_dir, "sandbox.status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        roles = sorted(n["role"] for n in report["database"])
        assert roles == ["primary", "standby"]
        standby = next(n for n in report["database"] if n["role"] == "standby")
        assert standby["replication"] == "streaming" and standby["sync_state"] == "sync"
        assert "lag_bytes" in standby and all(n["alive"] and n["pid"] for n in report["database"])
        assert {n["role"] for n in report["cache"]} == {"primary", "replica", "sentinel"}

        again = inv(state_dir, "sandbox.up", "--json")
        assert again.returncode == 0, again.stderr
        assert {n["action"] for n in json.loads(again.stdout)["database"]} == {"running"}

        window = inv(state_dir, "db.window", "--json")
        assert window.returncode == 0, window.stderr
        earliest = datetime.fromisoformat(json.loads(window.stdout)["earliest"].replace("Z", "+00:00"))
        too_early = (earliest - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        refused = inv(state_dir, "db.restore", "--to", too_early, "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "window" in refused.stderr and earliest.strftime("%Y-%m-%dT%H:%M") in refused.stderr
        # a time after the newest WAL, in the future: also exit 2 showing the window, nothing created
        instances = set(json.loads((state_dir / "sandbox" / "state.json").read_text())["instances"])
        future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        refused = inv(state_dir, "db.restore", "--to", future, "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and future in errors[0] and "in the future" in errors[0]
        assert "restorable window" in errors[0] and earliest.strftime("%Y-%m-%dT%H:%M") in errors[0]
        assert set(json.loads((state_dir / "sandbox" / "state.json").read_text())["instances"]) == instances

        snap = inv(state_dir, "db.snapshot", "--label", "e2e", "--yes")
        assert snap.returncode == 0, snap.stderr
        listed = inv(state_dir, "db.snapshots", "--json")
        assert listed.returncode == 0, listed.stderr
        assert "-e2e-" in listed.stdout and "automated" in listed.stdout

        # restore -> swap -> reverse swap, on real servers
        restored = inv(state_dir, "db.restore", "--to", "latest", "--name", "fix-e2e", "--yes")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        unchecked = inv(state_dir, "db.swap", "--instance", "fix-e2e", "--yes")  # not verified yet: refused
        assert unchecked.returncode == 2 and "no passed db.verify of it is recorded" in unchecked.stderr
        checked = inv(state_dir, "db.verify", "--instance", "fix-e2e")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        swapped = inv(state_dir, "db.swap", "--instance", "fix-e2e", "--yes")
        assert swapped.returncode == 0, swapped.stdout + swapped.stderr
        reverse = next(line for line in swapped.stdout.splitlines() if line.startswith("to reverse: "))
        back = inv(state_dir, *reverse.removeprefix("to reverse: inv ").split(), "--yes")
        assert back.returncode == 0, back.stdout + back.stderr
        state = json.loads((state_dir / "sandbox" / "state.json").read_text())
        main = state["instances"][state["main"]]
        primary_port = state["nodes"][main["primary"]]["port"]
        slots = _query(
            state_dir, primary_port, "SELECT slot_name, active FROM pg_replication_slots ORDER BY 1"
        )
        # the only slot is the new standby's, in use: none left behind for the discarded standby
        assert slots == [(main["standby"].replace("-", "_"), True)], slots
        assert inv(state_dir, "sandbox.status").returncode == 0

        failover = inv(state_dir, "db.failover", "--yes")
        assert failover.returncode == 0, failover.stderr
        assert "promote" in failover.stdout and "rebuilt" in failover.stdout

        # a process that died is reported (exit 3) and repaired by up
        state = json.loads((state_dir / "sandbox" / "state.json").read_text())
        standby_name = state["instances"][state["main"]]["standby"]
        os.kill(state["nodes"][standby_name]["pid"], 9)
        broken = inv(state_dir, "sandbox.status")
        assert broken.returncode == 3 and standby_name in broken.stderr
        repaired = inv(state_dir, "sandbox.up")
        assert repaired.returncode == 0, repaired.stderr
        assert inv(state_dir, "sandbox.status").returncode == 0

        pids = tracked_pids(state_dir)
        down = inv(state_dir, "sandbox.down")
        assert down.returncode == 0, down.stderr
        assert not [p for p in pids if pid_alive(p)]
    finally:
        base = None
        state_file = state_dir / "sandbox" / "state.json"
        if state_file.exists():
            base = Path(json.loads(state_file.read_text())["pg_base"])
        purge = inv(state_dir, "sandbox.down", "--purge", "--yes")
        assert purge.returncode == 0, purge.stderr
    assert not (state_dir / "sandbox").exists()
    assert base is not None and not base.exists()
    assert server_pids_under(base) == [] and server_pids_under(state_dir) == []


def _query(state_dir, port, sql):
    from spywatcher_ops.backends.sandbox.postgres import server as pg
    from spywatcher_ops.backends.sandbox.secrets import SandboxSecrets

    password = SandboxSecrets(state_dir / "sandbox").postgres("superuser")
    deadline = time.monotonic() + 10  # the new standby may still be connecting
    while True:
        rows = pg.query(port, sql, password=password)
        if all(r[1] for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.mark.e2e
def test_missing_postgres_binaries_is_one_line_naming_the_package(tmp_path):
    config = tmp_path / "ops.yaml"
    config.write_text(f"ops:\n  environments:\n    sandbox:\n      pg_bin: {tmp_path / 'nowhere'}\n")
    result = subprocess.run(
        ["inv", "-f", str(config), "sandbox.up"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(tmp_path / "state")},
        timeout=60,
    )
    assert result.returncode == 3
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "apt-get install postgresql-15" in errors[0]


@pytest.mark.e2e
def test_missing_redis_server_is_found_before_postgres_is_set_up(tmp_path):
    """A PATH with only the virtualenv hides redis-server (the PostgreSQL binaries are found by path)."""
    state_dir = tmp_path / "state"
    venv_bin = Path(sys.executable).parent
    result = subprocess.run(
        [str(venv_bin / "inv"), "sandbox.up"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(venv_bin), "INVOKE_OPS_STATE_DIR": str(state_dir)},
        timeout=60,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "apt-get install redis-server" in errors[0], result.stderr
    assert not (state_dir / "sandbox" / "state.json").exists()
    assert server_pids_under(state_dir) == []
    from spywatcher_ops.backends.sandbox.postgres.provision import default_pg_base

    assert not default_pg_base(state_dir / "sandbox").exists()


@pytest.mark.e2e
def test_sandbox_tasks_refuse_an_aws_environment(tmp_path):
    result = inv(tmp_path, "sandbox.status", "--env", "staging")
    assert result.returncode == 2
    assert "sandbox environments only" in result.stderr
