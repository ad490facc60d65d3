"""Is the sandbox's standby fit to take over now? Asked by the maintenance run's
pre-checks before any step (DataMaintenance.standby_ready).

A frozen (SIGSTOPped) standby keeps its pid, so the process table says it runs,
and the primary's pg_stat_replication goes on saying "streaming" until
wal_sender_timeout (60 s); with no new WAL its lag reads 0. So the standby is
asked itself: it must answer a query within a bound, be in recovery, and replay
a WAL record the primary writes now within `max_lag_s`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ....core.errors import NotReady
from . import server as pg

if TYPE_CHECKING:
    from .provision import PgSandbox

ANSWER_TIMEOUT_S = 2.0  # a standby that takes longer to answer SELECT is not one to switch over to


def _bounded(port: int, password: str | None, sql: str, params: Any = ()) -> tuple[Any, ...] | None:
    """One row, or None when the server does not answer within ANSWER_TIMEOUT_S."""
    import psycopg

    try:
        with pg.connect(port, password=password, timeout=ANSWER_TIMEOUT_S) as conn:
            # the connection can open (the kernel accepts) while the server is stopped
            conn.execute(f"SET statement_timeout = {int(ANSWER_TIMEOUT_S * 1000)}")
            return tuple(conn.execute(sql, params).fetchone() or ())
    except psycopg.Error:
        return None


def _mark_wal(port: int, password: str | None) -> str:
    """Write one WAL record on the primary now and return where it ends. A transactional
    message (no table touched), committed with a local flush: a stuck synchronous standby
    cannot hold it, and the commit is flushed at once (a transaction that only took an xid
    would commit asynchronously, leaving its record unflushed for up to wal_writer_delay)."""
    with pg.connect(port, password=password, timeout=ANSWER_TIMEOUT_S) as conn:
        conn.execute(f"SET statement_timeout = {int(ANSWER_TIMEOUT_S * 1000)}")
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = local")
            row = conn.execute(
                "SELECT pg_logical_emit_message(true, 'spywatcher-ops', 'maintenance pre-check')::text"
            ).fetchone()
        return str(row[0]) if row else "0/0"


def standby_ready(box: PgSandbox, max_lag_s: float) -> str:
    """What was found, when the standby answers and replays within max_lag_s; NotReady otherwise."""
    state = box.load()
    main = state["instances"][state["main"]]
    primary, standby = main["primary"], main.get("standby")
    if not standby:
        raise NotReady("the sandbox database has no standby", hint="run `inv sandbox.up`")
    password = box.password()
    sport, pport = state["nodes"][standby]["port"], state["nodes"][primary]["port"]
    found = _bounded(sport, password, "SELECT pg_is_in_recovery()")
    if not found:
        raise NotReady(
            f"standby {standby} (port {sport}) does not answer a query within {ANSWER_TIMEOUT_S:g} s: "
            "hung or stopped (a switchover onto it would hang)",
            hint="`inv sandbox.status` shows it; once it is down, `inv sandbox.up` rebuilds it",
        )
    if found[0] is not True:
        raise NotReady(
            f"standby {standby} is not in recovery: it is not a standby", hint="run `inv sandbox.up`"
        )
    try:
        target = _mark_wal(pport, password)
    except Exception as exc:  # noqa: BLE001 - psycopg's errors; the primary's health is the database check's
        raise NotReady(f"primary {primary} did not take a WAL record: {type(exc).__name__}: {exc}") from None
    started = time.monotonic()
    replayed: str | None = None
    while True:
        row = _bounded(
            sport,
            password,
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text",
            (target,),
        )
        took = time.monotonic() - started
        if row and row[0]:
            return f"standby {standby} answers and replayed the primary's newest WAL in {took:.2f} s"
        if row:
            replayed = row[1]
        if took >= max_lag_s:
            raise NotReady(
                f"standby {standby} has not replayed the primary's WAL up to {target} within "
                f"{max_lag_s:g} s (replayed up to {replayed or '?'}"
                + ("" if row else "; it stopped answering")
                + "): replication is stalled or lags",
                hint="`inv sandbox.status` shows the replication lag; the plan's prechecks.standby_max_lag_s "
                "is the bound",
            )
        time.sleep(0.02)
