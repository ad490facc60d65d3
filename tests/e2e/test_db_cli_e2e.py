"""`inv db.*` end to end: the real `inv` command in a subprocess against a moto
server (AWS_ENDPOINT_URL) holding the staging environment, and a real TLS
PostgreSQL for verify. Every bad input exits 2 with one line and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import boto3
import pytest
import yaml
from support.aws import COPY_REGION, LOCK_TABLE, REGION, STAGING_DB
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]


@pytest.fixture
def cli(moto_staging, tmp_path, tls_postgres):
    """Runs `inv -f <test config> ARGS` with a private state folder."""
    tunnel = f"{tls_postgres.host}:{tls_postgres.port}"
    config = {
        "ops": {
            "aws": {"poll_seconds": 0.2},
            "environments": {
                "staging": {
                    "kms_keys": {COPY_REGION: moto_staging["west_key"]},
                    "db_tunnels": {STAGING_DB: tunnel, "fix-e2e": tunnel},
                }
            },
            "database": {"freshness_tables": [{"table": "events", "column": "created_at"}]},
        }
    }
    path = tmp_path / "ops.yaml"
    path.write_text(yaml.safe_dump(config))
    state = tmp_path / "state"

    def run(*args: str, extra_config: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        conf = path
        if extra_config:
            merged = yaml.safe_load(path.read_text())
            merged["ops"].update(extra_config)
            conf = tmp_path / "ops-extra.yaml"
            conf.write_text(yaml.safe_dump(merged))
        env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state), "COLUMNS": "200"}
        return subprocess.run(
            ["inv", "-f", str(conf), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    run.state = state  # type: ignore[attr-defined]
    return run


def rds_state() -> dict[str, Any]:
    rds = boto3.client("rds", region_name=REGION)
    return {
        "instances": sorted(i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]),
        "snapshots": sorted(s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]),
        "west": sorted(
            s["DBSnapshotIdentifier"]
            for s in boto3.client("rds", region_name=COPY_REGION).describe_db_snapshots()["DBSnapshots"]
        ),
    }


def test_bad_input_exits_2_with_one_line_and_changes_nothing(cli):
    before = rds_state()
    cases = [
        (["db.restore", "--env", "staging", "--to", "2026-11-25T14:03:00"], "the time has no zone"),
        (["db.restore", "--env", "staging", "--to", "yesterday"], "--to yesterday: not a valid time"),
        (["db.restore", "--env", "staging", "--to", "2099-01-01T00:00:00Z"], "in the future"),
        (
            ["db.restore", "--env", "staging", "--to", "2020-01-01T00:00:00Z"],
            "outside the restorable window 20",
        ),
        (
            ["db.restore", "--env", "prod", "--to", "latest"],
            "--env prod: unknown environment; known: production, sandbox, staging",
        ),
        (
            ["db.restore", "--env", "staging", "--from-snapshot", "nope-1"],
            "--from-snapshot nope-1: no such snapshot",
        ),
        (["db.restore", "--env", "staging", "--to", "latest", "--name", STAGING_DB], "already exists"),
        (
            ["db.restore", "--env", "staging", "--to", "latest", "--name", "1bad"],
            "not a valid instance identifier",
        ),
        (["db.restore", "--env", "staging", "--to", "latest", "--from-snapshot", "x-1"], "choose one"),
        (["db.snapshot", "--env", "staging", "--label", "Bad Label"], "not a valid label"),
        (["db.snapshot", "--env", "staging", "--copy-to-region", "eu-west-1"], "no KMS key configured"),
        (["db.swap", "--env", "staging", "--instance", "nope"], "no such instance"),
        (["db.verify", "--env", "staging"], "--instance is required"),
    ]
    for args, message in cases:
        done = cli(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, done.stderr)
    assert rds_state() == before
    assert not (cli.state / "journal").exists()  # bad input leaves no trace either


def test_window_then_restore_inside_it(cli):
    done = cli("db.window", "--env", "staging", "--json")
    assert done.returncode == 0, done.stderr
    w = json.loads(done.stdout)
    assert w["retention_days"] == 7 and w["earliest"] <= w["latest"]
    human = cli("db.window", "--env", "staging")
    assert "earliest restorable: " in human.stdout and "backup retention:    7 days" in human.stdout


def test_snapshot_with_cross_region_copy_then_listing(cli, moto_staging):
    done = cli("db.snapshot", "--env", "staging", "--label", "pre-deploy", "--copy-to-region", COPY_REGION)
    assert done.returncode == 0, done.stderr
    assert "snapshot spywatcher-staging-pre-deploy-2" in done.stdout and "size 50 GiB, took" in done.stdout
    state = rds_state()
    (made,) = [s for s in state["snapshots"] if s.startswith("spywatcher-staging-pre-deploy-")]
    assert state["west"] == [made]
    west = boto3.client("rds", region_name=COPY_REGION).describe_db_snapshots(DBSnapshotIdentifier=made)
    assert west["DBSnapshots"][0]["KmsKeyId"] == moto_staging["west_key"]

    listing = cli("db.snapshots", "--env", "staging", "--json")
    rows = {r["id"]: r for r in json.loads(listing.stdout)}
    assert rows[made]["ours"] and rows[made]["type"] == "manual" and rows[made]["status"] == "available"
    assert any(r["type"] == "automated" and not r["ours"] for r in rows.values())
    table = cli("db.snapshots", "--env", "staging")
    assert made in table.stdout and "automated" in table.stdout

    records = [
        json.loads(line) for line in (cli.state / "journal" / "staging.jsonl").read_text().splitlines()
    ]
    start, end = records[0], records[-1]
    assert start["op"] == "db.snapshot" and start["who"]["aws_account"] == "123456789012"
    assert end["outcome"] == "ok" and len(end["request_ids"]) >= 3


def test_prune_shows_the_plan_dry_run_makes_no_call_then_applies(cli):
    rds = boto3.client("rds", region_name=REGION)
    ours = [{"Key": "ManagedBy", "Value": "spywatcher-ops"}]
    for name in ("ours-1", "ours-2", "ours-3"):
        rds.create_db_snapshot(DBInstanceIdentifier=STAGING_DB, DBSnapshotIdentifier=name, Tags=ours)
        time.sleep(0.01)
    rds.create_db_snapshot(DBInstanceIdentifier=STAGING_DB, DBSnapshotIdentifier="by-hand")
    before = rds_state()
    retention = {"retention": {"days": 0, "keep_min": 1}}
    dry = cli("db.prune", "--env", "staging", "--dry-run", extra_config=retention)
    assert dry.returncode == 0, dry.stderr
    assert "DRY RUN" in dry.stdout and "rds.delete_db_snapshot(DBSnapshotIdentifier='ours-1')" in dry.stdout
    assert "by-hand" in dry.stdout and "not made by spywatcher-ops" in dry.stdout
    assert rds_state() == before
    done = cli("db.prune", "--env", "staging", "--json", extra_config=retention)
    assert done.returncode == 0, done.stderr
    assert sorted(d["id"] for d in json.loads(done.stdout)["delete"]) == ["ours-1", "ours-2"]
    left = rds_state()["snapshots"]
    assert "ours-3" in left and "by-hand" in left and "ours-1" not in left and "ours-2" not in left
    again = cli("db.prune", "--env", "staging", extra_config=retention)
    assert again.returncode == 0 and "nothing to prune" in again.stdout


def test_restore_dry_run_then_restore_verify_swap_and_reverse(cli):
    dry = cli("db.restore", "--env", "staging", "--to", "latest", "--name", "fix-e2e", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "rds.restore_db_instance_to_point_in_time(" in dry.stdout and "MonitoringInterval=60" in dry.stdout
    assert "encryption is inherited" in dry.stdout
    assert rds_state()["instances"] == [STAGING_DB]

    done = cli("db.restore", "--env", "staging", "--to", "latest", "--name", "fix-e2e", "--verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored fix-e2e: available at fix-e2e." in done.stdout and "took" in done.stdout
    assert "OK tls: TLSv1" in done.stdout and "OK freshness events.created_at" in done.stdout
    assert "FAILED" not in done.stdout

    refused = cli("db.swap", "--env", "staging", "--instance", "fix-e2e")
    assert refused.returncode == 2 and "needs confirmation" in refused.stderr
    assert rds_state()["instances"] == ["fix-e2e", STAGING_DB]

    swapped = cli("db.swap", "--env", "staging", "--instance", "fix-e2e", "--yes")
    assert swapped.returncode == 0, swapped.stderr
    assert "DNS propagates" in swapped.stderr
    reverse = next(line for line in swapped.stdout.splitlines() if line.startswith("to reverse: "))
    instances = rds_state()["instances"]
    (replaced,) = [i for i in instances if "-replaced-" in i]
    assert instances == sorted([STAGING_DB, replaced])
    tags = boto3.client("rds", region_name=REGION).describe_db_instances(DBInstanceIdentifier=STAGING_DB)[
        "DBInstances"
    ][0]["TagList"]
    assert {"Key": "RestoredFrom", "Value": STAGING_DB} in tags  # the restored one serves now

    args = reverse.removeprefix("to reverse: inv ").split() + ["--yes"]
    back = cli(*args)
    assert back.returncode == 0, back.stderr
    tags = boto3.client("rds", region_name=REGION).describe_db_instances(DBInstanceIdentifier=STAGING_DB)[
        "DBInstances"
    ][0]["TagList"]
    assert {"Key": "ManagedBy", "Value": "terraform"} in tags  # the original is back

    # db.delete: never the live one; the restored one (swapped out again) after confirmation
    live = cli("db.delete", "--env", "staging", "--instance", STAGING_DB, "--yes")
    assert live.returncode == 2 and "it is the live instance" in live.stderr, live.stderr
    (restored,) = [i for i in rds_state()["instances"] if "-replaced-" in i]
    unconfirmed = cli("db.delete", "--env", "staging", "--instance", restored)
    assert unconfirmed.returncode == 2 and "needs confirmation" in unconfirmed.stderr
    gone = cli("db.delete", "--env", "staging", "--instance", restored, "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"deleted {restored}" in gone.stdout and "final snapshot" in gone.stdout
    assert rds_state()["instances"] == [STAGING_DB]
    assert any(s.startswith(f"{restored[:40]}") and "-final-" in s for s in rds_state()["snapshots"])


def test_verify_failed_exits_1_with_a_hint(cli):
    boto3.client("rds", region_name=REGION).restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=STAGING_DB,
        TargetDBInstanceIdentifier="fix-e2e",
        UseLatestRestorableTime=True,
    )
    bad = {"database": {"freshness_tables": [{"table": "audit_log", "column": "at"}]}}
    done = cli("db.verify", "--env", "staging", "--instance", "fix-e2e", extra_config=bad)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "OK connect" in done.stdout and "FAILED freshness audit_log.at" in done.stdout
    assert "(fix ops.database.freshness_tables" in done.stdout
    assert "1 check(s) failed: freshness audit_log.at" in done.stderr
    assert "app-Secret-42" not in done.stdout + done.stderr


def test_failover_needs_confirmation_then_reports(cli):
    refused = cli("db.failover", "--env", "staging")
    assert refused.returncode == 2 and "needs confirmation" in refused.stderr
    dry = cli("db.failover", "--env", "staging", "--dry-run")
    assert (
        "rds.reboot_db_instance(DBInstanceIdentifier='spywatcher-staging-db', ForceFailover=True)"
        in dry.stdout
    )
    done = cli("db.failover", "--env", "staging", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["applied"] and data["old_primary"].startswith(STAGING_DB) and data["duration_s"] >= 0
    # moto's reboot keeps the zone and emits no completion event: said, not passed off as a failover
    assert len(data["warnings"]) == 1 and "may not have failed over" in data["warnings"][0]
    assert "warning: the primary is still in" in done.stderr


def test_a_held_lock_stops_a_mutation_with_exit_3(cli):
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=LOCK_TABLE,
        Item={
            "lock_id": {"S": "staging"},
            "token": {"S": "t"},
            "owner": {"S": "alice"},
            "operation": {"S": "db.restore"},
            "expires_at": {"N": str(int(time.time()) + 600)},
        },
    )
    before = rds_state()
    done = cli("db.snapshot", "--env", "staging")
    assert done.returncode == 3 and "locked by alice running db.restore" in done.stderr
    assert rds_state() == before
