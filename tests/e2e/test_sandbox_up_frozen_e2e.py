"""`inv sandbox.up` says "is up" only after every process answered: a standby stopped with
SIGSTOP keeps its pid, `up` adopts it as running, and used to print "sandbox sandbox is up"
with exit 0 while the standby could not take over."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

import pytest
from support.paths import ROOT

pytestmark = pytest.mark.real


def _inv(env: Any, *args: str) -> subprocess.CompletedProcess[str]:
    state_dir = env.database.box.root.parent
    run_env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "200"}
    return subprocess.run(["inv", *args], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=180)


def test_up_with_a_frozen_standby_is_exit_3_naming_it_not_up(sandbox_env):
    state = sandbox_env.database.box.statefile.load()
    name = state["instances"][state["main"]]["standby"]
    pid = int(state["nodes"][name]["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        done = _inv(sandbox_env, "sandbox.up")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "is up" not in done.stdout
    assert f"not answering: {name} (process: stopped by SIGSTOP)" in done.stderr
    # resumed, up says so again
    again = _inv(sandbox_env, "sandbox.up")
    assert again.returncode == 0, again.stderr
    assert "is up" in again.stdout
