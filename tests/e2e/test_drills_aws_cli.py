"""dr.preflight on an aws environment through the real inv, against a moto server:
an instance whose endpoint cannot be reached fails preflight cleanly (exit 3,
nothing injected, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.paths import ROOT


@pytest.mark.e2e
def test_preflight_on_unreachable_rds_fails_cleanly_with_exit_3(moto_staging, state_dir):
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "dr.preflight", "--env", "staging", "--scenario", "db-failover"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "Traceback" not in output
    assert "FAILED database writable" in output
    assert "nothing was injected" in output
