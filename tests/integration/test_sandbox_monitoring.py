"""The sandbox's alarms, evaluated from its real servers (backends/sandbox/monitoring.py).

Real PostgreSQL pair + Redis with sentinels (sandbox_env); the faults go through the
FaultInjector port as the drills' do. The primary is killed last: the module's sandbox
is repaired with `up` afterwards.
"""

from __future__ import annotations

from typing import Any

from spywatcher_ops.backends.sandbox import lifecycle, net
from spywatcher_ops.backends.sandbox.monitoring import EVALUATED
from spywatcher_ops.core.ports import Processes
from spywatcher_ops.oncall.alarms import read_alarms


def _states(env: Any) -> dict[str, tuple[str, str]]:
    raw = env.parts.monitoring().alarms(["OK", "ALARM", "INSUFFICIENT_DATA"])
    return {a["MetricName"]: (a["StateValue"], a["StateReason"]) for a in raw}


def _standby(env: Any) -> Processes:
    pid = int(env.database.describe().details["standby"]["pid"])
    pids = [pid, *net.children(pid)]
    return Processes("standby and its children", tuple((p, net.start_time(p)) for p in pids))


def test_a_healthy_sandbox_has_every_evaluated_alarm_ok(sandbox_env: Any) -> None:
    states = _states(sandbox_env)
    assert list(states) == list(EVALUATED)
    # the sandbox's Redis runs without maxmemory: no limit to measure against is not OK either
    assert states.pop("cache-memory-high")[0] == "INSUFFICIENT_DATA"
    assert {k: v[0] for k, v in states.items()} == dict.fromkeys(states, "OK"), states
    assert "alarm below 10%" in states["db-storage-low"][1]
    names = [a.name for a in read_alarms(sandbox_env, ["OK", "INSUFFICIENT_DATA"])]
    assert "spywatcher-sandbox-db-unavailable" in names
    assert sandbox_env.parts.monitoring().firing(["spywatcher-sandbox-db-unavailable"]) == []


def test_a_frozen_standby_fires_the_replication_alarm(sandbox_env: Any) -> None:
    env = sandbox_env
    standby = _standby(env)
    env.faults.freeze(standby)
    try:
        states = _states(env)
    finally:
        env.faults.thaw(standby)
    state, reason = states["db-replica-lag"]
    assert state == "ALARM", reason
    assert "does not answer a query within 2 s" in reason and "alarm beyond 5 s" in reason
    assert states["db-unavailable"][0] == "OK"  # the primary still answers
    assert _states(env)["db-replica-lag"][0] == "OK"  # thawed: it replays again


def test_a_killed_primary_fires_the_database_unavailable_alarm(sandbox_env: Any) -> None:
    env = sandbox_env
    env.faults.kill(env.faults.primary())
    try:
        states = _states(env)
        firing = env.parts.monitoring().firing(
            ["spywatcher-sandbox-db-unavailable", "spywatcher-production-x"]
        )
    finally:
        lifecycle.up(env)  # the rest of the module's sandbox users get a primary back
    state, reason = states["db-unavailable"]
    assert state == "ALARM", reason
    assert "does not answer SELECT 1 within 2 s" in reason
    # what cannot be measured without a primary is not shown as OK
    assert states["db-replica-lag"][0] == "INSUFFICIENT_DATA"
    assert states["db-wal-archiving"][0] == "INSUFFICIENT_DATA"
    assert states["cache-unavailable"][0] == "OK"
    assert firing == ["spywatcher-sandbox-db-unavailable"]
    assert _states(env)["db-unavailable"][0] == "OK"
