"""Drills on an aws environment: RDS (moto) for the fault and the events, a real
PostgreSQL with TLS behind the instance's tunnel for the probes, CloudWatch and
SNS (moto) for publishing, botocore Stubber where moto lacks the operation
(IAM policy simulation, ElastiCache events for the TestFailover quota)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber
from support.aws import REGION, STAGING_DB, aws_env, stub_iam_simulation

from spywatcher_ops.drills import aws as drill_aws
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios.registry import get

CALLER = "arn:aws:iam::123456789012:user/moto"


def allow_all(env, scenario, deny=()):
    return stub_iam_simulation(env, scenario, deny=deny)


def test_denied_permissions_fail_preflight(staging_aws, ops_config):
    env = aws_env(ops_config)
    scenario = get("db-failover", "aws")
    stub = allow_all(env, scenario, deny=("rds:RebootDBInstance", "dynamodb:PutItem"))
    check = drill_aws.permissions(env, scenario)
    stub.assert_no_pending_responses()
    assert check.status == "failed"
    assert check.detail == "denied: dynamodb:PutItem (implicitDeny), rds:RebootDBInstance (implicitDeny)"


def test_assumed_role_sessions_are_simulated_as_their_role():
    arn = "arn:aws:sts::123456789012:assumed-role/dr-runner/ci-42"
    from spywatcher_ops.backends.aws.iam import policy_source

    assert policy_source(arn) == "arn:aws:iam::123456789012:role/dr-runner"


def test_test_failover_quota_is_checked_before_a_cache_drill(ops_config):
    from moto import mock_aws

    with mock_aws():
        env = aws_env(ops_config)
        client = env.cache.client
        stub = Stubber(client)
        now = env.clock.now()
        events = [
            {
                "SourceIdentifier": "spywatcher-staging-redis",
                "SourceType": "replication-group",
                "Message": "Test Failover API called for node group 0001",
                "Date": now - timedelta(hours=h),
            }
            for h in (1, 2, 3, 4, 5)
        ]
        stub.add_response("describe_events", {"Events": events})
        stub.activate()
        check = drill_aws.test_failover_quota(env)
        assert check.status == "failed" and "5 of 5" in check.detail


def test_the_sandbox_cache_has_no_test_failover_quota(tmp_path):
    """Through the Cache port: a sandbox failover is a local SIGKILL, nothing counts against a limit."""
    from support.cache import make_environment

    env = make_environment(tmp_path)
    assert env.cache.quota is None and env.cache.test_failovers_in_window() == []
    check = drill_aws.test_failover_quota(env)
    assert (check.status, check.detail) == ("ok", "no test failover quota on sandbox")


def test_production_refuses_drills_unless_allowed(ops_config):
    from spywatcher_ops.drills.preflight import drills_allowed

    env = aws_env(ops_config, name="production")
    assert drills_allowed(env).status == "failed"
    ops_config.ops.environments.production.allow_drills = True
    check = drills_allowed(aws_env(ops_config, name="production"))
    assert check.status == "ok" and "confirm" in check.detail


def test_metric_data_shape():
    rep = {
        "environment": {"name": "staging"},
        "scenario": {"name": "db-failover"},
        "started_at": "2026-11-26T00:00:00Z",
        "rto": {"achieved_s": 41.5},
        "rpo": {"achieved_s": 0.0, "lost_writes": 0},
        "outcome": "met",
    }
    data = {d["MetricName"]: d for d in drill_aws.metric_data(rep)}
    assert data["RTOSeconds"]["Value"] == 41.5 and data["RTOSeconds"]["Unit"] == "Seconds"
    assert data["TargetsMet"]["Value"] == 1.0 and data["LostWrites"]["Unit"] == "Count"


def test_snapshot_restore_preflight_predicts_the_database_rpo_miss(staging_aws, ops_config):
    from support.clock import FakeClock

    boto3.client("rds", region_name=REGION).create_db_snapshot(
        DBInstanceIdentifier=STAGING_DB, DBSnapshotIdentifier="ten-minutes-old"
    )
    env = aws_env(ops_config, clock=FakeClock(datetime.now(UTC) + timedelta(minutes=10)))
    checks = get("snapshot-restore", "aws").checks(env, DrillOptions())
    predictions = [c.detail for c in checks if c.name == "prediction"]
    assert len(predictions) == 1 and c_status(checks, "prediction") == "warn"
    assert (
        predictions[0].startswith(
            "snapshot-only recovery cannot meet the 300 s database RPO target: the newest snapshot is 60"
        )
        and "only a point-in-time restore can" in predictions[0]
    )


def c_status(checks, name):
    return next(c.status for c in checks if c.name == name)


def test_the_shipped_iam_policy_allows_every_action_a_drill_checks_for(ops_config):
    """deploy/iam/drills-policy.json is what the preflight's 'denied' hint points at: it must cover them all."""
    from support.paths import ROOT

    from spywatcher_ops.drills.scenarios.registry import load

    policy = json.loads((ROOT / "deploy" / "iam" / "drills-policy.json").read_text())
    allowed = {a for st in policy["Statement"] if st["Effect"] == "Allow" for a in st["Action"]}
    ops_config.ops.aws.sns_topic_arn = "arn:aws:sns:us-east-1:123456789012:dr-drills"
    env = aws_env(ops_config)
    for name, scenario in load().items():
        if "aws" in scenario.kinds:
            missing = set(drill_aws.required_actions(env, scenario)) - allowed
            assert not missing, (name, missing)


def test_permissions_are_simulated_on_the_resources_the_drills_touch(staging_aws, ops_config):
    """A policy scoped to the lock table, the cluster or the secret must not be reported as denied."""
    env = aws_env(ops_config)
    arns = drill_aws.resource_arns(env, "arn:aws:sts::123456789012:assumed-role/dr-runner/ci-42")
    assert arns == {
        "dynamodb": "arn:aws:dynamodb:us-east-1:123456789012:table/spywatcher-ops-locks",
        "eks": "arn:aws:eks:us-east-1:123456789012:cluster/spywatcher-staging-eks",
        # a stand-in suffix: the real one is only known by reading the secret (a password)
        "secretsmanager": "arn:aws:secretsmanager:us-east-1:123456789012:secret:spywatcher-staging-db-credentials-AbCdEf",
    }
