"""The sandbox's alarm thresholds (backends/sandbox/monitoring.py): pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spywatcher_ops.backends.sandbox import monitoring as m
from spywatcher_ops.core.ports import CacheNode

GIB = 2**30
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def node(name: str, role: str, alive: bool = True, link: str | None = None) -> CacheNode:
    return CacheNode(name, role, "127.0.0.1", 7000, alive, {"link": link} if link else {})


def test_storage_alarms_below_ten_percent_free_with_the_value_and_threshold() -> None:
    assert m.storage(11 * GIB, 100 * GIB)[0] == "OK"
    state, reason = m.storage(9 * GIB, 100 * GIB)
    assert state == "ALARM"
    assert reason == "9.0% free (9.0 of 100.0 GiB); alarm below 10%"
    assert m.storage(0, 0)[0] == "INSUFFICIENT_DATA"


def test_archiver_alarms_on_a_failure_newer_than_the_last_success() -> None:
    assert m.archiver("on", 0, None, T0)[0] == "OK"
    assert m.archiver("on", 3, T0, T0 + timedelta(seconds=1))[0] == "OK"  # it recovered
    state, reason = m.archiver("always", 3, T0 + timedelta(seconds=1), T0)
    assert state == "ALARM" and "3 failure(s)" in reason and (T0 + timedelta(seconds=1)).isoformat() in reason
    assert m.archiver("on", 1, T0, None)[0] == "ALARM"  # never succeeded
    assert m.archiver("off", 0, None, None)[0] == "INSUFFICIENT_DATA"


def test_cache_primary_replicas_and_sentinel_quorum() -> None:
    healthy = [
        node("redis-1", "primary"),
        node("redis-2", "replica", link="up"),
        *(node(f"sentinel-{i}", "sentinel") for i in (1, 2, 3)),
    ]
    assert m.cache_primary(healthy)[0] == "OK"
    assert m.cache_replicas(healthy)[0] == "OK"
    assert m.sentinel_quorum(healthy, 2) == ("OK", "3 of 3 sentinel(s) answer; alarm below the quorum 2")
    down = [node("redis-1", "primary", alive=False), node("redis-2", "replica", link="down")]
    state, reason = m.cache_primary(down)
    assert state == "ALARM" and "redis-1 (primary, down)" in reason
    assert m.cache_replicas(down) == (
        "ALARM",
        "2 of 2 replica(s) not linked: redis-1 down, redis-2 link down; alarm on any",
    )
    lost = [node("sentinel-1", "sentinel"), *(node(f"sentinel-{i}", "sentinel", alive=False) for i in (2, 3))]
    assert m.sentinel_quorum(lost, 2)[0] == "ALARM"
    assert m.cache_replicas([node("redis-1", "primary")])[0] == "INSUFFICIENT_DATA"


def test_cache_memory_alarms_at_95_percent_of_maxmemory() -> None:
    assert m.cache_memory(94 * 2**20, 100 * 2**20)[0] == "OK"
    assert m.cache_memory(95 * 2**20, 100 * 2**20) == (
        "ALARM",
        "95% of maxmemory (95.0 of 100 MiB); alarm at 95%",
    )
    assert m.cache_memory(5 * 2**20, 0)[0] == "INSUFFICIENT_DATA"  # no limit is not OK


def test_an_alarm_is_shaped_for_oncall_with_since_now() -> None:
    from spywatcher_ops.oncall.triage import Alarm

    raw = m.alarm("spywatcher-sandbox-db-unavailable", "db-unavailable", ("ALARM", "no answer"), T0)
    a = Alarm.from_cloudwatch(raw)
    assert (a.name, a.state, a.since, a.reason, a.metric) == (
        "spywatcher-sandbox-db-unavailable",
        "ALARM",
        T0,
        "no answer",
        "Sandbox db-unavailable",
    )


def test_the_alarm_thresholds_are_where_status_fails() -> None:
    from spywatcher_ops.core import thresholds as t

    assert m.STORAGE_ALARM_PCT == t.STORAGE_FREE_PCT[1]
    assert m.CACHE_MEMORY_ALARM_PCT == t.CACHE_MEMORY_PCT[1]
    assert m.REPLAY_ALARM_S == t.LAG_S[0]
