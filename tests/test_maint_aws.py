"""The data-tier steps on aws. moto 5.2 lacks RDS describe_pending_maintenance_actions,
apply_pending_maintenance_action and describe_db_engine_versions, so the RDS client
answers through botocore's Stubber, which checks every request and reply against the
real service model, in the exact order the step makes the calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from fixtures_aws import FakeClock, aws_env

from spywatcher_ops.maintenance.steps import StepContext

ARN = "arn:aws:rds:us-east-1:123456789012:db:spywatcher-staging-db"
AT = datetime(2026, 12, 6, 2, 5, tzinfo=UTC)


def _instance(
    status: str = "available", version: str = "15.3", pending: dict | None = None
) -> dict[str, Any]:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "spywatcher-staging-db",
                "DBInstanceArn": ARN,
                "Engine": "postgres",
                "EngineVersion": version,
                "DBInstanceStatus": status,
                "MultiAZ": True,
                "PendingModifiedValues": pending or {},
            }
        ]
    }


def _actions(*names: str) -> dict[str, Any]:
    return {
        "PendingMaintenanceActions": [
            {
                "ResourceIdentifier": ARN,
                "PendingMaintenanceActionDetails": [
                    {"Action": n, "Description": f"{n} available", "OptInStatus": "next-maintenance"}
                    for n in names
                ],
            }
        ]
        if names
        else []
    }


VERSIONS = {
    "DBEngineVersions": [
        {
            "Engine": "postgres",
            "EngineVersion": "15.3",
            "ValidUpgradeTarget": [
                {"Engine": "postgres", "EngineVersion": "15.4", "IsMajorVersionUpgrade": False},
                {"Engine": "postgres", "EngineVersion": "15.8", "IsMajorVersionUpgrade": False},
                {"Engine": "postgres", "EngineVersion": "16.4", "IsMajorVersionUpgrade": True},
            ],
        }
    ]
}


@pytest.fixture
def staging(ops_config: Any) -> Any:
    env = aws_env(ops_config, FakeClock(AT))
    rds = env.parts.clients.client("rds")
    with Stubber(rds) as stub:
        yield env, stub
        stub.assert_no_pending_responses()


def test_rds_pending_actions_and_the_newest_minor_upgrade(staging: Any) -> None:
    env, stub = staging
    port = env.parts.maintenance()
    ident = {"DBInstanceIdentifier": "spywatcher-staging-db"}
    # plan
    stub.add_response("describe_db_instances", _instance(), ident)
    stub.add_response(
        "describe_pending_maintenance_actions", _actions("system-update"), {"ResourceIdentifier": ARN}
    )
    stub.add_response(
        "describe_db_engine_versions", VERSIONS, {"Engine": "postgres", "EngineVersion": "15.3"}
    )
    plan = port.plan_database_maintenance()
    assert [(s.action, s.params.get("ApplyAction") or s.params.get("EngineVersion")) for s in plan.steps] == [
        ("apply_pending_maintenance_action", "system-update"),
        ("modify_db_instance", "15.8"),
    ]  # never 16.x
    assert plan.steps[1].params["AllowMajorVersionUpgrade"] is False
    # apply, then wait on the instance
    stub.add_response(
        "apply_pending_maintenance_action",
        {"ResourcePendingMaintenanceActions": {"ResourceIdentifier": ARN}},
        {"ResourceIdentifier": ARN, "ApplyAction": "system-update", "OptInType": "immediate"},
    )
    stub.add_response(
        "modify_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": "spywatcher-staging-db"}},
        {**ident, "EngineVersion": "15.8", "ApplyImmediately": True, "AllowMajorVersionUpgrade": False},
    )
    stub.add_response(
        "describe_db_instances", _instance("upgrading", "15.3", {"EngineVersion": "15.8"}), ident
    )
    stub.add_response("describe_db_instances", _instance("available", "15.8"), ident)
    stub.add_response("describe_pending_maintenance_actions", _actions(), {"ResourceIdentifier": ARN})
    stub.add_response(
        "describe_events",
        {
            "Events": [
                {
                    "SourceIdentifier": "spywatcher-staging-db",
                    "SourceType": "db-instance",
                    "Date": AT + timedelta(minutes=3),
                    "Message": "Database instance patched",
                },
                {
                    "SourceIdentifier": "spywatcher-staging-db",
                    "SourceType": "db-instance",
                    "Date": AT + timedelta(minutes=4),
                    "Message": "Multi-AZ instance failover completed",
                },
            ]
        },
        {"SourceIdentifier": "spywatcher-staging-db", "SourceType": "db-instance", "StartTime": AT},
    )
    seen: list[str] = []
    result = port.database_maintenance(plan, progress=seen.append)
    assert result.details["engine_version"] == "15.8"
    assert [e.message for e in result.events] == [
        "Database instance patched",
        "Multi-AZ instance failover completed",
    ]
    assert any("upgrading" in s for s in seen)
    # afterwards nothing is pending: the step's post-check reads this
    stub.add_response("describe_db_instances", _instance("available", "15.8"), ident)
    stub.add_response("describe_pending_maintenance_actions", _actions(), {"ResourceIdentifier": ARN})
    stub.add_response(
        "describe_db_engine_versions",
        {
            "DBEngineVersions": [
                {
                    "Engine": "postgres",
                    "EngineVersion": "15.8",
                    "ValidUpgradeTarget": [
                        {"Engine": "postgres", "EngineVersion": "16.4", "IsMajorVersionUpgrade": True}
                    ],
                }
            ]
        },
        {"Engine": "postgres", "EngineVersion": "15.8"},
    )
    assert port.pending_changes() == []


def test_the_db_engine_step_precheck_lists_what_is_pending(staging: Any) -> None:
    from spywatcher_ops.maintenance.data_tier import DB_ENGINE

    env, stub = staging
    ident = {"DBInstanceIdentifier": "spywatcher-staging-db"}
    for _ in range(2):  # pending_changes(), then the plan
        stub.add_response("describe_db_instances", _instance(), ident)
        stub.add_response("describe_pending_maintenance_actions", _actions(), {"ResourceIdentifier": ARN})
        stub.add_response(
            "describe_db_engine_versions", VERSIONS, {"Engine": "postgres", "EngineVersion": "15.3"}
        )
    ctx = StepContext(
        env=env, settings={"max_write_pause_s": 5.0}, progress=lambda _s: None, note=lambda *_a: None
    )
    checks = DB_ENGINE.precheck(ctx)
    assert [c.status for c in checks] == ["ok", "ok"]
    assert checks[1].detail == "engine-version 15.3 -> 15.8"


def test_elasticache_service_updates_applied_and_waited_on(ops_config: Any) -> None:
    env = aws_env(ops_config, FakeClock(AT))
    client = env.parts.clients.client("elasticache")
    group = {"ReplicationGroupIds": ["spywatcher-staging-redis"]}
    open_ = {**group, "UpdateActionStatus": ["not-applied", "waiting-to-start", "stopped", "scheduled"]}

    def action(status: str) -> dict[str, Any]:
        return {
            "UpdateActions": [
                {
                    "ReplicationGroupId": "spywatcher-staging-redis",
                    "ServiceUpdateName": "elasticache-20261101-002",
                    "ServiceUpdateSeverity": "important",
                    "ServiceUpdateType": "security-update",
                    "UpdateActionStatus": status,
                }
            ]
        }

    with Stubber(client) as stub:
        stub.add_response("describe_update_actions", action("not-applied"), open_)
        plan = env.parts.maintenance().plan_cache_maintenance()
        assert [s.params["ServiceUpdateName"] for s in plan.steps] == ["elasticache-20261101-002"]
        stub.add_response(
            "batch_apply_update_action",
            {
                "ProcessedUpdateActions": [
                    {
                        "ReplicationGroupId": "spywatcher-staging-redis",
                        "ServiceUpdateName": "elasticache-20261101-002",
                        "UpdateActionStatus": "in-progress",
                    }
                ],
                "UnprocessedUpdateActions": [],
            },
            {**group, "ServiceUpdateName": "elasticache-20261101-002"},
        )
        stub.add_response("describe_update_actions", action("in-progress"), group)
        stub.add_response("describe_update_actions", action("complete"), group)
        stub.add_response(
            "describe_replication_groups",
            {
                "ReplicationGroups": [
                    {
                        "ReplicationGroupId": "spywatcher-staging-redis",
                        "MemberClusters": ["spywatcher-staging-redis-001"],
                    }
                ]
            },
            {"ReplicationGroupId": "spywatcher-staging-redis"},
        )
        stub.add_response(
            "describe_events",
            {
                "Events": [
                    {
                        "SourceIdentifier": "spywatcher-staging-redis-001",
                        "SourceType": "cache-cluster",
                        "Message": "Finished applying service update",
                        "Date": AT + timedelta(minutes=2),
                    }
                ]
            },
            {"StartTime": AT},
        )
        seen: list[str] = []
        result = env.parts.maintenance().cache_maintenance(plan, progress=seen.append)
        stub.assert_no_pending_responses()
    assert result.details == {"applied": ["elasticache-20261101-002"]}
    assert [e.message for e in result.events] == ["Finished applying service update"]
    assert "elasticache-20261101-002 in-progress" in seen
