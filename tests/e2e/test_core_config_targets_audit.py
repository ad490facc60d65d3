"""Recovery targets must be finite seconds, 0 or more (audit of issue 10, item 9): nan, inf
and negative values were accepted (exit 0) and judged every drill met or missed whatever it
measured ("RTO database nan ms"). Through the real `inv`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT


def inv(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(tmp_path), **env}
    return subprocess.run(["inv", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e999"])
def test_a_target_variable_that_is_not_finite_seconds_is_refused(tmp_path, value):
    done = inv(tmp_path, "dr.scenarios", INVOKE_OPS_TARGETS_RTO_DATABASE=value)
    assert done.returncode == 2, done.stdout
    assert done.stderr.strip() == (
        f"error: INVOKE_OPS_TARGETS_RTO_DATABASE={value}: ops.targets.rto.database must be a number of "
        "seconds, 0 or more, e.g. 60.0"
    )
    assert not (tmp_path / "journal").exists()


def test_a_negative_target_in_a_file_is_refused_and_fractions_still_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ops:\n  targets:\n    rpo:\n      database: -5\n")
    done = inv(tmp_path, "-f", str(bad), "dr.scenarios")
    assert done.returncode == 2 and "ops.targets.rpo.database=-5: " in done.stderr, done.stderr
    done = inv(tmp_path, "dr.scenarios", INVOKE_OPS_TARGETS_RTO_DATABASE="0.5")
    assert done.returncode == 0, done.stderr
    assert "RTO database 0.50 s" in done.stdout
