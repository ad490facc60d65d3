"""Probes: small threads that use the service the way a client does, and
record every attempt (start, end, ok) and every write (seq, timestamp, ack).

- Writers write a monotonically increasing sequence number and the client's
  timestamp every `interval` s (100 ms): PostgreSQL rows in the drill table,
  Redis hash fields.
- Readers check health (SELECT 1, PING) at the same fixed interval.
- After a failed attempt they retry every `retry_interval` s (10 ms) with
  their own loop: no library backoff, so what is measured is the service.
  psycopg connects through the multi-host ConnectionInfo
  (target_session_attrs=read-write) with a short connect_timeout; redis-py
  has its retries disabled and discovers the master through the sentinels.

psycopg and redis are imported inside functions: `inv --list` must not pay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.clock import Clock
from ..core.ports import CacheEndpoint, ConnectionInfo
from .measure import Attempt, Write

DRILL_TABLE = "spywatcher_ops_drill_writes"
CACHE_KEY_PREFIX = "spywatcher-ops:drill:"


@dataclass(frozen=True)
class Anchor:
    """Maps the monotonic clock onto wall time once, so all probe times are
    epoch seconds that never jump (NTP steps do not bend the measurement)."""

    wall0: float
    mono0: float

    @classmethod
    def from_clock(cls, clock: Clock) -> Anchor:
        # The clock gives the wall time; durations always come from the real
        # monotonic clock (probe threads cannot share an injected one).
        return cls(clock.now().timestamp(), time.monotonic())

    @classmethod
    def system(cls) -> Anchor:
        return cls(time.time(), time.monotonic())

    def now(self) -> float:
        return self.wall0 + (time.monotonic() - self.mono0)


@dataclass(frozen=True)
class Cadence:
    interval: float = 0.1  # between attempts while healthy
    retry_interval: float = 0.01  # between attempts after a failure
    connect_timeout: int = 2  # libpq's floor is 2 s
    op_timeout: float = 2.0  # redis socket timeout; PostgreSQL tcp_user_timeout


class Probe(Protocol):
    """What the drill runner needs from a probe (scenarios may bring their own)."""

    name: str  # "db-write", "db-read", "cache-write", "cache-read", ...
    part: str  # "database" | "cache" | ...
    kind: str  # "write" | "read"

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def attempts(self) -> list[Attempt]: ...
    def writes(self) -> list[Write]: ...
    def surviving(self, deadline_s: float) -> set[int] | None: ...
    def cpu_seconds(self) -> float: ...
    def cleanup(self) -> bool: ...  # False: what it should remove is left for the next cleanup


class ProbeThread:
    """The loop shared by all built-in probes. Subclasses implement `once()`
    (one attempt; raise on failure) and `reset()` (drop the connection)."""

    name = "probe"
    part = "none"
    kind = "read"

    def __init__(self, anchor: Anchor, cadence: Cadence) -> None:
        self.anchor = anchor
        self.cadence = cadence
        self._attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu = 0.0
        self.last_error: str | None = None

    # the loop ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"probe-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cadence.op_timeout + self.cadence.connect_timeout + 1)
        self.reset()

    def _run(self) -> None:
        cpu0 = time.thread_time()
        try:
            while not self._stop.is_set():
                started_mono = time.monotonic()
                start = self.anchor.now()
                ok, error = True, None
                try:
                    self.once()
                except Exception as exc:  # noqa: BLE001 - every failure is data for the probe
                    ok, error = (
                        False,
                        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                    )
                    self.reset()
                end = self.anchor.now()
                with self._lock:
                    self._attempts.append(Attempt(start, end, ok, error))
                if error:
                    self.last_error = error
                delay = self.cadence.interval if ok else self.cadence.retry_interval
                wait = started_mono + delay - time.monotonic() if ok else delay
                if wait > 0:
                    self._stop.wait(wait)
        finally:
            self._cpu = time.thread_time() - cpu0

    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def cpu_seconds(self) -> float:
        return self._cpu

    # defaults for readers --------------------------------------------------
    def writes(self) -> list[Write]:
        return []

    def surviving(self, deadline_s: float) -> set[int] | None:
        return None

    def cleanup(self) -> bool:
        return True

    # subclass hooks --------------------------------------------------------
    def once(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        return None


class WriteLedger:
    """Which writes were sent and which were acknowledged (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, list[Any]] = {}
        self.seq = 0

    def begin(self, ts: float) -> int:
        with self._lock:
            self.seq += 1
            self._rows[self.seq] = [ts, None]
            return self.seq

    def ack(self, seq: int, at: float) -> None:
        with self._lock:
            self._rows[seq][1] = at

    def writes(self) -> list[Write]:
        with self._lock:
            return [Write(seq, ts, acked) for seq, (ts, acked) in self._rows.items()]


