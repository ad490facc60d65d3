"""db.resize and cache.resize: refused classes (exit 2, nothing done), the sandbox's rolling restart
for real with the client impact measured by the drill probes, RDS and ElastiCache through moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.paths import ROOT


def _inv(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["db.resize", "--class", "db.t3.huge"],
            "--class db.t3.huge: not a class the toolkit knows; accepted: db.m5",
        ),
        (["db.resize"], "--class is required, e.g. --class db.t3.large"),
        (["db.resize", "--class", "db.t3.large", "--when", "tonight"], "--when tonight: use now"),
        (
            ["cache.resize", "--node-type", "cache.t9.mega"],
            "--node-type cache.t9.mega: not a class the toolkit knows",
        ),
        (["cache.resize", "--node-type", "cache.t3.medium"], "its Redis has no node type"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(state_dir: Path, args: list[str], message: str):
    done = _inv(state_dir, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert not (state_dir / "journal").exists()  # nothing was done, nothing journalled


def _show(port: int, password: str | None, name: str) -> str:
    with psycopg.connect(
        host="127.0.0.1", port=port, dbname="postgres", user="postgres", password=password, connect_timeout=5
    ) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
        assert row is not None
        return str(row[0])


def test_db_resize_on_the_sandbox_rolls_the_settings_in_and_measures_the_pause(sandbox_env: Any):
    state_dir = sandbox_env.settings.state_dir
    box = sandbox_env.database.box
    before = sandbox_env.database.describe()
    # the sandbox starts with PostgreSQL's 128MB, what db.t3.large maps to: go down first
    done = _inv(state_dir, "db.resize", "--class", "db.t3.medium", "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["settings"] == {"shared_buffers": "64MB"} and data["old"] == "shared_buffers=128MB"
    reads = data["impact"]["db-read"]
    assert reads["attempts"] > 0 and reads["recovered"] is True and reads["impaired_s"] is not None
    after = sandbox_env.database.describe()
    assert after.port != before.port  # a switchover happened: the standby serves now
    for node in (after.details["primary"], after.details["standby"]):
        assert _show(node["port"], box.password(), "shared_buffers") == "64MB"
    done = _inv(state_dir, "db.resize", "--class", "db.t3.large", "--yes")
    assert done.returncode == 0, done.stderr
    assert "now db.t3.large (was shared_buffers=64MB)" in done.stdout
    assert "client impact: " in done.stdout
    assert _show(sandbox_env.database.describe().port, box.password(), "shared_buffers") == "128MB"
    # the settings already in place: nothing to do, nothing restarted
    port = sandbox_env.database.describe().port
    done = _inv(state_dir, "db.resize", "--class", "db.t3.large", "--yes")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "already runs with shared_buffers=128MB" in done.stderr and "nothing to do" in done.stderr
    assert sandbox_env.database.describe().port == port


def test_db_resize_in_the_window_on_the_sandbox_only_queues(sandbox_env: Any):
    state_dir = sandbox_env.settings.state_dir
    port = sandbox_env.database.describe().port
    done = _inv(state_dir, "db.resize", "--class", "db.t3.xlarge", "--when", "window", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "db.t3.xlarge queued for the maintenance window" in done.stdout
    pending = {c.name: c.pending for c in sandbox_env.parts.maintenance().pending_changes()}
    assert pending == {"shared_buffers": "256MB"}
    assert sandbox_env.database.describe().port == port  # nothing restarted
    # leave the shared sandbox as it was: apply nothing, drop the queued change
    from spywatcher_ops.backends.sandbox.postgres.switchover import load_group, save_group

    group = load_group(sandbox_env.database.box)
    group["pending"].clear()
    save_group(sandbox_env.database.box, group)
