"""`infra.drift` as a pre-check of the maintenance run (issue 15; `prechecks: {infra_drift: true}`
in the plan), through the real `inv` on staging: the real terraform binary with its S3 backend
and DynamoDB lock on the moto server (as the infra tests do), the staging RDS instance in
the same moto server, and a real TLS PostgreSQL behind its tunnel for the run's probes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.aws import STAGING_DB
from support.infra import BUCKET, KEY, MAIN_TF, TF_LOCK_TABLE, make_tf_backend
from support.paths import ROOT


class World:
    def __init__(self, endpoint: str, tmp: Path, tunnel: str) -> None:
        self.endpoint, self.tmp, self.tunnel = endpoint, tmp, tunnel
        self.infra = tmp / "infra"
        self.infra.mkdir()
        (self.infra / "main.tf").write_text(MAIN_TF)
        self.plans = tmp / "plans"
        self.plans.mkdir()
        self.state = tmp / "state"
        self.conf = tmp / "ops.yaml"
        self.write(var_files=[])
        self.plan(prechecks={"infra_drift": True}, steps=["db-housekeeping"])

    def write(self, var_files: list[str]) -> None:
        backend = {
            "bucket": BUCKET,
            "key": KEY,
            "region": "us-east-1",
            "dynamodb_table": TF_LOCK_TABLE,
            "endpoints": {"s3": self.endpoint, "dynamodb": self.endpoint},
            "use_path_style": True,
            "skip_credentials_validation": True,
            "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            "skip_region_validation": True,
        }
        staging = {
            "db_tunnels": {STAGING_DB: self.tunnel},
            "terraform": {
                "dir": str(self.infra),
                "workspace": "default",
                "var_files": var_files,
                "backend": backend,
            },
        }
        conf = {
            "ops": {
                "aws": {"poll_seconds": 0.05},
                "maintenance": {"plans_dir": str(self.plans)},
                "environments": {"staging": staging},
            }
        }
        self.conf.write_text(yaml.safe_dump(conf))

    def plan(self, **staging: Any) -> None:
        (self.plans / "sunday.yaml").write_text(
            yaml.safe_dump({"environments": {"staging": {"window": "always", **staging}}})
        )

    def inv(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "INVOKE_OPS_STATE_DIR": str(self.state),
            "AWS_ENDPOINT_URL": self.endpoint,
            "TF_CLI_CONFIG_FILE": "/dev/null",
            "COLUMNS": "250",
        }
        done = subprocess.run(
            [sys.executable, "-m", "invoke", "-f", str(self.conf), *args],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=240,
            stdin=subprocess.DEVNULL,
        )
        if code is not None:
            assert done.returncode == code, (
                f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def journal(self) -> list[dict[str, Any]]:
        from spywatcher_ops.core.journal import read

        return read(self.state / "journal" / "staging.jsonl")


@pytest.fixture
def world(moto_staging: Any, tls_postgres: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    make_tf_backend(moto_staging["endpoint"], ops_lock=False)  # staging made the ops lock table
    w = World(moto_staging["endpoint"], tmp_path, f"{tls_postgres.host}:{tls_postgres.port}")
    w.inv("infra.plan", "--env", "staging")
    w.inv("infra.apply", "--env", "staging", "--yes")
    return w


@pytest.fixture
def unapplied_world(
    moto_staging: Any, tls_postgres: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> World:
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    make_tf_backend(moto_staging["endpoint"], ops_lock=False)
    return World(moto_staging["endpoint"], tmp_path, f"{tls_postgres.host}:{tls_postgres.port}")


def test_a_configuration_never_applied_is_named_as_such_not_as_drift(unapplied_world: World) -> None:
    done = unapplied_world.inv("maint.run", "--env", "staging", "--yes", code=3)
    (line,) = done.stderr.strip().splitlines()[:1]
    assert line.startswith(
        "error: pre-check failed: infrastructure drift: 3 resource(s) not under Terraform yet (no state), "
        "would be created: "
    ), done.stderr
    assert not [r for r in unapplied_world.journal() if r.get("step") in ("maint-step", "snapshot")]


def _drift(world: World) -> None:
    """The code moves on without an apply: every resource of the configuration differs."""
    values = world.tmp / "big.tfvars"
    values.write_text('size = "big"\n')
    world.write(var_files=[str(values)])


def test_drift_refuses_the_run_before_any_step_naming_the_resources(world: World) -> None:
    _drift(world)
    snapshots_before = _snapshots(world)
    done = world.inv("maint.run", "--env", "staging", "--yes", code=3)
    (line,) = done.stderr.strip().splitlines()[:1]
    assert line.startswith(
        "error: pre-check failed: infrastructure drift: 3 resource(s) differ from the Terraform code: "
    ), done.stderr
    for name in ("terraform_data.database", "terraform_data.web", "terraform_data.worker"):
        assert name in line
    assert "; this run changed nothing (hint: see `inv infra.drift --env staging`" in line, line
    records = world.journal()
    assert not [r for r in records if r.get("step") in ("maint-step", "snapshot")]  # nothing started
    assert [r for r in records if r.get("op") == "infra.drift" and r.get("event") == "start"]  # journalled
    assert _snapshots(world) == snapshots_before
    checks = next(r for r in records if r.get("step") == "prechecks")["checks"]
    assert [c["name"] for c in checks if c["status"] == "failed"] == ["infrastructure drift"]
    # inv maint.plan shows the same pre-check, and nothing was applied by either
    plan = json.loads(world.inv("maint.plan", "--env", "staging", "--json").stdout)
    shown = {c["name"]: c for c in plan["prechecks"]}
    assert shown["infrastructure drift"]["status"] == "failed"
    assert shown["standby ready"]["status"] == "ok"


def test_without_drift_the_check_passes_and_the_run_goes_on(world: World) -> None:
    done = world.inv("maint.run", "--env", "staging", "--yes", "--json")
    report = json.loads(done.stdout)
    assert report["state"] == "complete" and [s["status"] for s in report["steps"]] == ["ok"]
    checks = next(r for r in world.journal() if r.get("step") == "prechecks")["checks"]
    assert ("infrastructure drift", "ok") in [(c["name"], c["status"]) for c in checks]


def test_a_plan_that_does_not_ask_does_not_run_terraform(world: World) -> None:
    _drift(world)
    world.plan(steps=["db-housekeeping"])
    world.inv("maint.run", "--env", "staging", "--yes")
    assert not [r for r in world.journal() if r.get("op") == "infra.drift" and r.get("event") == "start"]
    checks = next(r for r in world.journal() if r.get("step") == "prechecks")["checks"]
    assert "infrastructure drift" not in [c["name"] for c in checks]


def test_a_bad_precheck_setting_is_exit_2_naming_the_line(world: World) -> None:
    world.plan(prechecks={"infra_drift": "yes"}, steps=["db-housekeeping"])
    done = world.inv("maint.run", "--env", "staging", "--yes", code=2)
    assert (
        "sunday.yaml:" in done.stderr
        and "environments.staging.prechecks.infra_drift 'yes': not a true or false" in done.stderr
    )
    assert not (world.state / "journal" / "staging.jsonl").exists() or not [
        r for r in world.journal() if r.get("op") == "maint.run"
    ]


def _snapshots(world: World) -> list[str]:
    import boto3

    rds = boto3.client("rds", region_name="us-east-1", endpoint_url=world.endpoint)
    return sorted(
        s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    )
