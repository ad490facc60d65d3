"""An aws environment with no credentials, or a profile that does not exist: exit 3 with one line,
not botocore's traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT


def _inv(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {
        **keep,
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-creds"),
        "INVOKE_OPS_STATE_DIR": str(home / "state"),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_no_credentials_is_not_ready(tmp_path: Path) -> None:
    done = _inv(tmp_path, "db.window", "--env", "staging")
    assert done.returncode == 3, done.stderr
    assert (
        done.stderr.strip().startswith("error: no AWS credentials found") and "Traceback" not in done.stderr
    )


def test_a_profile_that_does_not_exist_is_not_ready(tmp_path: Path) -> None:
    done = _inv(tmp_path, "db.window", "--env", "staging", AWS_PROFILE="nope")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "nope" in done.stderr, done.stderr
