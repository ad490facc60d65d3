"""RdsDatabase against moto (in-process): plans hold the exact calls, applies make them,
restores keep parity with the source, and nothing not ours is ever deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from support.aws import COPY_REGION, MONITORING_ROLE, REGION, STAGING_DB, aws_env
from support.clock import FakeClock

from spywatcher_ops.backends.aws.rds import RdsDatabase
from spywatcher_ops.core.errors import BadInput, NotReady, Refused
from spywatcher_ops.core.ports import Database
from spywatcher_ops.recovery.snapshot import snapshot_tags


def _db(ops_config, clock=None) -> RdsDatabase:
    db = aws_env(ops_config, clock).database
    assert isinstance(db, RdsDatabase)
    return db


def _rds(region: str = REGION):
    return boto3.client("rds", region_name=region)


def test_it_is_a_database_port(staging_aws, ops_config):
    db: Database = _db(ops_config)
    assert db.instance_id() == STAGING_DB
    inst = db.describe()
    assert (inst.id, inst.status, inst.multi_az, inst.engine_version) == (
        STAGING_DB,
        "available",
        True,
        "15.3",
    )
    assert inst.details["encrypted"] and inst.details["kms_key_id"] == staging_aws["kms_key"]
    assert not inst.created_by_us  # terraform made it
    assert STAGING_DB in [i.id for i in db.instances()]


def test_connection_reads_the_secret_and_requires_tls(staging_aws, ops_config):
    info = _db(ops_config).connection()
    assert info.sslmode == "require"
    assert (info.user, info.password, info.dbname, info.port) == (
        "spywatcher",
        "app-Secret-42",
        "spywatcher",
        "5432",
    )
    assert info.host.startswith(STAGING_DB + ".")
    assert "app-Secret-42" not in info.redacted()
    ops_config.ops.environments.staging.db_tunnels = {STAGING_DB: "127.0.0.1:15432"}
    tunneled = _db(ops_config).connection(STAGING_DB)
    assert (tunneled.host, tunneled.port) == ("127.0.0.1", "15432")


def test_missing_secret_is_not_ready(staging_aws, ops_config):
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId="spywatcher-staging-db-credentials", ForceDeleteWithoutRecovery=True
    )
    with pytest.raises(NotReady, match="spywatcher-staging-db-credentials"):
        _db(ops_config).connection()


def test_snapshot_plan_is_the_exact_calls_and_apply_makes_them(staging_aws, ops_config):
    db = _db(ops_config)
    tags = snapshot_tags(aws_env(ops_config).settings, "staging", "pre-deploy")
    plan = db.plan_snapshot("spywatcher-staging-pre-deploy-20261126t120000z", tags, COPY_REGION)
    create, copy = plan.steps
    assert (create.target, create.action) == ("rds", "create_db_snapshot")
    assert {"Key": "ManagedBy", "Value": "spywatcher-ops"} in create.params["Tags"]
    assert {"Key": "Purpose", "Value": "pre-deploy"} in create.params["Tags"]
    assert (copy.target, copy.action) == (f"rds@{COPY_REGION}", "copy_db_snapshot")
    assert copy.params["KmsKeyId"] == staging_aws["west_key"]
    assert copy.params["SourceDBSnapshotIdentifier"].endswith(
        ":snapshot:spywatcher-staging-pre-deploy-20261126t120000z"
    )
    # planning made nothing
    assert [s["SnapshotType"] for s in _rds().describe_db_snapshots()["DBSnapshots"]] == ["automated"]

    seen: list[str] = []
    snap = db.create_snapshot(plan, wait=True, progress=seen.append)
    assert snap.status == "available" and snap.ours and snap.size_bytes == 50 * 2**30
    assert any(s.startswith("available") for s in seen)
    west = _rds(COPY_REGION).describe_db_snapshots(DBSnapshotIdentifier=snap.id)["DBSnapshots"][0]
    assert west["KmsKeyId"] == staging_aws["west_key"]
    listed = {s.id: s for s in db.list_snapshots()}
    assert listed[snap.id].kind == "manual" and listed[snap.id].ours
    assert any(s.kind == "automated" and not s.ours for s in listed.values())


def test_copy_to_a_region_without_a_kms_key_is_bad_input(staging_aws, ops_config):
    with pytest.raises(BadInput, match="eu-west-1: no KMS key configured.*configured: us-west-2"):
        _db(ops_config).plan_snapshot("x-1", {}, "eu-west-1")


def test_window_has_retention_and_a_sane_range(staging_aws, ops_config):
    w = _db(ops_config, FakeClock()).restorable_window()
    assert w.retention_days == 7
    assert w.earliest <= w.latest
    assert w.latest - w.earliest < timedelta(minutes=5)  # the instance was just created


def test_window_without_backups_is_not_ready(staging_aws, ops_config):
    _rds().modify_db_instance(DBInstanceIdentifier=STAGING_DB, BackupRetentionPeriod=0, ApplyImmediately=True)
    with pytest.raises(NotReady, match="retention 0"):
        _db(ops_config).restorable_window()


def test_point_in_time_restore_has_parity_with_the_source(staging_aws, ops_config):
    db = _db(ops_config)
    at = datetime.now(UTC).replace(microsecond=0)
    plan = db.plan_restore("spywatcher-staging-db-fix", to_time=at, snapshot_id=None)
    restore, modify = plan.steps
    p = restore.params
    assert restore.action == "restore_db_instance_to_point_in_time"
    assert p["RestoreTime"] == at.isoformat().replace("+00:00", ".000Z")
    assert p["DBSubnetGroupName"] == "spywatcher-staging-db-subnets"
    assert sorted(p["VpcSecurityGroupIds"]) == sorted(staging_aws["security_groups"])
    assert p["DBParameterGroupName"] == "spywatcher-staging-pg15"
    assert (p["MultiAZ"], p["DBInstanceClass"], p["StorageType"]) == (True, "db.t3.medium", "gp3")
    assert (p["DeletionProtection"], p["CopyTagsToSnapshot"]) == (True, True)
    tags = {t["Key"]: t["Value"] for t in p["Tags"]}
    assert tags["ManagedBy"] == "spywatcher-ops" and tags["RestoredFrom"] == STAGING_DB
    assert tags["Environment"] == "staging" and tags["CostCenter"] == "engineering"
    assert modify.action == "modify_db_instance"
    assert modify.params["MonitoringInterval"] == 60 and modify.params["MonitoringRoleArn"] == MONITORING_ROLE
    assert modify.params["BackupRetentionPeriod"] == 7
    assert any(staging_aws["kms_key"] in n for n in plan.notes)
    assert len(_rds().describe_db_instances()["DBInstances"]) == 1  # planning made nothing

    new = db.restore(plan, progress=lambda _s: None)
    assert new.id == "spywatcher-staging-db-fix" and new.status == "available" and new.created_by_us
    raw = _rds().describe_db_instances(DBInstanceIdentifier=new.id)["DBInstances"][0]
    assert raw["KmsKeyId"] == staging_aws["kms_key"] and raw["StorageEncrypted"]
    assert raw["MonitoringInterval"] == 60 and raw["MultiAZ"]


def test_latest_and_snapshot_restores(staging_aws, ops_config):
    db = _db(ops_config)
    latest = db.plan_restore("fix-latest", to_time=None, snapshot_id=None)
    assert latest.steps[0].params["UseLatestRestorableTime"] is True
    _rds().create_db_snapshot(DBInstanceIdentifier=STAGING_DB, DBSnapshotIdentifier="snap-a")
    plan = db.plan_restore("fix-snap", to_time=None, snapshot_id="snap-a")
    assert plan.steps[0].action == "restore_db_instance_from_db_snapshot"
    assert plan.steps[0].params["DBSnapshotIdentifier"] == "snap-a"
    new = db.restore(plan, progress=lambda _s: None)
    assert new.details["tags"]["RestoredFrom"] == "snap-a"
    with pytest.raises(BadInput, match="no-such"):
        db.plan_restore("fix-2", to_time=None, snapshot_id="no-such")


def test_only_our_manual_snapshots_and_instances_can_be_deleted(staging_aws, ops_config):
    db = _db(ops_config)
    _rds().create_db_snapshot(DBInstanceIdentifier=STAGING_DB, DBSnapshotIdentifier="by-hand")
    with pytest.raises(Refused, match="by-hand"):
        db.plan_delete_snapshots(["by-hand"])
    automated = [s.id for s in db.list_snapshots() if s.kind == "automated"]
    with pytest.raises(Refused):
        db.plan_delete_snapshots(automated)
    with pytest.raises(Refused, match=STAGING_DB):
        db.plan_delete_instance(STAGING_DB)
    new = db.restore(db.plan_restore("fix-del", to_time=None, snapshot_id=None), progress=lambda _s: None)
    plan = db.plan_delete_instance(new.id)
    assert [s.action for s in plan.steps] == ["modify_db_instance", "delete_db_instance"]
    db.delete_instance(plan, progress=lambda _s: None)
    assert "fix-del" not in [i.id for i in db.instances()]


def test_swap_renames_both_and_says_how_to_reverse(staging_aws, ops_config):
    db = _db(ops_config)
    new = db.restore(db.plan_restore("fix-swap", to_time=None, snapshot_id=None), progress=lambda _s: None)
    plan = db.plan_swap(new.id, f"{STAGING_DB}-replaced-20261126t120000z")
    assert [s.params["NewDBInstanceIdentifier"] for s in plan.steps] == [
        f"{STAGING_DB}-replaced-20261126t120000z",
        STAGING_DB,
    ]
    result = db.swap(plan, progress=lambda _s: None)
    ids = {i.id: i for i in db.instances()}
    assert set(ids) == {STAGING_DB, f"{STAGING_DB}-replaced-20261126t120000z"}
    assert ids[STAGING_DB].created_by_us  # the restored one now serves
    assert (
        result.reverse_command
        == f"inv db.swap --env staging --instance {STAGING_DB}-replaced-20261126t120000z"
    )


def test_failover_needs_multi_az(staging_aws, ops_config):
    _rds().modify_db_instance(DBInstanceIdentifier=STAGING_DB, MultiAZ=False, ApplyImmediately=True)
    with pytest.raises(NotReady, match="not Multi-AZ"):
        _db(ops_config).plan_failover()


def test_failover_reboots_with_force_and_reports(staging_aws, ops_config):
    clock = FakeClock()
    db = _db(ops_config, clock)
    plan = db.plan_failover()
    assert [(s.action, s.params) for s in plan.steps] == [
        ("reboot_db_instance", {"DBInstanceIdentifier": STAGING_DB, "ForceFailover": True})
    ]
    result = db.failover(plan, progress=lambda _s: None)
    assert result.old_primary.startswith(STAGING_DB) and result.finished >= result.started
    # moto emits no failover events: the adapter polls a bounded number of times, then reports
    assert clock.slept <= 5 * 3
    # and moto's reboot keeps the zone: the result does not pass that off as a failover
    assert result.old_primary == result.new_primary
    (warning,) = result.warnings
    assert "may not have failed over" in warning and "RDS-EVENT-0049" in warning


def test_failover_events_are_read_with_codes_and_times(ops_config):
    """moto has no failover events: botocore's Stubber stands in for describe_events only."""
    from spywatcher_ops.backends.aws.session import AwsClients

    env = aws_env(ops_config)
    clients = AwsClients(REGION, None)
    client = boto3.client("rds", region_name=REGION)
    clients._clients[("rds", REGION)] = client
    since = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    events = [
        {
            "SourceIdentifier": STAGING_DB,
            "SourceType": "db-instance",
            "Date": since + timedelta(seconds=s),
            "Message": m,
            "EventCategories": ["failover"],
        }
        for s, m in (
            (-60, "old event"),
            (2, "Multi-AZ instance failover started."),
            (31, "Multi-AZ instance failover completed."),
        )
    ]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_events",
            {"Events": events},
            {"SourceIdentifier": STAGING_DB, "SourceType": "db-instance", "StartTime": since},
        )
        got = RdsDatabase(env, clients).events(since)
    assert [(e.code, (e.at - since).seconds) for e in got] == [("RDS-EVENT-0013", 2), ("RDS-EVENT-0049", 31)]


