"""Maintenance plans are files: every problem is named with its file, line and what is accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT


def _inv(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_maint_check_and_window_through_inv(tmp_path: Path) -> None:
    done = _inv("maint.check")
    assert done.returncode == 0, done.stderr
    assert "OK maintenance/sunday.yaml" in done.stdout
    done = _inv("maint.window", "--env", "production", "--json")
    assert done.returncode == 0, done.stderr
    import json

    data = json.loads(done.stdout)
    assert data["start"].endswith("T02:00:00.000Z") and data["cutoff"].endswith("T03:45:00.000Z")
    assert data["timezone"] == "UTC" and "inside_now" in data
    done = _inv("maint.window", "--plan", "nightly")
    assert done.returncode == 2 and "--plan nightly: no such plan" in done.stderr


def test_maint_check_exit_2_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("environments:\n  sandbox:\n    steps: [db-housekeeping]\n")
    (tmp_path / "bad.yaml").write_text(
        "environments:\n  sandbox:\n    steps:\n      - step: db-housekeeping\n"
        "        dead_tuples_min: lots\n"
    )
    done = _inv("maint.check", INVOKE_OPS_MAINTENANCE_PLANS_DIR=str(tmp_path))
    assert done.returncode == 2
    assert (
        f"error: {tmp_path / 'bad.yaml'}:5: environments.sandbox.steps[1]: db-housekeeping.dead_tuples_min "
        "'lots': not a whole number;"
    ) in done.stderr
    assert "OK maintenance/ok.yaml" not in done.stdout  # nothing claims OK when a plan is bad