# PostgreSQL ------------------------------------------------------------------


def pg_connect(info: ConnectionInfo, cadence: Cadence) -> Any:
    import psycopg

    kwargs = info.kwargs()
    return psycopg.connect(
        **kwargs,
        connect_timeout=cadence.connect_timeout,
        autocommit=True,
        application_name="spywatcher-ops-drill",
        # A dead peer that stops ACKing (an AWS failover) ends the call after
        # op_timeout instead of the kernel's 15 minutes. A stopped server still
        # ACKs, so a SIGSTOP outage is measured as what it is: a hang.
        tcp_user_timeout=int(cadence.op_timeout * 1000),
        keepalives=1,
        keepalives_idle=1,
        keepalives_interval=1,
        keepalives_count=2,
    )


def ensure_drill_table(info: ConnectionInfo, cadence: Cadence = Cadence()) -> None:
    """Create the drill table (ours: the toolkit created it) if it is missing."""
    with pg_connect(info, cadence) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {DRILL_TABLE} ("
            "run_id text NOT NULL, seq bigint NOT NULL, client_ts double precision NOT NULL, "
            "written_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, seq))"
        )


def read_surviving(info: ConnectionInfo, run_id: str, cadence: Cadence, deadline_s: float) -> set[int] | None:
    """The sequence numbers of `run_id` that exist now; retried until the deadline."""
    import psycopg

    end = time.monotonic() + deadline_s
    while True:
        try:
            with pg_connect(info, cadence) as conn:
                rows = conn.execute(f"SELECT seq FROM {DRILL_TABLE} WHERE run_id = %s", (run_id,)).fetchall()
                return {int(r[0]) for r in rows}
        except psycopg.errors.UndefinedTable:
            return set()  # a copy from before the drill table existed holds none of our writes
        except Exception:  # noqa: BLE001 - retried until the deadline, then reported as unknown
            if time.monotonic() >= end:
                return None
            time.sleep(0.05)


class PgProbe(ProbeThread):
    part = "database"

    def __init__(self, info: ConnectionInfo, anchor: Anchor, cadence: Cadence) -> None:
        super().__init__(anchor, cadence)
        self.info = info
        self._conn: Any = None

    def conn(self) -> Any:
        if self._conn is None:
            self._conn = pg_connect(self.info, self.cadence)
        return self._conn

    def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone either way
                pass


class PgWriter(PgProbe):
    """INSERT (run_id, seq, client_ts) every interval; an ack is a returned COMMIT."""

    name = "db-write"
    kind = "write"

    def __init__(self, info: ConnectionInfo, run_id: str, anchor: Anchor, cadence: Cadence) -> None:
        super().__init__(info, anchor, cadence)
        self.run_id = run_id
        self.ledger = WriteLedger()

    def once(self) -> None:
        conn = self.conn()
        ts = self.anchor.now()
        seq = self.ledger.begin(ts)
        conn.execute(
            f"INSERT INTO {DRILL_TABLE} (run_id, seq, client_ts) VALUES (%s, %s, %s)", (self.run_id, seq, ts)
        )
        self.ledger.ack(seq, self.anchor.now())

    def writes(self) -> list[Write]:
        return self.ledger.writes()

    def surviving(self, deadline_s: float) -> set[int] | None:
        return read_surviving(self.info, self.run_id, self.cadence, deadline_s)

    undoes = "drill-rows"  # the undo kind this probe's cleanup settles

    def cleanup(self) -> bool:
        """Remove this run's rows (the table stays: later drills use it). False: left for the next cleanup."""
        try:
            with pg_connect(self.info, self.cadence) as conn:
                conn.execute(f"DELETE FROM {DRILL_TABLE} WHERE run_id = %s", (self.run_id,))
            return True
        except Exception:  # noqa: BLE001 - the undo entry stays pending; the next run removes them
            return False


