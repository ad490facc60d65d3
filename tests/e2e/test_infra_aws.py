"""`inv infra.redeploy --env staging` on AWS, every stage through the real `inv`:
infrastructure (real terraform, S3 state + DynamoDB lock in a moto server),
cluster and applications (the in-test Kubernetes API server), database (the
existing RDS restore in moto, db.verify against a second real TLS PostgreSQL
standing in for the restored instance, db.swap in moto), cache (ElastiCache in
moto). The environment lock (DynamoDB) is held across the whole rebuild.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import yaml
from support.aws import APP_USER, REGION, SECRET, STAGING_DB
from support.infra import MAIN_TF, TfWorld, make_tf_backend
from support.kube import write_kubeconfig

from spywatcher_ops.recovery.common import stamped_name

pytestmark = [pytest.mark.e2e, pytest.mark.real]
GROUP = "spywatcher-staging-redis"
DB = "infra_aws"


def _seed(server, rows: int) -> None:
    server.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    server.execute(f"CREATE DATABASE {DB} OWNER {APP_USER}")
    server.execute(
        f"SET ROLE {APP_USER};"
        "CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, body text);"
        f"INSERT INTO events (created_at, body) SELECT now() - g * interval '1 second', 'e' "
        f"FROM generate_series(1, {rows}) g;",
        dbname=DB,
    )


@pytest.fixture
def staging_world(moto_staging, tls_postgres, tls_postgres_restored, fake_kube, tmp_path, monkeypatch):
    """staging in the moto server (RDS, secret, lock table) + Terraform's backend + an ElastiCache
    group; the source database in one TLS PostgreSQL, what RDS restores in the other (the same rows:
    a restore to the latest restorable time); the cluster is the in-test Kubernetes API server."""
    endpoint = moto_staging["endpoint"]
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    make_tf_backend(endpoint, ops_lock=False)  # build_staging made the ops lock table
    boto3.client("elasticache", region_name=REGION).create_replication_group(
        ReplicationGroupId=GROUP,
        ReplicationGroupDescription="spywatcher cache",
        Engine="redis",
        CacheNodeType="cache.t3.medium",
        ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=True,
        MultiAZEnabled=True,
    )
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=SECRET,
        SecretString=json.dumps({"username": APP_USER, "password": "app-Secret-42", "dbname": DB}),
    )
    _seed(tls_postgres, 40)
    _seed(tls_postgres_restored, 40)
    config_dir = tmp_path / "infra"
    config_dir.mkdir()
    (config_dir / "main.tf").write_text(MAIN_TF)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    world = TfWorld(endpoint, tmp_path, config_dir, state_dir, tmp_path / "ops.yaml")
    world.config()
    conf = yaml.safe_load(world.conf_file.read_text())
    # The rebuild names the restored instance `<source>-restored-<UTC second>`: every name the next
    # minutes can stamp leads to the second server, as a tunnel to the new instance would.
    now = datetime.now(UTC)
    restored = f"127.0.0.1:{tls_postgres_restored.port}"
    tunnels = {STAGING_DB: f"127.0.0.1:{tls_postgres.port}"}
    for s in range(-5, 400):
        tunnels[stamped_name(STAGING_DB, "restored", now + timedelta(seconds=s))] = restored
    staging = conf["ops"]["environments"]["staging"]
    staging.update(
        {
            "kms_keys": {"us-west-2": moto_staging["west_key"]},
            "db_tunnels": tunnels,
            "kube_context": "fake",
            "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url)),
        }
    )
    conf["ops"]["aws"] = {"poll_seconds": 0.05}
    conf["ops"]["database"] = {"freshness_tables": [{"table": "events", "column": "created_at"}]}
    world.conf_file.write_text(yaml.safe_dump(conf))
    yield world
    for server in (tls_postgres, tls_postgres_restored):
        server.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def test_every_stage_of_the_rebuild_on_aws_through_inv(staging_world, fake_kube):
    world = staging_world
    rds = boto3.client("rds", region_name=REGION)
    dry = ok(world.inv("infra.redeploy", "--env", "staging", "--dry-run"))
    assert "redeploy.database(to='latest')" in dry.stdout and "redeploy.applications" in dry.stdout
    assert [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]] == [STAGING_DB]

    done = ok(world.inv("infra.redeploy", "--env", "staging", "--yes", "--json", timeout=300))
    result = json.loads(done.stdout)
    stages = {s["stage"]: s for s in result["stages"]}
    assert [(s["stage"], s["status"]) for s in result["stages"]] == [
        ("infrastructure", "ok"),
        ("cluster", "ok"),
        ("database", "ok"),
        ("cache", "ok"),
        ("applications", "ok"),
    ], result
    assert "3 added" in stages["infrastructure"]["detail"]
    assert "API answers" in stages["cluster"]["detail"] and "2 deployment(s)" in stages["cluster"]["detail"]
    assert "2 node(s) alive, primary" in stages["cache"]["detail"]
    assert "2 deployment(s) ready" in stages["applications"]["detail"]
    assert result["met"] is True and result["target_s"] == 1800

    # database: RDS restored a new instance, db.verify passed on it, db.swap put it under the serving name
    ids = sorted(i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"])
    assert len(ids) == 2 and STAGING_DB in ids
    (replaced,) = [i for i in ids if i != STAGING_DB]
    assert replaced.startswith(f"{STAGING_DB}-replaced-")
    assert "verified, in service" in stages["database"]["detail"] and replaced in stages["database"]["detail"]
    serving = rds.describe_db_instances(DBInstanceIdentifier=STAGING_DB)["DBInstances"][0]
    tags = {t["Key"]: t["Value"] for t in serving["TagList"]}
    assert tags["ManagedBy"] == "spywatcher-ops" and tags["RestorePoint"] == "latest"

    # the journal: one rebuild holding the lock, the stages' own operations inside it, in order
    journal = world.journal()
    starts = [r["op"] for r in journal if r.get("event") == "start"]
    i = starts.index("infra.redeploy")
    assert starts[i:] == ["infra.redeploy", "infra.plan", "infra.apply", "db.restore", "db.verify", "db.swap"]
    verify = next(r for r in journal if r.get("event") == "end" and r.get("op") == "db.verify")
    assert verify["result"]["ok"] is True
    # the lock is released at the end (the DynamoDB item is gone)
    ddb = boto3.client("dynamodb", region_name=REGION)
    assert ddb.scan(TableName="spywatcher-ops-locks")["Items"] == []

    # the Terraform state went to S3, as a new version
    state = world.state()
    assert {r["name"] for r in state["resources"]} == {"database", "web", "worker"}


def test_a_missing_cache_group_fails_its_stage_and_says_what_is_left(staging_world):
    world = staging_world
    conf = yaml.safe_load(world.conf_file.read_text())
    conf["ops"]["environments"]["staging"]["resources"] = {"redis": "spywatcher-staging-gone"}
    conf["ops"]["terraform"] = {"stage_timeout_seconds": 1}
    conf["ops"]["environments"]["staging"]["terraform"]["redeploy_stages"] = [
        "cluster",
        "cache",
        "applications",
    ]
    world.conf_file.write_text(yaml.safe_dump(conf))
    done = ok(world.inv("infra.redeploy", "--env", "staging", "--yes"), 1)
    last = done.stderr.strip().splitlines()[-1]
    assert "stage cache failed" in last and "replication group spywatcher-staging-gone not found" in last
    assert "done: cluster; not done: cache, applications" in last
    assert "applications │ not run" in done.stdout
    stages = [(r["stage"], r["status"]) for r in world.journal() if r.get("event") == "step"]
    assert stages == [("cluster", "started"), ("cluster", "ok"), ("cache", "started"), ("cache", "failed")]


def test_the_database_stage_restores_to_the_time_given_with_to(staging_world):
    world = staging_world
    rds = boto3.client("rds", region_name=REGION)
    window = rds.describe_db_instances(DBInstanceIdentifier=STAGING_DB)["DBInstances"][0]
    # a whole second inside the window: rounded up past the instance's creation (the earliest
    # restorable time, with its fraction), then waited for (moto's latest restorable time is now)
    point = (window["LatestRestorableTime"].astimezone(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    while datetime.now(UTC) <= point + timedelta(milliseconds=50):
        time.sleep(0.05)
    conf = yaml.safe_load(world.conf_file.read_text())
    conf["ops"]["environments"]["staging"]["terraform"]["redeploy_stages"] = ["database"]
    world.conf_file.write_text(yaml.safe_dump(conf))
    to = point.strftime("%Y-%m-%dT%H:%M:%SZ")
    done = ok(world.inv("infra.redeploy", "--env", "staging", "--to", to, "--yes", "--json", timeout=300))
    (stage,) = json.loads(done.stdout)["stages"]
    assert stage["status"] == "ok" and f"restored to {point.isoformat()}" in stage["detail"], stage
    restore = next(r for r in world.journal() if r.get("event") == "start" and r.get("op") == "db.restore")
    assert restore["args"]["to"] == to
    serving = rds.describe_db_instances(DBInstanceIdentifier=STAGING_DB)["DBInstances"][0]
    tags = {t["Key"]: t["Value"] for t in serving["TagList"]}
    assert tags["RestorePoint"].startswith(point.strftime("%Y-%m-%dT%H:%M:%S"))
