"""db.resize and cache.resize: refused classes (exit 2, nothing done), the sandbox's rolling restart
for real with the client impact measured by the drill probes, RDS and ElastiCache through moto."""

from __future__ import annotations

from typing import Any

import pytest
from support.aws import STAGING_DB, aws_env


def test_db_resize_on_rds(staging_aws: Any, ops_config: Any, tls_postgres: Any):
    import boto3

    from spywatcher_ops.recovery.resize import db_resize

    ops_config.ops.environments.staging.db_tunnels = {STAGING_DB: f"127.0.0.1:{tls_postgres.port}"}
    ops_config.ops.aws.poll_seconds = 0.01
    env = aws_env(ops_config)
    dry = db_resize(env, "db.r6g.large", "now", approve=lambda plan: False)
    assert not dry.applied and dry.plan.steps[0].render() == (
        "rds.modify_db_instance(DBInstanceIdentifier='spywatcher-staging-db', DBInstanceClass='db.r6g.large', "
        "ApplyImmediately=True)"
    )
    rds = boto3.client("rds", region_name="us-east-1")
    assert rds.describe_db_instances()["DBInstances"][0]["DBInstanceClass"] == "db.t3.medium"
    outcome = db_resize(env, "db.r6g.large", "now", approve=lambda plan: True)
    assert outcome.applied and outcome.old == "db.t3.medium" and not outcome.pending
    assert rds.describe_db_instances()["DBInstances"][0]["DBInstanceClass"] == "db.r6g.large"
    assert outcome.impact["db-read"]["attempts"] > 0  # the reader probe ran against the tunnelled server
    window = db_resize(env, "db.t3.large", "window", approve=lambda plan: True)
    assert window.pending and "ApplyImmediately=False" in window.plan.steps[0].render()
    assert window.impact == {}  # nothing to measure now
    from spywatcher_ops.core.errors import BadInput

    with pytest.raises(BadInput, match="already is db.t3.large"):
        db_resize(env, "db.t3.large", "now", approve=lambda plan: True)
