"""The region-loss variant of the full-rebuild drill on AWS, through the real `inv`:
`inv dr.drill --env staging --scenario full-rebuild --param region=us-west-2`.
RDS in both regions, S3 state + DynamoDB locks, ElastiCache and Secrets
Manager in a moto server; the copy made by `inv db.snapshot --copy-to-region`;
real terraform applying the DR region's workspace; the restored DR instance
read back from a second real TLS PostgreSQL; IAM simulation on loopback."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from support.aws import APP_USER, COPY_REGION, LOCK_TABLE, REGION, SECRET, STAGING_DB
from support.infra import BUCKET, KEY, MAIN_TF, TfWorld, make_tf_backend
from support.paths import ROOT

from spywatcher_ops.recovery.common import stamped_name

pytestmark = [pytest.mark.e2e, pytest.mark.real]
DB = "infra_region"
DR_WORKSPACE = "staging-us-west-2"


def _database(server) -> None:
    server.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    server.execute(f"CREATE DATABASE {DB} OWNER {APP_USER}")
    server.execute(
        f"SET ROLE {APP_USER}; CREATE TABLE events (id bigserial PRIMARY KEY, body text);"
        "INSERT INTO events (body) SELECT 'e' || g FROM generate_series(1, 20) g;",
        dbname=DB,
    )


@pytest.fixture
def region_world(moto_staging, tls_postgres, tls_postgres_restored, iam_sim, tmp_path, monkeypatch):
    endpoint = moto_staging["endpoint"]
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    make_tf_backend(endpoint, ops_lock=False)
    secret = json.dumps({"username": APP_USER, "password": "app-Secret-42", "dbname": DB})
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=SECRET, SecretString=secret)
    # what the DR region holds before the disaster: the network, the replicated secret, the cache
    ec2 = boto3.client("ec2", region_name=COPY_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{COPY_REGION}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="spywatcher-staging-db", Description="db", VpcId=vpc)[
        "GroupId"
    ]
    boto3.client("rds", region_name=COPY_REGION).create_db_subnet_group(
        DBSubnetGroupName="spywatcher-staging-db-subnets-dr",
        DBSubnetGroupDescription="database subnets (DR)",
        SubnetIds=subnets,
    )
    boto3.client("secretsmanager", region_name=COPY_REGION).create_secret(Name=SECRET, SecretString=secret)
    boto3.client("elasticache", region_name=COPY_REGION).create_replication_group(
        ReplicationGroupId="spywatcher-staging-redis",
        ReplicationGroupDescription="spywatcher cache (DR)",
        Engine="redis",
        CacheNodeType="cache.t3.medium",
        ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=True,
    )
    _database(tls_postgres)
    _database(tls_postgres_restored)  # what the copy holds: the data from before the drill
    config_dir = tmp_path / "infra"
    config_dir.mkdir()
    (config_dir / "main.tf").write_text(MAIN_TF)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    world = TfWorld(endpoint, tmp_path, config_dir, state_dir, tmp_path / "ops.yaml")
    world.extra_env["AWS_ENDPOINT_URL_IAM"] = iam_sim.url
    world.config(
        dr_regions={
            COPY_REGION: {
                "workspace": DR_WORKSPACE,
                "db_subnet_group": "spywatcher-staging-db-subnets-dr",
                "security_groups": [group],
            }
        }
    )
    conf = yaml.safe_load(world.conf_file.read_text())
    now = datetime.now(UTC)
    tunnels = {STAGING_DB: f"127.0.0.1:{tls_postgres.port}"}
    for s in range(-5, 400):  # the DR instance is named <source>-dr-<UTC second>
        tunnels[stamped_name(STAGING_DB, "dr", now + timedelta(seconds=s))] = (
            f"127.0.0.1:{tls_postgres_restored.port}"
        )
    conf["ops"]["environments"]["staging"].update(
        {"kms_keys": {COPY_REGION: moto_staging["west_key"]}, "db_tunnels": tunnels}
    )
    conf["ops"]["aws"] = {"poll_seconds": 0.05}
    world.conf_file.write_text(yaml.safe_dump(conf))
    yield world
    for server in (tls_postgres, tls_postgres_restored):
        server.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


DRILL = ("--env", "staging", "--scenario", "full-rebuild", "--param", f"region={COPY_REGION}")


def test_region_loss_rebuild_in_the_dr_region_from_the_cross_region_copy(region_world):
    world = region_world
    west = boto3.client("rds", region_name=COPY_REGION)
    # no copy in the DR region yet: preflight fails, nothing is injected
    none = ok(world.inv("dr.preflight", *DRILL), 3)
    assert f"no available snapshot of {STAGING_DB} in {COPY_REGION}" in none.stdout + none.stderr
    assert f"inv db.snapshot --env staging --copy-to-region {COPY_REGION}" in none.stdout + none.stderr

    ok(world.inv("db.snapshot", "--env", "staging", "--copy-to-region", COPY_REGION, "--yes"))
    (copy,) = west.describe_db_snapshots()["DBSnapshots"]

    # a copy older than targets.rpo.database cannot meet the RPO: preflight fails (exit 3)
    normal = world.conf_file.read_text()
    conf = yaml.safe_load(normal)
    conf["ops"]["targets"] = {"rpo": {"database": 0.001}}
    world.conf_file.write_text(yaml.safe_dump(conf))
    old = world.inv("dr.preflight", *DRILL)
    world.conf_file.write_text(normal)
    assert old.returncode == 3, old.stdout + old.stderr
    assert "older than targets.rpo.database" in old.stdout + old.stderr

    done = ok(world.inv("dr.drill", *DRILL, "--yes", "--json", "--timeout", "300", timeout=400))
    card = json.loads(done.stdout)["scorecard"][0]
    assert card["outcome"] == "met", card
    assert card["rto_target_s"] == 1800 and card["rpo_target_s"] == 300
    assert 0 < card["rpo_s"] < 300 and card["rto_s"] > 0
    assert card["lost_writes"] >= 1  # every acknowledged write of the drill came after the copy
    report = json.loads(Path(card["report"]).with_suffix(".json").read_text())
    stages = [(s["stage"], s["status"]) for s in report["details"]["stages"]]
    assert stages == [("infrastructure", "ok"), ("database", "ok"), ("cache", "ok")]
    dr = report["details"]["dr"]
    assert dr["region"] == COPY_REGION and dr["snapshot"] == copy["DBSnapshotIdentifier"]
    assert dr["instance"].startswith(f"{STAGING_DB}-dr-")
    assert "| database | ok |" in Path(card["report"]).with_suffix(".md").read_text()

    # the DR workspace got its own state; the home region's was not touched
    s3 = boto3.client("s3", region_name=REGION)
    dr_state = json.loads(s3.get_object(Bucket=BUCKET, Key=f"env:/{DR_WORKSPACE}/{KEY}")["Body"].read())
    assert {r["name"] for r in dr_state["resources"]} == {"database", "web", "worker"}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)
    # the restored DR instance was removed afterwards; the source is untouched
    assert [i["DBInstanceIdentifier"] for i in west.describe_db_instances()["DBInstances"]] == []
    journal = world.journal()
    pending = [r for r in journal if r.get("step") == "undo" and r["undo"]["kind"] == "delete-dr-instance"]
    assert pending[0]["undo"] == {
        "id": pending[0]["undo"]["id"],
        "kind": "delete-dr-instance",
        "instance": dr["instance"],
        "region": COPY_REGION,
    }  # a killed drill leaves this for the next run's cleanup
    (undone,) = [r for r in journal if r.get("step") == "undone" and r["undo_id"] == pending[0]["undo"]["id"]]
    assert undone["detail"] == f"deleted {dr['instance']} in {COPY_REGION}"
    home = boto3.client("rds", region_name=REGION).describe_db_instances()["DBInstances"]
    assert [i["DBInstanceIdentifier"] for i in home] == [STAGING_DB]


def test_the_aws_variant_needs_a_configured_region(region_world):
    world = region_world
    plain = ok(world.inv("dr.drill", "--env", "staging", "--scenario", "full-rebuild", "--yes"), 2)
    assert "add --param region=REGION" in plain.stderr
    unknown = ok(
        world.inv(
            "dr.drill",
            "--env",
            "staging",
            "--scenario",
            "full-rebuild",
            "--param",
            "region=eu-west-1",
            "--yes",
        ),
        2,
    )
    assert "no environments.staging.terraform.dr_regions.eu-west-1.workspace" in unknown.stderr
    assert f"configured DR regions: {COPY_REGION}" in unknown.stderr
    bad = ok(
        world.inv(
            "dr.drill", "--env", "staging", "--scenario", "full-rebuild", "--param", "region=mars", "--yes"
        ),
        2,
    )
    assert "--param region=mars: not an AWS region name" in bad.stderr


def test_a_region_loss_drill_killed_after_its_restore_leaves_it_to_the_next_run(region_world):
    import os
    import signal
    import socket
    import time

    world = region_world
    ok(world.inv("db.snapshot", "--env", "staging", "--copy-to-region", COPY_REGION, "--yes"))
    # the DR instance's tunnel leads nowhere: the drill keeps trying to read it back, and is killed there
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{sock.getsockname()[1]}"
    normal = world.conf_file.read_text()
    conf = yaml.safe_load(normal)
    tunnels = conf["ops"]["environments"]["staging"]["db_tunnels"]
    for name in list(tunnels):
        if "-dr-" in name:
            tunnels[name] = nowhere
    conf["ops"]["aws"]["lock_ttl_seconds"] = 6  # the killed drill's lock goes stale soon
    world.conf_file.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen(
        ["inv", "-f", str(world.conf_file), "dr.drill", *DRILL, "--yes"],
        cwd=ROOT,
        env=world.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    west = boto3.client("rds", region_name=COPY_REGION)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if west.describe_db_instances()["DBInstances"] and any(
                r.get("step") == "dr-restore" and r.get("status") == "started" for r in world.journal()
            ):
                break
            assert proc.poll() is None, "the drill ended before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail("the drill never restored the copy in the DR region")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    (left,) = west.describe_db_instances()["DBInstances"]
    assert left["DBInstanceIdentifier"].startswith(f"{STAGING_DB}-dr-")
    # while the dead drill's lock has not expired, preflight says what it left and touches nothing:
    # not even the dead holder's lock, which only the next mutating task takes over
    locks = boto3.client("dynamodb", region_name="us-east-1")

    def lock_item():
        return locks.get_item(TableName=LOCK_TABLE, Key={"lock_id": {"S": "staging"}}).get("Item")

    before = lock_item()
    assert before and before["pid"]["N"] == str(proc.pid)
    held = world.inv("dr.preflight", *DRILL, "--json")
    report = json.loads(held.stdout)
    (lock_check,) = [c for c in report["scenarios"]["full-rebuild"]["checks"] if c["name"] == "lock free"]
    assert lock_check["status"] == "warn" and "that process is gone" in lock_check["detail"], lock_check
    assert lock_item() == before
    pending = [u for p in report["pending_cleanup"] for u in p["undo"]]
    assert {
        "kind": "delete-dr-instance",
        "instance": left["DBInstanceIdentifier"],
        "region": COPY_REGION,
    } in [{k: v for k, v in u.items() if k != "id"} for u in pending]
    time.sleep(7)
    # on aws, dr.drill cleans up (after confirmation; --yes here) before it runs again
    world.conf_file.write_text(normal)
    done = ok(world.inv("dr.drill", *DRILL, "--yes", "--json", timeout=400))
    cleaned = json.loads(done.stdout)["cleaned_up"]
    actions = [a for c in cleaned for a in c["actions"] if a["kind"] == "delete-dr-instance"]
    assert actions and actions[0]["status"] == "ok", done.stdout + done.stderr
    assert actions[0]["detail"] == f"deleted {left['DBInstanceIdentifier']} in {COPY_REGION}"
    assert west.describe_db_instances()["DBInstances"] == []  # and the new drill's own one, by its rollback
