"""Drills on an aws environment: RDS (moto) for the fault and the events, a real
PostgreSQL with TLS behind the instance's tunnel for the probes, CloudWatch and
SNS (moto) for publishing, botocore Stubber where moto lacks the operation
(IAM policy simulation, ElastiCache events for the TestFailover quota)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from support.aws import APP_PASSWORD, APP_USER, REGION, SECRET, STAGING_DB, aws_env, stub_iam_simulation

from spywatcher_ops.drills import aws as drill_aws
from spywatcher_ops.drills import suite
from spywatcher_ops.drills.reporting import report
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios.registry import get

CALLER = "arn:aws:iam::123456789012:user/moto"


@pytest.fixture
def drill_db(tls_postgres):
    """A private database in the TLS PostgreSQL, owned by the app user."""
    name = "drill_aws"
    tls_postgres.execute(f"DROP DATABASE IF EXISTS {name}")
    tls_postgres.execute(f"CREATE DATABASE {name} OWNER {APP_USER}")
    yield name
    tls_postgres.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def staging(ops_config, tls_postgres, drill_db, clock=None, **aws):
    ops_config.ops.environments.staging.db_tunnels = {STAGING_DB: f"127.0.0.1:{tls_postgres.port}"}
    ops_config.ops.aws.poll_seconds = 0.01
    for key, value in aws.items():
        ops_config.ops.aws[key] = value
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=SECRET,
        SecretString=json.dumps({"username": APP_USER, "password": APP_PASSWORD, "dbname": drill_db}),
    )
    return aws_env(ops_config, clock=clock)


def allow_all(env, scenario, deny=()):
    return stub_iam_simulation(env, scenario, deny=deny)


@pytest.mark.real
def test_db_failover_on_rds_runs_end_to_end_and_publishes(staging_aws, ops_config, tls_postgres, drill_db):
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="dr-drills")["TopicArn"]
    queue = sqs.create_queue(QueueName="dr-drills")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    env = staging(ops_config, tls_postgres, drill_db, sns_topic_arn=topic)
    scenario = get("db-failover", "aws")
    options = DrillOptions()
    actions = drill_aws.required_actions(env, scenario)
    assert {"rds:RebootDBInstance", "cloudwatch:PutMetricData", "sns:Publish"} <= set(actions)
    stub = allow_all(env, scenario)

    checked = suite.preflight_all(env, [scenario], options)
    stub.assert_no_pending_responses()
    names = {c.name: c.status for c in checked[0].checks}
    assert names == {
        "drills allowed": "ok",
        "lock free": "ok",
        "database writable": "ok",
        "standby / Multi-AZ": "ok",
        "IAM permissions": "ok",
    }, checked[0].checks

    reboots: list[dict] = []  # observe the real call on its way to moto
    env.parts.clients.client("rds").meta.events.register(
        "provide-client-params.rds.RebootDBInstance", lambda params, **_: reboots.append(dict(params))
    )
    result = suite.run_suite(env, checked, options, report_dir=env.settings.state_dir / "reports")
    assert reboots == [{"DBInstanceIdentifier": STAGING_DB, "ForceFailover": True}]
    (row,) = result.rows
    assert row.outcome == "met", row.summary
    rep = report.build(suite.find_drill(env.settings.state_dir, row.report_id))
    assert rep["environment"] == {"name": "staging", "kind": "aws"}
    assert rep["fault"]["description"].startswith(f"fail over {STAGING_DB}")
    assert rep["rto"]["target_s"] == 60.0 and rep["rpo"]["lost_writes"] == 0
    assert any(s["step"] == "failover-result" for s in rep["steps"])

    cw = boto3.client("cloudwatch", region_name=REGION)
    metrics = cw.list_metrics(Namespace="Spywatcher/DR")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"RTOSeconds", "RPOSeconds", "LostWrites", "TargetsMet"}
    dims = {d["Name"]: d["Value"] for d in metrics[0]["Dimensions"]}
    assert dims == {"Environment": "staging", "Scenario": "db-failover"}
    stats = cw.get_metric_statistics(
        Namespace="Spywatcher/DR",
        MetricName="TargetsMet",
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=60,
        Statistics=["Sum"],
    )
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 1.0
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", [])
    body = json.loads(message["Body"])
    assert body["Subject"] == "DR drill db-failover on staging: met"
    assert "RTO" in body["Message"] and row.report_id in body["Message"]
    assert result.published == [
        {
            "id": row.report_id,
            "status": "ok",
            "namespace": "Spywatcher/DR",
            "sns_message_id": result.published[0]["sns_message_id"],
        }
    ]


def _instant(value) -> float:
    """RestoreTime as the client sends it (ISO string or datetime) -> epoch seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


