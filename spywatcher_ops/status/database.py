"""The database lines: role, replication lag, storage free, connections used vs max."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..core.thresholds import CONNECTIONS, LAG_BYTES, LAG_S, STORAGE_FREE_PCT
from .model import Line, failed, level, ok, warn

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import Monitoring

PART = "database"


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def connections_line(used: int, maximum: int | None) -> Line:
    if not maximum:
        return ok(PART, f"connections: {used} (maximum not known for this class)")
    pct = 100.0 * used / maximum
    lvl = level(pct, *CONNECTIONS)
    text = f"connections: {used} of {maximum} ({pct:.0f}%)"
    hint = "find idle or leaked sessions (pg_stat_activity); runbook high-cpu-memory"
    return Line(PART, lvl, text, None if lvl == "OK" else hint)


def storage_line(free: float, total: float | None) -> Line:
    if not total:
        return ok(PART, f"storage: {_gib(free)} free")
    pct = 100.0 * free / total
    lvl = level(pct, *STORAGE_FREE_PCT, higher_is_worse=False)
    hint = "runbook low-disk-space: inv runbook.run low-disk-space" if lvl != "OK" else None
    return Line(PART, lvl, f"storage: {_gib(free)} free of {_gib(total)} ({pct:.0f}% free)", hint)


# -- sandbox: ask PostgreSQL itself ------------------------------------------------------
SANDBOX_SQL = """
SELECT pg_is_in_recovery(), current_setting('data_directory'), current_setting('max_connections')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
"""
REPLICATION_SQL = """
SELECT application_name, state, sync_state,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
       COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float
FROM pg_stat_replication
"""


def sandbox(environment: Environment, timeout: float) -> list[Line]:
    # libpq's own timeout is longer than the part's deadline: a server that hangs is reported
    # as not answering within --timeout (unreadable), one that refuses as FAILED
    import psycopg

    db: Any = environment.database
    inst = db.describe()
    if inst.status not in ("available", "degraded"):
        return [
            failed(
                PART,
                f"{inst.id}: {inst.status} (primary at {inst.host}:{inst.port} does not run)",
                "runbook database-unavailable; inv sandbox.up repairs the sandbox",
            )
        ]
    info = db.admin_connection()
    try:
        with psycopg.connect(**info.kwargs(), connect_timeout=int(timeout) + 2, autocommit=True) as conn:
            row = conn.execute(SANDBOX_SQL).fetchone()
            assert row is not None  # a SELECT without FROM returns one row
            in_recovery, data_dir, max_conn, used = row
            replicas = conn.execute(REPLICATION_SQL).fetchall()
    except psycopg.OperationalError as exc:
        return [
            failed(
                PART,
                f"{inst.id} does not answer a query: {' '.join(str(exc).split())[:200]}",
                "runbook database-unavailable",
            )
        ]
    lines = [
        ok(
            PART,
            f"{inst.id}: {'standby (read-only!)' if in_recovery else 'primary'}, PostgreSQL "
            f"{inst.engine_version} at {inst.host}:{inst.port}",
        )
    ]
    if in_recovery:
        lines[0] = failed(PART, lines[0].text, "the serving node is in recovery: writes fail")
    lines += replication_lines(inst.multi_az, [(r[0], r[1], r[2], int(r[3]), float(r[4])) for r in replicas])
    st = os.statvfs(data_dir)
    lines.append(storage_line(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize))
    lines.append(connections_line(int(used), int(max_conn)))
    return lines


def replication_lines(expects_standby: bool, replicas: list[tuple[str, str, str, int, float]]) -> list[Line]:
    if not replicas:
        if expects_standby:
            return [failed(PART, "replication: no standby is streaming", "inv sandbox.up rebuilds it")]
        return [ok(PART, "replication: no standby configured")]
    out = []
    for name, state, sync, lag_b, lag_s in replicas:
        worst = max(level(lag_b, *LAG_BYTES), level(lag_s, *LAG_S), key=("OK", "WARN", "FAILED").index)
        if state != "streaming":
            worst = "WARN"
        text = f"replication: {name} {state} ({sync}), lag {lag_b} B / {lag_s:.3f} s"
        out.append(Line(PART, worst, text, None if worst == "OK" else "a failover now would lose what lags"))
    return out


# -- aws: RDS description + CloudWatch ---------------------------------------------------
def aws(environment: Environment, monitoring: Monitoring) -> list[Line]:
    from ..recovery.classes import max_connections

    inst = environment.database.describe()
    d = inst.details
    now = environment.clock.now()
    where = f"{d.get('availability_zone') or '?'}"
    standby = d.get("secondary_availability_zone")
    role = f"primary in {where}" + (
        f", Multi-AZ standby in {standby}" if inst.multi_az else ", no standby (single-AZ)"
    )
    text = f"{inst.id}: {inst.status}, {role}, {d.get('class')}, PostgreSQL {inst.engine_version}"
    if inst.status == "available":
        lines = [
            ok(PART, text) if inst.multi_az else warn(PART, text, "a zone failure takes the database down")
        ]
    else:
        lines = [failed(PART, text, "runbook database-unavailable; inv db.instances shows every instance")]
    dims = {"DBInstanceIdentifier": inst.id}
    free = monitoring.latest("AWS/RDS", "FreeStorageSpace", dims, now)
    allocated = float(d.get("allocated_gib") or 0) * 2**30 or None
    lines.append(
        storage_line(free, allocated)
        if free is not None
        else warn(PART, "storage: FreeStorageSpace reported nothing in 15 min", "check the RDS console")
    )
    used = monitoring.latest("AWS/RDS", "DatabaseConnections", dims, now, stat="Maximum")
    if used is None:
        lines.append(warn(PART, "connections: DatabaseConnections reported nothing in 15 min"))
    else:
        lines.append(connections_line(int(used), max_connections(str(d.get("class") or ""))))
    lag = monitoring.latest("AWS/RDS", "ReplicaLag", dims, now)
    if lag is not None:
        lvl = level(lag, *LAG_S)
        lines.append(Line(PART, lvl, f"replication: replica lag {lag:.1f} s"))
    return lines
