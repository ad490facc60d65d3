"""Failover on the real sandbox pair: no acknowledged write lost when synchronous,
a known loss reported when asynchronous, and the standby rebuilt afterwards."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.real


class Writer(threading.Thread):
    """Writes sequence numbers through the multi-host endpoint; records what was acknowledged."""

    def __init__(self, pair) -> None:
        super().__init__(daemon=True)
        self.info = pair.database.connection()
        self.acked: list[int] = []
        self.ack_times: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        seq, conn = 0, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(**self.info.kwargs(), connect_timeout=2, autocommit=True)
                conn.execute("INSERT INTO writes VALUES (%s)", (seq + 1,))
                seq += 1
                self.acked.append(seq)
                self.ack_times.append(time.time())
            except psycopg.Error:
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
                seq += 1  # a write whose outcome we did not see is not counted as acknowledged
            time.sleep(0.005)
        if conn is not None:
            conn.close()


def _standby_streaming(pair, expect_sync: bool) -> bool:
    reports = {r.name: r for r in pair.box.status()}
    main = pair.state()["instances"][pair.state()["main"]]
    standby = reports[main["standby"]]
    ok = standby.alive and standby.details.get("replication") == "streaming"
    return ok and (standby.details.get("sync_state") == "sync") == expect_sync


def test_synchronous_failover_loses_no_acknowledged_write_and_rebuilds_the_standby(pg_pair):
    db = pg_pair.database
    with pg_pair.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE writes (seq int PRIMARY KEY)")
    before = db.describe()
    writer = Writer(pg_pair)
    writer.start()
    time.sleep(0.3)
    result = db.failover(db.plan_failover())
    time.sleep(0.3)
    writer.stop.set()
    writer.join(10)
    killed = next(e.at for e in result.events if e.code == "fault")
    after_kill = [t for t in writer.ack_times if t > killed.timestamp()]
    assert after_kill, "no write succeeded after the failover"
    assert after_kill[0] - killed.timestamp() < 5
    with pg_pair.connect() as conn:
        present = {r[0] for r in conn.execute("SELECT seq FROM writes").fetchall()}
    assert set(writer.acked) <= present
    assert result.old_primary == before.details["primary"]["node"]
    assert result.new_primary == before.details["standby"]["node"]
    assert {"fault", "promote", "rebuilt"} <= {e.code for e in result.events}
    assert result.lost_commits is not None  # counted from the old primary's WAL (none acknowledged)
    assert "data-loss" not in {e.code for e in result.events} or "none of them was acknowledged" in next(
        e.message for e in result.events if e.code == "data-loss"
    )
    # redundancy is back: the old primary streams, synchronously, from the new one
    assert _standby_streaming(pg_pair, expect_sync=True)
    assert db.describe().status == "available"
    # and the sandbox event log has the same story
    codes = [e.code for e in db.events(result.started)]
    assert codes.index("fault") < codes.index("promote") < codes.index("rebuilt")


def _lose_writes(pair, first: int, count: int) -> list[int]:
    lost = list(range(first, first + count))
    with pair.connect(autocommit=True) as conn:
        for seq in lost:
            conn.execute("INSERT INTO writes VALUES (%s)", (seq,))  # acknowledged: asynchronous
    return lost


def _failover_and_check_loss(pair, kept: list[int], lost: list[int]) -> None:
    db = pair.database
    started = datetime.now(UTC)
    result = db.failover(db.plan_failover())
    with pair.connect() as conn:
        present = [r[0] for r in conn.execute("SELECT seq FROM writes ORDER BY seq").fetchall()]
    assert present == kept  # exactly the N acknowledged writes are gone
    loss = [e for e in result.events if e.code == "data-loss"]
    assert loss, "the loss was not reported"
    assert result.lost_commits is not None and result.lost_commits >= len(lost)
    assert f"{result.lost_commits} transaction(s)" in loss[0].message
    assert "asynchronous" in loss[0].message
    assert any(e.code == "data-loss" for e in db.events(started))
    assert _standby_streaming(pair, expect_sync=False)


def test_asynchronous_failover_reports_the_writes_it_lost(pg_pair_factory):
    import os
    import signal

    pair = pg_pair_factory("asynchronous")
    with pair.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE writes (seq int PRIMARY KEY)")
        conn.execute("INSERT INTO writes SELECT generate_series(1, 10)")
    time.sleep(0.1)
    # docs/measured.md: freeze WAL receipt (SIGSTOP the walreceiver), write N acknowledged rows, fail over
    os.kill(pair.database.processes()["walreceiver"]["pid"], signal.SIGSTOP)
    lost = _lose_writes(pair, 11, 5)
    _failover_and_check_loss(pair, list(range(1, 11)), lost)
    # the same with the toolkit's own way to cut the standby off
    pair.database.pause_replication()
    lost = _lose_writes(pair, 21, 3)
    _failover_and_check_loss(pair, list(range(1, 11)), lost)


def test_a_primary_killed_outside_the_toolkit_is_restarted_by_up(pg_pair):
    import os
    import signal

    procs = pg_pair.database.processes()
    os.kill(procs["primary"]["pid"], signal.SIGKILL)
    from spywatcher_ops.backends.sandbox.net import pid_alive

    deadline = time.monotonic() + 5
    while pid_alive(procs["primary"]["pid"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    down = [
        r.name
        for r in pg_pair.box.status()
        if not r.alive and r.details["instance"] == pg_pair.state()["main"]
    ]
    assert down == [procs["primary"]["node"]]
    assert pg_pair.database.describe().status == "failed"
    actions = {r.name: r.action for r in pg_pair.box.up()}
    assert actions[procs["primary"]["node"]].startswith("started")
    assert pg_pair.database.describe().status == "available"
    with pg_pair.connect(autocommit=True) as conn:
        conn.execute("SELECT 1")
    assert pg_pair.database.processes()["walreceiver"]["pid"]