class RdsRestoreCopy:
    """What RDS does for RestoreDBInstanceToPointInTime, as far as the drill can see:
    a new instance holding the source's drill rows written up to the restore time.
    The copy goes into a second PostgreSQL, reached through the new instance's tunnel."""

    def __init__(self, env, source, copy, dbname, until=lambda params: _instant(params["RestoreTime"])):
        self.env, self.source, self.copy, self.dbname, self.until = env, source, copy, dbname, until
        self.calls: list[dict] = []
        self.after_point = 0  # writes the source had past the restore time: not in the copy

    def __call__(self, params, **_):
        import psycopg

        from spywatcher_ops.drills.probes import DRILL_TABLE

        self.calls.append(dict(params))
        until = self.until(params)
        with psycopg.connect(**self.source.dsn(self.dbname), autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT run_id, seq, client_ts FROM {DRILL_TABLE} WHERE client_ts <= %s", (until,)
            ).fetchall()
            self.after_point = conn.execute(
                f"SELECT count(*) FROM {DRILL_TABLE} WHERE client_ts > %s", (until,)
            ).fetchone()[0]
        self.copy.execute(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        self.copy.execute(f"CREATE DATABASE {self.dbname} OWNER {APP_USER}")
        with psycopg.connect(**self.copy.dsn(self.dbname), autocommit=True) as conn:
            conn.execute(f"SET ROLE {APP_USER}")
            conn.execute(
                f"CREATE TABLE {DRILL_TABLE} (run_id text NOT NULL, seq bigint NOT NULL, "
                "client_ts double precision NOT NULL, written_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (run_id, seq))"
            )
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {DRILL_TABLE} (run_id, seq, client_ts) VALUES (%s, %s, %s)", rows
                )
        # the new instance's id: TargetDBInstanceIdentifier (point in time) or DBInstanceIdentifier (snapshot)
        new_id = params.get("TargetDBInstanceIdentifier") or params["DBInstanceIdentifier"]
        self.env.env.raw.setdefault("db_tunnels", {})[new_id] = f"127.0.0.1:{self.copy.port}"


