"""`db.rotate-credentials` on AWS: Secrets Manager versions and staging labels (moto), the password
really changed and logged in with on a real TLS PostgreSQL behind the instance's tunnel; a new
password that does not log in leaves the old one current."""

from __future__ import annotations

from typing import Any

from support.aws import SECRET


def _stages() -> dict[str, list[str]]:
    import boto3

    return boto3.client("secretsmanager", region_name="us-east-1").describe_secret(SecretId=SECRET)[
        "VersionIdsToStages"
    ]


def test_through_inv_dry_run_and_bad_environment(moto_staging: dict[str, Any], state_dir: Any):
    import os
    import subprocess
    import sys

    from support.paths import ROOT

    environ = {
        **os.environ,
        "INVOKE_OPS_STATE_DIR": str(state_dir),
        "AWS_ENDPOINT_URL": moto_staging["endpoint"],
    }

    def inv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    before = _stages()
    done = inv("db.rotate-credentials", "--env", "staging", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "DRY RUN - would make these calls: rotate the database password of spywatcher" in done.stdout
    assert "app-Secret-42" not in done.stdout + done.stderr and "'password': '****'" in done.stdout
    assert _stages() == before
    done = inv("db.rotate-credentials", "--env", "staging")  # no terminal, no --yes: refused before any call
    assert done.returncode == 2 and "needs confirmation" in done.stderr
    assert _stages() == before
    done = inv("db.rotate-credentials", "--env", "nowhere")
    assert done.returncode == 2 and "--env nowhere: unknown environment" in done.stderr
