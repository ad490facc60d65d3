"""ElastiCache: status and node-group checks against moto; TestFailover and its
quota with botocore's Stubber (moto has neither TestFailover nor DescribeEvents).
Stubbed responses for DescribeReplicationGroups are taken from moto, so their
shape is the real one, and the Stubber validates every request and response.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from support.cache import make_environment
from support.clock import FakeClock
from support.elasticache import GROUP, REGION, create_group, moto_group, swapped

from spywatcher_ops.backends.aws.elasticache import ElastiCacheCache, event_code
from spywatcher_ops.backends.aws.session import AwsClients
from spywatcher_ops.core.errors import BadInput, NotReady, Refused

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def event(
    minutes_ago: float, message: str, source: str = GROUP, kind: str = "replication-group"
) -> dict[str, Any]:
    return {
        "SourceIdentifier": source,
        "SourceType": kind,
        "Message": message,
        "Date": NOW - timedelta(minutes=minutes_ago),
    }


def cache_with_stub(tmp_path: Path, clock: FakeClock, **settings: Any) -> tuple[ElastiCacheCache, Stubber]:
    env = make_environment(tmp_path, "staging", clock=clock)
    env.settings.raw["aws"]["poll_seconds"] = 5
    env.settings.raw["cache"].update(settings)
    clients = AwsClients(REGION, None)
    stub = Stubber(clients.client("elasticache"))
    stub.activate()
    return ElastiCacheCache(env, clients), stub


def test_status_lists_members_roles_and_flags(tmp_path: Path) -> None:
    with mock_aws():
        clients = AwsClients(REGION, None)
        create_group(clients.client("elasticache"))
        cache = ElastiCacheCache(make_environment(tmp_path, "staging"), clients)
        nodes = cache.status()
        endpoint = cache.endpoint()
    assert cache.group_id == GROUP
    assert sorted(n.role for n in nodes) == ["primary", "replica"]
    assert all(n.alive and n.details["status"] == "available" for n in nodes)
    first = nodes[0].details
    assert (first["node_group"], first["automatic_failover"], first["multi_az"]) == (
        "0001",
        "enabled",
        "enabled",
    )
    assert first["replication_group"] == GROUP and first["group_status"] == "available"
    assert nodes[0].host.endswith(".cache.amazonaws.com") and nodes[0].port == 6379
    assert endpoint.primary_host.startswith("master.") and endpoint.sentinels == []


def test_missing_group_and_unknown_node_group_are_refused_up_front(tmp_path: Path) -> None:
    with mock_aws():
        clients = AwsClients(REGION, None)
        cache = ElastiCacheCache(make_environment(tmp_path, "staging"), clients)
        with pytest.raises(NotReady, match=f"replication group {GROUP} not found"):
            cache.status()
        create_group(clients.client("elasticache"), NumNodeGroups=2)
        with pytest.raises(BadInput, match="--node-group 0009: no such node group .*; known: 0001, 0002"):
            cache.plan_failover(node_group="0009")
        with pytest.raises(BadInput, match="--node-group is needed: .* has node groups 0001, 0002"):
            cache.plan_failover()


def test_quota_reached_refuses_before_test_failover(tmp_path: Path) -> None:
    group = moto_group()
    cache, stub = cache_with_stub(tmp_path, FakeClock(NOW))
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": GROUP}
    )
    calls = [
        event(60 * h + 5, f"Test Failover API called for node group 000{h % 2 + 1}", source=f"g{h}")
        for h in range(5)
    ]
    stub.add_response(
        "describe_events",
        {"Events": calls + [event(1, "Cache cluster rebooted", source=GROUP)]},
        {"StartTime": NOW - timedelta(hours=24), "SourceType": "replication-group"},
    )
    with pytest.raises(
        Refused, match=r"quota reached: 5 calls in the last 24 h \(limit 5\).*after 2026-11-27T07:55:00Z"
    ):
        cache.plan_failover()
    stub.assert_no_pending_responses()  # and TestFailover, never queued, was never called


def test_quota_is_configurable_and_counts_only_test_failover_calls(tmp_path: Path) -> None:
    group = moto_group()
    cache, stub = cache_with_stub(tmp_path, FakeClock(NOW), test_failover_quota=3)
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": GROUP}
    )
    stub.add_response(
        "describe_events",
        {
            "Events": [
                event(30, "Test Failover API called for node group 0001"),
                event(20, "Failover from primary node x-001 to replica node x-002 completed"),
                event(10, "Test Failover API called for node group 0001"),
            ]
        },
        {"StartTime": ANY, "SourceType": "replication-group"},
    )
    plan = cache.plan_failover()
    assert [s.action for s in plan.steps] == ["test_failover", "wait_for_failover"]
    assert plan.steps[0].params == {"ReplicationGroupId": GROUP, "NodeGroupId": "0001"}
    assert "2 of 3 used" in plan.notes[0]


def test_failover_calls_test_failover_and_waits_for_the_events(tmp_path: Path) -> None:
    group = moto_group()
    members = group["MemberClusters"]
    old, new = members[0], members[1]
    clock = FakeClock(NOW)
    cache, stub = cache_with_stub(tmp_path, clock)
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": GROUP}
    )
    stub.add_response(
        "describe_events", {"Events": []}, {"StartTime": ANY, "SourceType": "replication-group"}
    )
    plan = cache.plan_failover(node_group="0001")

    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": GROUP}
    )
    stub.add_response(
        "test_failover",
        {"ReplicationGroup": {**group, "Status": "modifying"}},
        {"ReplicationGroupId": GROUP, "NodeGroupId": "0001"},
    )
    called = event(-0.01, "Test Failover API called for node group 0001")
    # first poll: under way
    stub.add_response(
        "describe_replication_groups",
        {"ReplicationGroups": [{**group, "Status": "modifying"}]},
        {"ReplicationGroupId": GROUP},
    )
    stub.add_response("describe_events", {"Events": [called]}, {"StartTime": NOW - timedelta(minutes=2)})
    # second poll: promoted, old primary recovered, group available
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [swapped(group)]}, {"ReplicationGroupId": GROUP}
    )
    stub.add_response(
        "describe_events",
        {
            "Events": [
                event(5, "Test Failover API called for node group 0001"),  # an earlier drill: not ours
                called,
                event(
                    -0.5,
                    f"Failover from primary node {old} to replica node {new} completed",
                    source=old,
                    kind="cache-cluster",
                ),
                event(-0.6, f"Failover from primary node {old} to replica node {new} completed"),
                event(-0.7, "Test Failover API called for node group 0001", source="another-group"),
                event(-2, f"Recovering cache nodes {old}", source=old, kind="cache-cluster"),
                event(-4, f"Finished recovery for cache nodes {old}", source=old, kind="cache-cluster"),
            ]
        },
        {"StartTime": ANY},
    )
    progress: list[str] = []
    result = cache.failover(plan, progress=progress.append)
    stub.assert_no_pending_responses()

    assert (result.old_primary, result.new_primary) == (old, new)
    assert [e.code for e in result.events] == [
        "test-failover-called",
        "failover-completed",
        "failover-completed",
        "recovering",
        "recovered",
    ]
    assert all(e.source in (GROUP, old) for e in result.events)
    assert clock.sleeps == [5]  # polled at ops.aws.poll_seconds
    assert any("modifying" in p for p in progress) and "Finished recovery" in progress[-1]


def test_failover_gives_up_at_the_deadline(tmp_path: Path) -> None:
    from spywatcher_ops.core.errors import TimedOut

    group = moto_group()
    clock = FakeClock(NOW)
    cache, stub = cache_with_stub(tmp_path, clock, failover_timeout_s=10)
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": GROUP}
    )
    stub.add_response(
        "describe_events", {"Events": []}, {"StartTime": ANY, "SourceType": "replication-group"}
    )
    plan = cache.plan_failover()
    stub.add_response(
        "describe_replication_groups", {"ReplicationGroups": [group]}, {"ReplicationGroupId": GROUP}
    )
    stub.add_response(
        "test_failover", {"ReplicationGroup": group}, {"ReplicationGroupId": GROUP, "NodeGroupId": "0001"}
    )
    for _ in range(3):  # t = 0, 5, 10 s
        stub.add_response(
            "describe_replication_groups",
            {"ReplicationGroups": [{**group, "Status": "modifying"}]},
            {"ReplicationGroupId": GROUP},
        )
        stub.add_response("describe_events", {"Events": []}, {"StartTime": ANY})
    with pytest.raises(TimedOut, match="after 10 s; last status: group modifying"):
        cache.failover(plan)
    stub.assert_no_pending_responses()


def test_event_codes() -> None:
    assert event_code("Test Failover API called for node group 0001") == "test-failover-called"
    assert (
        event_code("Failover from master node a-001 to replica node a-002 completed") == "failover-completed"
    )
    assert event_code("Finished recovery for cache nodes 0001") == "recovered"
    assert event_code("Cache cluster created") is None
