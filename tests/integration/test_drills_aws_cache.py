"""cache-failover on ElastiCache, end to end through the drills engine.

ElastiCache answers through botocore's Stubber (moto has neither TestFailover
nor DescribeEvents), with moto-made shapes; the Stubber checks every request
against the service model and the exact order of the calls. The cache itself
is a real redis-server on loopback behind the group's primary endpoint, and
TestFailover really takes it away: the Redis process is stopped (SIGSTOP) for
a known 1.0 s, as clients see while the primary endpoint moves, so the RTO the
probes measure can be checked against a known outage. Lock, CloudWatch: moto.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY, Stubber
from support.aws import aws_env, stub_iam_simulation
from support.elasticache import GROUP, moto_group, swapped

from spywatcher_ops.drills import suite
from spywatcher_ops.drills.aws import required_actions
from spywatcher_ops.drills.reporting import report
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios.registry import get

OUTAGE_S = 1.0


@pytest.fixture
def redis_primary():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
    yield proc, port
    os.kill(proc.pid, signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def api_on_the_cache(redis_primary):
    """The API's health URL, healthy while its cache answers PING (as the
    backend's /health does): the drill watches it alongside the cache probes."""
    from support.loopback_http import QuietHandler, serve, stop

    _, port = redis_primary

    class Health(QuietHandler):
        def do_GET(self):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.settimeout(0.2)
                    sock.sendall(b"PING\r\n")
                    ok = sock.recv(16).startswith(b"+PONG")
            except OSError:
                ok = False
            self.reply(200 if ok else 503, b"")

    server, url = serve(Health, "api-on-the-cache")
    yield f"{url}/health"
    stop(server)


def group_on(port: int) -> dict:
    group = moto_group()
    group["NodeGroups"][0]["PrimaryEndpoint"] = {"Address": "127.0.0.1", "Port": port}
    return group


def clusters(group: dict, status: str = "available") -> dict:
    return {
        "CacheClusters": [
            {"CacheClusterId": m, "CacheClusterStatus": status} for m in group["MemberClusters"]
        ]
    }


def events_after_failover(group: dict) -> list[dict]:
    old, new = group["MemberClusters"]
    now = datetime.now(UTC)

    def ev(message: str, source: str = GROUP, kind: str = "replication-group", after_s: float = 0.0) -> dict:
        return {
            "SourceIdentifier": source,
            "SourceType": kind,
            "Message": message,
            "Date": now + timedelta(seconds=after_s),
        }

    return [
        ev("Test Failover API called for node group 0001"),
        ev(f"Failover from primary node {old} to replica node {new} completed", after_s=0.5),
        ev(f"Failover from primary node {old} to replica node {new} completed", old, "cache-cluster", 0.5),
        ev(f"Recovering cache nodes {old}", old, "cache-cluster", 0.6),
        ev(f"Finished recovery for cache nodes {old}", old, "cache-cluster", 0.9),
    ]


def script(stub: Stubber, group: dict) -> None:
    """ElastiCache's answers in the order the drill asks (preflight, then the run)."""
    by_id = {"ReplicationGroupId": GROUP}
    after = swapped(group)
    ready = {"ReplicationGroups": [group]}
    # preflight: master endpoint, replica status (+ cluster statuses), TestFailover quota
    stub.add_response("describe_replication_groups", ready, by_id)
    stub.add_response("describe_replication_groups", ready, by_id)
    stub.add_response("describe_cache_clusters", clusters(group), {})
    stub.add_response(
        "describe_events", {"Events": []}, {"StartTime": ANY, "SourceType": "replication-group"}
    )
    # the run: probes' endpoint, the plan (group + quota), the state before, the call
    stub.add_response("describe_replication_groups", ready, by_id)
    stub.add_response("describe_replication_groups", ready, by_id)
    stub.add_response("describe_replication_groups", ready, by_id)
    stub.add_response(
        "describe_events", {"Events": []}, {"StartTime": ANY, "SourceType": "replication-group"}
    )
    stub.add_response("describe_replication_groups", ready, by_id)
    stub.add_response(
        "test_failover",
        {"ReplicationGroup": {**group, "Status": "modifying"}},
        {**by_id, "NodeGroupId": "0001"},
    )
    # polled once: promoted, old primary recovered, group available
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [after]}, by_id)
    stub.add_response("describe_events", {"Events": events_after_failover(group)}, {"StartTime": ANY})
    # after the rollback: the re-check, then the provider events for the timeline
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [after]}, by_id)
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [after]}, by_id)
    stub.add_response("describe_events", {"Events": events_after_failover(group)}, {"StartTime": ANY})


