"""maint.check names the plan file where it really is (audit of issue 13).

A plans_dir outside the repository (ops.maintenance.plans_dir) was reported as
maintenance/<file>, a file that does not exist there; a plans_dir that does not
exist was 'no plans', exit 0.
"""

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


def test_a_plan_outside_the_repository_is_named_by_its_real_path(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("environments:\n  sandbox:\n    steps:\n      - step: db-nope\n")
    done = _inv("maint.check", INVOKE_OPS_MAINTENANCE_PLANS_DIR=str(tmp_path))
    assert done.returncode == 2
    assert (
        f"error: {tmp_path / 'bad.yaml'}:4: environments.sandbox.steps[1]: unknown step 'db-nope'"
        in done.stderr
    )
    done = _inv("maint.plan", "--plan", "weekly", INVOKE_OPS_MAINTENANCE_PLANS_DIR=str(tmp_path))
    assert done.returncode == 2
    assert f"--plan weekly: no such plan in {tmp_path}/; known: bad" in done.stderr


def test_the_shipped_plans_keep_their_short_name() -> None:
    done = _inv("maint.check")
    assert done.returncode == 0, done.stderr
    assert "OK maintenance/sunday.yaml" in done.stdout


def test_a_plans_dir_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = _inv("maint.check", INVOKE_OPS_MAINTENANCE_PLANS_DIR=str(missing))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"ops.maintenance.plans_dir {missing}: not a folder" in lines[0]
    assert not missing.exists()
