"""The sandbox's Monitoring: alarms evaluated from its real state at the moment of asking.

The sandbox has no CloudWatch and keeps no history, so every alarm is measured now
(a query to each server, the data folder's filesystem) and its since-time is now. The
names follow the platform's CloudWatch alarms (`{project}-sandbox-{resource}`, ops.alarms),
so the runbooks' triggers cover them by their resource part. An alarm the sandbox cannot
measure (the API's, the nodes', CPU over time) is not evaluated and not shown, never as OK.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...core.errors import NotReady, OpsError, Unsupported
from ...core.thresholds import CACHE_MEMORY_PCT, LAG_S, STORAGE_FREE_PCT

if TYPE_CHECKING:
    from ...core.environment import Environment
    from ...core.ports import CacheNode

NAMESPACE = "Sandbox"
ANSWER_TIMEOUT_S = 2.0  # a primary that takes longer to answer SELECT 1 is not answering
# The alarm thresholds: where `inv status` turns a reading FAILED, or its WARN for the replay
# bound (a healthy standby replays a record written now in milliseconds; 5 s keeps the question short).
REPLAY_ALARM_S = LAG_S[0]  # the standby must replay a record written now within this
STORAGE_ALARM_PCT = STORAGE_FREE_PCT[1]  # free space below this % of the data folder's filesystem
CACHE_MEMORY_ALARM_PCT = CACHE_MEMORY_PCT[1]  # % of maxmemory used

# resource part -> what it measures (the order oncall and the README show them in)
EVALUATED = {
    "db-unavailable": "the primary PostgreSQL answers SELECT 1",
    "db-replica-lag": "the standby answers and replays a WAL record the primary writes now",
    "db-wal-archiving": "the primary's WAL archiver has not failed since its last success",
    "db-storage-low": "free space on the filesystem of the sandbox's data folder",
    "cache-unavailable": "a live Redis primary",
    "cache-replica-link": "every Redis replica alive with its link to the primary up",
    "cache-sentinel-quorum": "live sentinels reach the quorum a failover needs",
    "cache-memory-high": "Redis primary's used memory against its maxmemory",
}
OK, ALARM, NO_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
Verdict = tuple[str, str]  # (state, reason with the measured value and the threshold)


# -- threshold logic (pure) ----------------------------------------------------------------
def storage(free: int, total: int) -> Verdict:
    if total <= 0:
        return NO_DATA, "the filesystem reports no size"
    pct = 100.0 * free / total
    state = ALARM if pct < STORAGE_ALARM_PCT else OK
    return (
        state,
        f"{pct:.1f}% free ({free / 2**30:.1f} of {total / 2**30:.1f} GiB); alarm below {STORAGE_ALARM_PCT:g}%",
    )


def archiver(mode: str, failed: int, last_failed: datetime | None, last_archived: datetime | None) -> Verdict:
    if mode == "off":
        return NO_DATA, "archive_mode is off: nothing is archived"
    failing = last_failed is not None and (last_archived is None or last_failed > last_archived)
    if failing:
        return ALARM, (
            f"last archive attempt failed at {last_failed.isoformat() if last_failed else '?'} "
            f"({failed} failure(s) since start), no success since; alarm on any failure newer than the last success"
        )
    done = last_archived.isoformat() if last_archived else "nothing yet"
    return (
        OK,
        f"last archived {done}, {failed} failure(s) since start, none newer; alarm on a failure newer than the last success",
    )


def cache_primary(nodes: list[CacheNode]) -> Verdict:
    live = [n for n in nodes if n.role == "primary" and n.alive]
    if not live:
        down = ", ".join(
            f"{n.id} ({n.role}{'' if n.alive else ', down'})" for n in nodes if n.role != "sentinel"
        )
        return ALARM, f"0 live primaries ({down or 'no data node'}); alarm below 1"
    return OK, f"1 live primary ({live[0].id} at {live[0].host}:{live[0].port}); alarm below 1"


def cache_replicas(nodes: list[CacheNode]) -> Verdict:
    data = [n for n in nodes if n.role != "sentinel" and not (n.role == "primary" and n.alive)]
    if not data:
        return NO_DATA, "no replica configured"
    bad = [
        f"{n.id} " + ("down" if not n.alive else f"link {n.details.get('link')}")
        for n in data
        if not n.alive or n.details.get("link") != "up"
    ]
    if bad:
        return ALARM, f"{len(bad)} of {len(data)} replica(s) not linked: {', '.join(bad)}; alarm on any"
    return OK, f"{len(data)} of {len(data)} replica(s) alive, link up; alarm on any down"


def sentinel_quorum(nodes: list[CacheNode], quorum: int) -> Verdict:
    sentinels = [n for n in nodes if n.role == "sentinel"]
    if not sentinels:
        return NO_DATA, "no sentinel configured"
    alive = sum(1 for n in sentinels if n.alive)
    state = ALARM if alive < quorum else OK
    return state, f"{alive} of {len(sentinels)} sentinel(s) answer; alarm below the quorum {quorum}"


def cache_memory(used: int, maximum: int) -> Verdict:
    if not maximum:
        return NO_DATA, f"{used / 2**20:.1f} MiB used, no maxmemory set: no limit to measure against"
    pct = 100.0 * used / maximum
    state = ALARM if pct >= CACHE_MEMORY_ALARM_PCT else OK
    return state, (
        f"{pct:.0f}% of maxmemory ({used / 2**20:.1f} of {maximum / 2**20:.0f} MiB); "
        f"alarm at {CACHE_MEMORY_ALARM_PCT:g}%"
    )


def alarm(name: str, resource: str, verdict: Verdict, now: datetime) -> dict[str, Any]:
    """One alarm in CloudWatch's shape (what oncall's triage reads)."""
    state, reason = verdict
    return {
        "_type": "metric",
        "AlarmName": name,
        "StateValue": state,
        "StateReason": reason,
        "StateUpdatedTimestamp": now,  # evaluated now: the sandbox keeps no history
        "AlarmDescription": f"sandbox, evaluated now: {EVALUATED[resource]}",
        "Namespace": NAMESPACE,
        "MetricName": resource,
    }


# -- reading the sandbox ---------------------------------------------------------------------
class SandboxMonitoring:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def names(self) -> dict[str, str]:
        env, project = self.environment.env, self.environment.settings.project
        return {r: env.resource(project, r) for r in EVALUATED}

    def evaluate(self) -> list[dict[str, Any]]:
        now = self.environment.clock.now()
        names = self.names()
        verdicts = {**self._database(), **self._cache()}
        return [alarm(names[r], r, verdicts[r], now) for r in EVALUATED]

    def alarms(self, states: list[str]) -> list[dict[str, Any]]:
        return [a for a in self.evaluate() if a["StateValue"] in states]

    def firing(self, names: list[str]) -> list[str]:
        if not set(names) & set(self.names().values()):
            return []  # none of the sandbox's own alarms asked for (e.g. production's): nothing to measure
        return [a["AlarmName"] for a in self.alarms([ALARM]) if a["AlarmName"] in names]

    def latest(
        self, namespace: str, metric: str, dimensions: dict[str, str], now: datetime, **_: Any
    ) -> float | None:
        return None  # no metric history in the sandbox

    def put_metrics(self, namespace: str, data: list[dict[str, Any]]) -> None:
        raise Unsupported("the sandbox keeps no metrics (no CloudWatch to publish to)")

    # -- PostgreSQL --------------------------------------------------------------------------
    def _database(self) -> dict[str, Verdict]:
        from .postgres import server as pg

        db: Any = self.environment.database
        state = db.box.load()
        out: dict[str, Verdict] = {}
        base = state.get("pg_base")
        if base and os.path.isdir(base):
            st = os.statvfs(base)
            out["db-storage-low"] = storage(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)
        else:
            out["db-storage-low"] = NO_DATA, "the sandbox's data folder does not exist"
        inst = db.describe()
        primary = inst.details["primary"]
        password = db.box.password()
        row = _bounded(
            pg,
            int(primary["port"]),
            password,
            "SELECT current_setting('archive_mode'), failed_count, last_failed_time, last_archived_time "
            "FROM pg_stat_archiver",
        )
        where = f"{primary['node']} (port {primary['port']})"
        if row is None:
            out["db-unavailable"] = (
                ALARM,
                (
                    f"primary {where} does not answer SELECT 1 within {ANSWER_TIMEOUT_S:g} s "
                    f"(status {inst.status}); alarm when it does not"
                ),
            )
            out["db-wal-archiving"] = NO_DATA, f"primary {where} does not answer: its archiver cannot be read"
            out["db-replica-lag"] = (
                NO_DATA,
                f"primary {where} does not answer: no WAL to replay can be written",
            )
            return out
        out["db-unavailable"] = (
            OK,
            f"primary {where} answered within {ANSWER_TIMEOUT_S:g} s; alarm when it does not",
        )
        out["db-wal-archiving"] = archiver(str(row[0]), int(row[1] or 0), row[2], row[3])
        if "standby" not in inst.details:
            out["db-replica-lag"] = NO_DATA, "the sandbox database has no standby"
            return out
        try:
            found = self.environment.parts.maintenance().standby_ready(REPLAY_ALARM_S)
            out["db-replica-lag"] = OK, f"{found}; alarm beyond {REPLAY_ALARM_S:g} s"
        except NotReady as exc:
            out["db-replica-lag"] = ALARM, f"{exc.message}; alarm beyond {REPLAY_ALARM_S:g} s"
        return out

    # -- Redis -------------------------------------------------------------------------------
    def _cache(self) -> dict[str, Verdict]:
        try:
            nodes = self.environment.cache.status()
        except OpsError as exc:
            why = f"the cache cannot be read: {exc.message}"
            return {r: (NO_DATA, why) for r in EVALUATED if r.startswith("cache-")}
        from .redis.servers import QUORUM

        out = {
            "cache-unavailable": cache_primary(nodes),
            "cache-replica-link": cache_replicas(nodes),
            "cache-sentinel-quorum": sentinel_quorum(nodes, QUORUM),
        }
        primary = next((n for n in nodes if n.role == "primary" and n.alive), None)
        if primary is None:
            out["cache-memory-high"] = NO_DATA, "no live primary to read memory from"
        else:
            out["cache-memory-high"] = self._memory(primary)
        return out

    def _memory(self, primary: CacheNode) -> Verdict:
        import redis

        client = redis.Redis(
            host=primary.host,
            port=primary.port,
            password=self.environment.cache.endpoint().password,
            socket_timeout=ANSWER_TIMEOUT_S,
            socket_connect_timeout=ANSWER_TIMEOUT_S,
        )
        try:
            info = client.info("memory")
        except redis.RedisError as exc:
            return NO_DATA, f"{primary.id} did not answer INFO memory: {exc}"
        finally:
            client.close()
        return cache_memory(int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)))


def _bounded(pg: Any, port: int, password: str | None, sql: str) -> tuple[Any, ...] | None:
    """One row, or None when the server does not answer within ANSWER_TIMEOUT_S (a stopped
    server's kernel still accepts the connection)."""
    import psycopg

    try:
        with pg.connect(port, password=password, timeout=ANSWER_TIMEOUT_S) as conn:
            conn.execute(f"SET statement_timeout = {int(ANSWER_TIMEOUT_S * 1000)}")
            return tuple(conn.execute(sql).fetchone() or ())
    except psycopg.Error:
        return None