@pytest.mark.real
def test_cache_failover_on_elasticache_measures_the_outage_clients_saw(
    staging_aws, ops_config, redis_primary, api_on_the_cache
):
    proc, port = redis_primary
    ops_config.ops.aws.poll_seconds = 0.01
    ops_config.ops.environments.staging.health_url = api_on_the_cache
    env = aws_env(ops_config)
    group = group_on(port)
    stub = Stubber(env.cache.client)
    script(stub, group)
    stub.activate()
    outage: dict[str, float] = {}

    def primary_endpoint_moves(params, **_):
        # what clients of the primary endpoint see during a real TestFailover: nothing answers
        outage["start"] = time.time()
        os.kill(proc.pid, signal.SIGSTOP)

        def back() -> None:
            os.kill(proc.pid, signal.SIGCONT)
            outage["end"] = time.time()

        threading.Timer(OUTAGE_S, back).start()

    env.cache.client.meta.events.register(
        "provide-client-params.elasticache.TestFailover", primary_endpoint_moves
    )
    scenario = get("cache-failover", "aws")
    actions = required_actions(env, scenario)
    assert {"elasticache:TestFailover", "elasticache:DescribeEvents"} <= set(actions)
    stub_iam_simulation(env, scenario)
    options = DrillOptions()

    (checked,) = suite.preflight_all(env, [scenario], options)
    assert {c.name: c.status for c in checked.checks} == {
        "drills allowed": "ok",
        "lock free": "ok",
        "cache master": "ok",
        "cache replica": "ok",
        "TestFailover quota": "ok",
        "IAM permissions": "ok",
    }, checked.checks
    result = suite.run_suite(env, [checked], options, report_dir=env.settings.state_dir / "reports")
    stub.assert_no_pending_responses()
    (row,) = result.rows
    assert row.outcome == "met", row.summary
    rep = report.build(suite.find_drill(env.settings.state_dir, row.report_id))
    assert outage["end"] - outage["start"] >= OUTAGE_S
    # the probes saw the outage that really happened, within their cadence
    assert abs(rep["rto"]["achieved_s"] - OUTAGE_S) < 0.3, rep["rto"]
    assert rep["rpo"]["lost_writes"] == 0
    probes = {p["name"]: p for p in rep["probes"]}
    assert {n: p["impacted"] for n, p in probes.items()} == {
        "cache-write": True,
        "cache-read": True,
        "app-health": True,
    }
    # the API behind the cache was down as long, watched but not judged
    assert abs(probes["app-health"]["rto_s"] - OUTAGE_S) < 0.4, probes["app-health"]
    assert rep["rto"]["basis"] and "app-health" not in rep["rto"]["basis"]
    assert "; the API (health URL) after 1." in rep["summary"], rep["summary"]
    codes = [e.get("code") for e in rep["timeline"] if e["kind"] == "provider"]
    assert "test-failover-called" in codes and "failover-completed" in codes and "recovered" in codes
    records = suite.find_drill(env.settings.state_dir, row.report_id)
    failover = next(r for r in records if r.get("step") == "failover-result")
    assert (failover["old_primary"], failover["new_primary"]) == tuple(group["MemberClusters"])