class PgReader(PgProbe):
    name = "db-read"
    kind = "read"

    def once(self) -> None:
        self.conn().execute("SELECT 1").fetchone()


# Redis -----------------------------------------------------------------------


class RedisTarget:
    """Finds the current master: sentinels when the endpoint has them
    (SENTINEL get-master-addr-by-name, one short attempt each), else the
    provider's primary endpoint (ElastiCache repoints its DNS name)."""

    def __init__(self, endpoint: CacheEndpoint, cadence: Cadence) -> None:
        self.endpoint = endpoint
        self.cadence = cadence

    def _client(self, host: str, port: int) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host=host,
            port=port,
            password=self.endpoint.password,
            ssl=self.endpoint.tls,
            socket_timeout=self.cadence.op_timeout,
            socket_connect_timeout=min(self.cadence.op_timeout, 1.0),
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def master(self) -> tuple[str, int]:
        if not self.endpoint.sentinels:
            return self.endpoint.primary_host, self.endpoint.primary_port
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        problems = []
        for host, port in self.endpoint.sentinels:
            sentinel = redis.Redis(
                host=host,
                port=port,
                password=self.endpoint.sentinel_password,
                socket_timeout=0.3,
                socket_connect_timeout=0.3,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
            try:
                addr = sentinel.execute_command(
                    "SENTINEL", "get-master-addr-by-name", self.endpoint.master_name
                )
                if addr:
                    return str(addr[0]), int(addr[1])
            except Exception as exc:  # noqa: BLE001 - ask the next sentinel
                problems.append(f"{host}:{port} {type(exc).__name__}")
            finally:
                sentinel.close()
        raise ConnectionError("no sentinel answered: " + ", ".join(problems))

    def connect(self) -> Any:
        host, port = self.master()
        return self._client(host, port)


class RedisProbe(ProbeThread):
    part = "cache"

    def __init__(self, endpoint: CacheEndpoint, anchor: Anchor, cadence: Cadence) -> None:
        super().__init__(anchor, cadence)
        self.target = RedisTarget(endpoint, cadence)
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self.target.connect()
        return self._client

    def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - it is being dropped anyway
                pass


class RedisWriter(RedisProbe):
    """HSET spywatcher-ops:drill:<run> <seq> <ts> every interval; an ack is the reply."""

    name = "cache-write"
    kind = "write"

    def __init__(self, endpoint: CacheEndpoint, run_id: str, anchor: Anchor, cadence: Cadence) -> None:
        super().__init__(endpoint, anchor, cadence)
        self.key = CACHE_KEY_PREFIX + run_id
        self.ledger = WriteLedger()

    def once(self) -> None:
        client = self.client()
        ts = self.anchor.now()
        seq = self.ledger.begin(ts)
        client.hset(self.key, str(seq), repr(ts))
        self.ledger.ack(seq, self.anchor.now())

    def writes(self) -> list[Write]:
        return self.ledger.writes()

    def surviving(self, deadline_s: float) -> set[int] | None:
        end = time.monotonic() + deadline_s
        while True:
            try:
                client = self.target.connect()
                try:
                    return {int(k) for k in client.hkeys(self.key)}
                finally:
                    client.close()
            except Exception:  # noqa: BLE001 - retried until the deadline, then unknown
                if time.monotonic() >= end:
                    return None
                time.sleep(0.05)

    undoes = "cache-key"

    def cleanup(self) -> bool:
        try:
            client = self.target.connect()
            try:
                client.delete(self.key)
            finally:
                client.close()
            return True
        except Exception:  # noqa: BLE001 - the undo entry stays pending; the next run removes the key
            return False


class RedisReader(RedisProbe):
    name = "cache-read"
    kind = "read"

    def once(self) -> None:
        self.client().ping()


ProbeFactory = Callable[[], Probe]
