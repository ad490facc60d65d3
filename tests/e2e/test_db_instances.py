"""`inv db.instances`: the live instance and what the toolkit restored, with db.delete for the rest
(moto through `inv`, and a real restore on the sandbox)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.paths import ROOT


def _inv(state_dir: Path, *args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "250"}
    if endpoint:
        environ["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _instance(rds: Any, name: str, tags: dict[str, str], *, klass: str = "db.t3.medium") -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        EngineVersion="15.3",
        DBInstanceClass=klass,
        AllocatedStorage=50,
        StorageType="gp3",
        MasterUsername="postgres",
        MasterUserPassword="master-Secret-1",
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def test_instances_on_aws(moto_staging: dict[str, Any], state_dir: Path):
    import boto3

    rds = boto3.client("rds", region_name="us-east-1")
    base = {"Environment": "staging", "Project": "spywatcher"}
    _instance(
        rds,
        "spywatcher-staging-db-restored-20261125t150000z",
        {
            **base,
            "ManagedBy": "spywatcher-ops",
            "RestoredFrom": "spywatcher-staging-db",
            "RestorePoint": "2026-11-25T14:03:00.000Z",
        },
    )
    _instance(rds, "spywatcher-staging-analytics", {**base, "ManagedBy": "terraform"}, klass="db.r6g.large")
    _instance(
        rds,
        "spywatcher-production-db-restored-1",
        {"Environment": "production", "ManagedBy": "spywatcher-ops"},
    )
    done = _inv(state_dir, "db.instances", "--env", "staging", "--json", endpoint=moto_staging["endpoint"])
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in json.loads(done.stdout)["instances"]}
    assert list(rows)[0] == "spywatcher-staging-db"  # the live one first
    assert set(rows) == {
        "spywatcher-staging-db",
        "spywatcher-staging-db-restored-20261125t150000z",
        "spywatcher-staging-analytics",
    }  # not another environment's
    live = rows["spywatcher-staging-db"]
    assert (
        live["live"]
        and live["delete_command"] is None
        and live["operation"] == "live: serves the application"
    )
    assert live["cost_class"] == "db.t3.medium, Multi-AZ (x2), 50 GiB gp3"
    restored = rows["spywatcher-staging-db-restored-20261125t150000z"]
    assert restored["operation"] == "db.restore of spywatcher-staging-db to 2026-11-25T14:03:00.000Z"
    assert restored["delete_command"] == (
        "inv db.delete --env staging --instance spywatcher-staging-db-restored-20261125t150000z"
    )
    other = rows["spywatcher-staging-analytics"]
    assert other["operation"] == "not made by this toolkit" and other["delete_command"] is None
    done = _inv(state_dir, "db.instances", "--env", "staging", endpoint=moto_staging["endpoint"])
    assert "3 database instance(s) on staging" in done.stdout
    assert done.stdout.strip().splitlines()[-2:] == [
        "1 instance(s) made by the toolkit no longer serve; when they are not needed:",
        "  inv db.delete --env staging --instance spywatcher-staging-db-restored-20261125t150000z",
    ]


def test_instances_on_the_sandbox_after_a_real_restore(sandbox_env: Any):
    state_dir = sandbox_env.settings.state_dir
    done = _inv(state_dir, "db.restore", "--to", "latest", "--name", "spywatcher-sandbox-db-inv", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    done = _inv(state_dir, "db.instances", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["instances"]
    assert [r["id"] for r in rows] == ["spywatcher-sandbox-db", "spywatcher-sandbox-db-inv"]
    restored = rows[1]
    assert restored["operation"].startswith("db.restore of point in time")
    assert restored["status"] == "available" and restored["endpoint"].startswith("127.0.0.1:")
    assert restored["cost_class"] == "local processes (no charge)"
    assert restored["delete_command"] == "inv db.delete --env sandbox --instance spywatcher-sandbox-db-inv"
    assert rows[0]["delete_command"] is None