@pytest.mark.real
def test_pitr_restore_on_rds_restores_before_the_mark_verifies_and_removes_the_copy(
    staging_aws, ops_config, tls_postgres, tls_postgres_restored, drill_db
):
    env = staging(ops_config, tls_postgres, drill_db)
    rds = env.parts.clients.client("rds")
    # RDS's LatestRestorableTime trails by minutes; moto reports a fixed one. Say "now",
    # so the drill restores to its own mark, as it would on an idle-enough real instance.
    rds.meta.events.register(
        "after-call.rds.DescribeDBInstances",
        lambda parsed, **_: [
            i.__setitem__("LatestRestorableTime", datetime.now(UTC)) for i in parsed.get("DBInstances", [])
        ],
    )
    copy = RdsRestoreCopy(env, tls_postgres, tls_postgres_restored, drill_db)
    rds.meta.events.register("provide-client-params.rds.RestoreDBInstanceToPointInTime", copy)
    asked_events_of: list[str] = []
    rds.meta.events.register(
        "provide-client-params.rds.DescribeEvents",
        lambda params, **_: asked_events_of.append(params.get("SourceIdentifier")),
    )
    scenario = get("pitr-restore", "aws")
    options = DrillOptions()
    stub = allow_all(env, scenario)

    (checked,) = suite.preflight_all(env, [scenario], options)
    stub.assert_no_pending_responses()
    assert checked.ok, [c.to_dict() for c in checked.checks]
    result = suite.run_suite(env, [checked], options, report_dir=env.settings.state_dir / "reports")
    (row,) = result.rows
    assert row.outcome == "met", row.summary
    rep = report.build(suite.find_drill(env.settings.state_dir, row.report_id))
    (call,) = copy.calls
    new_id = call["TargetDBInstanceIdentifier"]
    assert call["SourceDBInstanceIdentifier"] == STAGING_DB and new_id.startswith(f"{STAGING_DB}-drill-")
    d = rep["details"]
    assert d["restore"]["instance"] == new_id and d["restore"]["kept"] is False
    assert (
        abs(_instant(call["RestoreTime"]) - d["restore"]["restore_point"]) < 0.001
    )  # ms precision on the wire
    assert rep["timeline"][0]["kind"] == "fault" or any(
        e["kind"] == "fault" and e["t_s"] == 0 for e in rep["timeline"]
    )
    assert d["verification"] == "passed" and d["missing_before_point"] == 0 and d["present_after_point"] == 0
    assert d["surviving"] >= 3  # the writes before the mark are in the copy
    assert copy.after_point >= 1  # and the drill kept writing past it (those must not count)
    assert 0 <= rep["rpo"]["achieved_s"] < 0.5 and rep["rpo"]["lost_writes"] == 0
    assert rep["rto"]["achieved_s"] > 0.3  # the writes streamed past the mark, then restore + verification
    # the copy was removed: only what the drill created
    ids = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]
    assert ids == [STAGING_DB]
    assert {STAGING_DB, new_id} <= set(asked_events_of)  # both instances' events for the timeline


@pytest.mark.real
def test_snapshot_restore_on_rds_counts_every_write_since_the_snapshot_as_lost(
    staging_aws, ops_config, tls_postgres, tls_postgres_restored, drill_db
):
    from spywatcher_ops.core.clock import SystemClock

    # the real clock: the drill's write times are compared with moto's snapshot time
    env = staging(ops_config, tls_postgres, drill_db, clock=SystemClock())
    rds = env.parts.clients.client("rds")
    snap = rds.create_db_snapshot(DBInstanceIdentifier=STAGING_DB, DBSnapshotIdentifier="before-the-drill")
    created = snap["DBSnapshot"]["SnapshotCreateTime"]
    copy = RdsRestoreCopy(
        env, tls_postgres, tls_postgres_restored, drill_db, until=lambda _: created.timestamp()
    )
    rds.meta.events.register("provide-client-params.rds.RestoreDBInstanceFromDBSnapshot", copy)
    scenario = get("snapshot-restore", "aws")
    options = DrillOptions()
    allow_all(env, scenario)

    (checked,) = suite.preflight_all(env, [scenario], options)
    assert checked.ok, [c.to_dict() for c in checked.checks]
    result = suite.run_suite(env, [checked], options, report_dir=env.settings.state_dir / "reports")
    (row,) = result.rows
    assert row.outcome == "met", row.summary  # judged by targets.rpo.snapshot (the backup interval)
    rep = report.build(suite.find_drill(env.settings.state_dir, row.report_id))
    (call,) = copy.calls
    assert call["DBSnapshotIdentifier"] == "before-the-drill"
    assert call["DBInstanceIdentifier"].startswith(f"{STAGING_DB}-drill-")
    # every write of this run came after the snapshot: all of them are lost, and counted
    writer = next(p for p in rep["probes"] if p["name"] == "db-write")
    assert rep["rpo"]["lost_writes"] == writer["attempts"] - writer["failed"] >= 3
    assert rep["details"]["surviving_of_this_run"] == 0 and rep["details"]["verification"] == "passed"
    fault_at = rep["details"]["restore"]["snapshot_created"] + rep["rpo"]["achieved_s"]
    assert rep["rpo"]["achieved_s"] > 0 and fault_at > created.timestamp()
    assert rep["rpo"]["target_s"] == 86400
    ids = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]
    assert ids == [STAGING_DB]