def test_waits_poll_at_the_configured_interval_and_see_readiness_at_once(ops_config):
    """moto is always `available`: the Stubber plays RDS moving creating -> backing-up -> available."""
    from spywatcher_ops.backends.aws.session import AwsClients

    clock = FakeClock()
    env = aws_env(ops_config, clock)
    clients = AwsClients(REGION, None)
    client = boto3.client("rds", region_name=REGION)
    clients._clients[("rds", REGION)] = client
    seen: list[str] = []
    with Stubber(client) as stub:
        for status in ("creating", "backing-up", "available"):
            stub.add_response(
                "describe_db_instances",
                {"DBInstances": [{"DBInstanceIdentifier": "fix-1", "DBInstanceStatus": status}]},
                {"DBInstanceIdentifier": "fix-1"},
            )
        RdsDatabase(env, clients)._wait_instance("fix-1", "fix-1 to be available", 60, seen.append)
        stub.assert_no_pending_responses()
    assert seen == ["creating", "backing-up", "available"]
    assert clock.slept == 2 * 3  # two polls at ops.aws.poll_seconds (3): ready is seen within 3 s of RDS


def _answer_with(db: RdsDatabase, operation: str, change) -> None:
    """Edit moto's parsed answer the way the real service would fill it (fields moto leaves out)."""
    db.rds.meta.events.register(f"after-call.rds.{operation}", lambda parsed, **_: change(parsed))


