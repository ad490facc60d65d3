"""Issue 10 item 6 and item 9 (first bullet), on real servers: the sandbox needs passwords
everywhere (PostgreSQL scram-sha-256 for every role, replication included; Redis
requirepass; sentinels their own), keeps them in one 0600 file, never prints or journals
them, runs Redis as the `redis` user when we are root, and `sandbox.status` calls a node
alive only when it answers (a SIGSTOPped primary is not)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT

from spywatcher_ops.core.errors import NotReady

pytestmark = pytest.mark.real


def _state_dir(env: Any) -> Path:
    return env.database.box.root.parent


def _secrets(env: Any) -> dict[str, Any]:
    return dict(json.loads(env.database.box.secrets.path.read_text()))


def _all_passwords(env: Any) -> list[str]:
    data = _secrets(env)
    return [*data["postgres"].values(), *data["redis"].values()]


def _inv(env: Any, *args: str) -> subprocess.CompletedProcess[str]:
    run_env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(_state_dir(env)), "COLUMNS": "200"}
    return subprocess.run(["inv", *args], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=120)


def test_status_gives_urls_and_the_password_file_but_never_a_password(sandbox_env):
    done = _inv(sandbox_env, "sandbox.status", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["password_file"] == str(sandbox_env.database.box.secrets.path)
    assert report["database_url"].startswith("postgresql://spywatcher@127.0.0.1:")
    assert report["passwords"]["database_url"] == "postgres.app"
    human = _inv(sandbox_env, "sandbox.status")
    assert human.returncode == 0 and report["password_file"] in human.stdout
    journal = [
        p.read_text(errors="replace")
        for p in _state_dir(sandbox_env).rglob("*")
        if p.is_file()
        and p.suffix in (".jsonl", ".json", ".log", ".md", ".html")
        and p.name != "secrets.json"
        and "pg_wal" not in p.parts
    ]
    for secret in _all_passwords(sandbox_env):
        for text in (done.stdout, done.stderr, human.stdout, human.stderr, *journal):
            assert secret not in text


def test_a_frozen_primary_is_not_alive_and_status_exits_3(sandbox_env):
    state = sandbox_env.database.box.statefile.load()
    name = state["instances"][state["main"]]["primary"]
    pid = int(state["nodes"][name]["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        done = _inv(sandbox_env, "sandbox.status", "--json")
        human = _inv(sandbox_env, "sandbox.status")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert done.returncode == 3, done.stderr
    row = next(r for r in json.loads(done.stdout)["database"] if r["name"] == name)
    assert row["alive"] is False and row["process"] == "stopped by SIGSTOP" and row["pid"] == pid
    assert human.returncode == 3
    assert (
        "NO (stopped)" in human.stdout
        and f"not answering: {name} (process: stopped by SIGSTOP)" in human.stderr
    )
    # resumed, it answers again
    after = _inv(sandbox_env, "sandbox.status", "--json")
    assert after.returncode == 0, after.stderr
    row = next(r for r in json.loads(after.stdout)["database"] if r["name"] == name)
    assert row["alive"] is True and row["process"] == "running"


def test_a_sandbox_made_before_passwords_is_refused_with_the_reset_command(sandbox_env):
    box = sandbox_env.database.box
    state = box.statefile.load()
    pids = {name: node["pid"] for name, node in state["nodes"].items()}
    legacy = dict(state)
    legacy.pop("auth")
    box.statefile.save(legacy)
    try:
        with pytest.raises(NotReady) as refused:
            box.preflight()
        done = _inv(sandbox_env, "sandbox.up")
    finally:
        box.statefile.save(state)
    assert "earlier spywatcher-ops" in str(refused.value) and "sandbox.reset" in refused.value.hint
    assert done.returncode == 3 and "inv sandbox.reset --yes" in done.stderr, done.stderr
    assert {name: node["pid"] for name, node in box.statefile.load()["nodes"].items()} == pids
