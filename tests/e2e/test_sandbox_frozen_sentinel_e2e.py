"""`inv sandbox.status` with a SIGSTOPped Redis sentinel: the README's promise, `NO (stopped)`
and exit 3 (it showed 'yes' and exited 0: the row's alive came from the process check)."""

from __future__ import annotations

import json
import os
import signal

import pytest
from support.sandbox_cli import inv

pytestmark = pytest.mark.real


def test_a_frozen_sentinel_is_not_alive_and_status_exits_3(sandbox_env):
    state_dir = sandbox_env.database.box.root.parent
    before = inv(state_dir, "sandbox.status", "--json")
    assert before.returncode == 0, before.stderr
    sentinel = next(r for r in json.loads(before.stdout)["cache"] if r["role"] == "sentinel")
    pid = int(sentinel["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        done = inv(state_dir, "sandbox.status", "--json")
        human = inv(state_dir, "sandbox.status")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert done.returncode == 3, done.stdout + done.stderr
    row = next(r for r in json.loads(done.stdout)["cache"] if r["name"] == sentinel["name"])
    assert row["alive"] is False and row["process"] == "stopped by SIGSTOP" and row["pid"] == pid
    assert human.returncode == 3 and "NO (stopped)" in human.stdout
    assert f"not answering: {sentinel['name']} (process: stopped by SIGSTOP)" in human.stderr
