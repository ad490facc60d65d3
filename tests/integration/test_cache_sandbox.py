"""The sandbox cache against real redis-server processes (primary, replica, 3 sentinels)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from spywatcher_ops.backends.sandbox.redis.cache import CHECK_KEY, SandboxCache
from spywatcher_ops.backends.sandbox.redis.servers import RedisSandbox, pid_alive, port_free
from spywatcher_ops.core.errors import BadInput, NotReady, RolledBack
from spywatcher_ops.core.plan import Plan


def _sentinel_client(endpoint):
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    opts = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 0)}
    sentinel = Sentinel(
        endpoint.sentinels,
        sentinel_kwargs={**opts, "password": endpoint.sentinel_password},
        password=endpoint.password,
        **opts,
    )
    return sentinel.master_for(endpoint.master_name, **opts)


def _by_id(nodes):
    return {n.id: n for n in nodes}


@pytest.mark.real
def test_up_repairs_killed_processes_and_down_leaves_none(tmp_path: Path) -> None:
    sandbox = RedisSandbox(tmp_path / "redis", master_name="spywatcher")
    try:
        nodes = _by_id(sandbox.up())
        assert sorted(n.role for n in nodes.values()) == [
            "primary",
            "replica",
            "sentinel",
            "sentinel",
            "sentinel",
        ]
        assert all(n.alive for n in nodes.values())
        assert nodes["redis-2"].details["link"] == "up"
        assert nodes["sentinel-1"].details["other_sentinels"] == 2
        pids = {n.id: n.details["pid"] for n in nodes.values()}

        # idempotent: a second up() starts nothing
        assert {n.id: n.details["pid"] for n in sandbox.up()} == pids

        # a killed replica and a killed sentinel are reported, then repaired in place
        os.kill(pids["redis-2"], signal.SIGKILL)
        os.kill(pids["sentinel-3"], signal.SIGKILL)
        seen = _by_id(sandbox.status())
        assert not seen["redis-2"].alive and seen["redis-2"].role == "unknown"
        assert not seen["sentinel-3"].alive
        assert seen["redis-1"].alive and seen["redis-1"].role == "primary"

        repaired = _by_id(sandbox.up())
        assert repaired["redis-2"].alive and repaired["redis-2"].details["pid"] != pids["redis-2"]
        assert repaired["redis-2"].port == nodes["redis-2"].port
        assert repaired["redis-2"].details["link"] == "up"
        assert (
            repaired["sentinel-3"].alive
            and repaired["sentinel-3"].details["master"] == f"127.0.0.1:{nodes['redis-1'].port}"
        )
        assert repaired["redis-1"].details["pid"] == pids["redis-1"]  # untouched
    finally:
        ports = sandbox.ports()
        specs = [sandbox.node_spec(n) for n in ports]
        sandbox.down()
    assert all(not pid_alive(s["pid"] if s else None, s["port"] if s else 0) for s in specs)
    assert all(port_free(p) for p in ports.values())
    assert all(n.alive is False for n in sandbox.status())
    sandbox.purge()
    assert not (tmp_path / "redis").exists()


@pytest.mark.real
def test_a_dead_node_whose_port_was_taken_comes_back_on_another_port(tmp_path: Path) -> None:
    import socket

    sandbox = RedisSandbox(tmp_path / "redis", master_name="spywatcher")
    holder = socket.socket()
    try:
        nodes = _by_id(sandbox.up())
        busy = nodes["redis-2"].port
        os.kill(nodes["redis-2"].details["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not port_free(busy) and time.monotonic() < deadline:
            time.sleep(0.02)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", busy))  # another program took the replica's port
        holder.listen()
        repaired = _by_id(sandbox.up())
        assert all(n.alive for n in repaired.values()), repaired
        assert repaired["redis-2"].port != busy and repaired["redis-2"].details["link"] == "up"
        assert repaired["sentinel-1"].details["other_sentinels"] == 2
    finally:
        holder.close()
        sandbox.down()
        sandbox.purge()


@pytest.mark.real
def test_failover_is_refused_before_any_kill_when_no_replica_can_take_over(sandbox_cache_env) -> None:
    cache = SandboxCache(sandbox_cache_env)
    nodes = _by_id(cache.status())
    primary = next(n for n in nodes.values() if n.role == "primary")
    replica = next(n for n in nodes.values() if n.role == "replica")
    with pytest.raises(BadInput, match="--node-group 0002: .*known: spywatcher"):
        cache.plan_failover(node_group="0002")

    os.kill(replica.details["pid"], signal.SIGKILL)
    with pytest.raises(NotReady, match="no live replica"):
        cache.plan_failover()
    assert pid_alive(primary.details["pid"], primary.port)


@pytest.mark.real
def test_a_stale_plan_is_not_applied(sandbox_cache_env) -> None:
    cache = SandboxCache(sandbox_cache_env)
    plan = cache.plan_failover()
    kill = plan.steps[0]
    # as if the primary had restarted since the plan was shown: its pid differs
    stale = Plan(
        plan.title,
        [replace(kill, params={**kill.params, "pid": kill.params["pid"] + 100000}), *plan.steps[1:]],
    )
    with pytest.raises(NotReady, match="changed since the plan"):
        cache.failover(stale)
    assert all(n.alive for n in cache.status())


@pytest.mark.real
def test_a_failover_that_misses_its_deadline_is_rolled_back(sandbox_cache_env) -> None:
    cache = SandboxCache(sandbox_cache_env)
    plan = cache.plan_failover()
    wait = plan.steps[1]
    hurried = Plan(
        plan.title, [plan.steps[0], replace(wait, params={**wait.params, "timeout_s": 0.05}), *plan.steps[2:]]
    )
    with pytest.raises(RolledBack, match="gave up waiting for the sentinels .* the cache was repaired"):
        cache.failover(hurried)
    nodes = cache.status()
    assert sorted(n.role for n in nodes if n.alive) == [
        "primary",
        "replica",
        "sentinel",
        "sentinel",
        "sentinel",
    ]
    assert next(n for n in nodes if n.role == "replica").details["link"] == "up"


@pytest.mark.real
def test_failover_promotes_replica_and_a_sentinel_client_writes_again(sandbox_cache_env) -> None:
    cache = SandboxCache(sandbox_cache_env)
    before = _by_id(cache.status())
    primary = next(n for n in before.values() if n.role == "primary")
    replica = next(n for n in before.values() if n.role == "replica")
    endpoint = cache.endpoint()
    assert (endpoint.primary_host, endpoint.primary_port) == (primary.host, primary.port)
    assert len(endpoint.sentinels) == 3 and endpoint.master_name == "spywatcher"
    _sentinel_client(endpoint).set("before-failover", "kept")

    plan = cache.plan_failover()
    assert [s.action for s in plan.steps] == ["kill", "wait_for_switch_master", "set", "start"]
    assert plan.steps[0].params["pid"] == primary.details["pid"]

    started = time.monotonic()
    result = cache.failover(plan)
    took = time.monotonic() - started

    assert result.old_primary.startswith(primary.id) and result.new_primary.startswith(replica.id)
    # docs/measured.md: ~1-2.3 s on this machine; the bound only catches a hang or a retry storm
    assert (result.finished - result.started).total_seconds() < 10
    assert took < 20  # includes the old primary's rejoin
    codes = [e.code for e in result.events]
    for code in ("fault", "+sdown", "+odown", "+switch-master", "first-write", "rejoined"):
        assert code in codes, codes
    assert (
        codes.index("fault") < codes.index("+sdown") < codes.index("+odown") < codes.index("+switch-master")
    )
    assert codes.index("+switch-master") <= codes.index("first-write")

    after = _by_id(cache.status())
    assert after[replica.id].role == "primary"
    assert after[primary.id].role == "replica" and after[primary.id].alive
    assert after[primary.id].details["master"] == f"{replica.host}:{replica.port}"
    assert after[primary.id].details["pid"] != primary.details["pid"]
    assert all(
        after[s].details["master"] == f"{replica.host}:{replica.port}"
        for s in ("sentinel-1", "sentinel-2", "sentinel-3")
    )

    moved = _sentinel_client(cache.endpoint())
    moved.set("after-failover", "ok")
    assert moved.get("before-failover") == b"kept"  # replicated before the fault
    assert moved.get(CHECK_KEY)