def test_window_earliest_comes_from_the_automated_backup_capped_by_retention(staging_aws, ops_config):
    db = _db(ops_config, FakeClock())
    latest = datetime(2026, 11, 26, 11, 55, tzinfo=UTC)
    earliest = {"value": latest - timedelta(days=3, hours=2)}

    def instances(parsed):
        for i in parsed.get("DBInstances", []):
            i["LatestRestorableTime"] = latest

    def backups(parsed):
        parsed["DBInstanceAutomatedBackups"] = [
            {
                "DBInstanceIdentifier": STAGING_DB,
                "Status": "active",
                "RestoreWindow": {"EarliestTime": earliest["value"], "LatestTime": latest},
            }
        ]

    _answer_with(db, "DescribeDBInstances", instances)
    _answer_with(db, "DescribeDBInstanceAutomatedBackups", backups)
    w = db.restorable_window()
    assert (w.earliest, w.latest, w.retention_days) == (earliest["value"], latest, 7)
    earliest["value"] = latest - timedelta(
        days=10
    )  # older than the retention allows: not restorable any more
    assert db.restorable_window().earliest == latest - timedelta(days=7)


def test_restore_plan_carries_performance_insights_over(staging_aws, ops_config):
    db = _db(ops_config)
    key = "arn:aws:kms:us-east-1:123456789012:key/pi-key"

    def insights(parsed):
        for i in parsed.get("DBInstances", []):
            if i["DBInstanceIdentifier"] == STAGING_DB:
                i.update(
                    PerformanceInsightsEnabled=True,
                    PerformanceInsightsKMSKeyId=key,
                    PerformanceInsightsRetentionPeriod=731,
                )

    _answer_with(db, "DescribeDBInstances", insights)
    plan = db.plan_restore("spywatcher-staging-db-pi", to_time=None, snapshot_id=None)
    modify = next(s for s in plan.steps if s.action == "modify_db_instance")
    assert modify.params["EnablePerformanceInsights"] is True
    assert modify.params["PerformanceInsightsKMSKeyId"] == key
    assert modify.params["PerformanceInsightsRetentionPeriod"] == 731
