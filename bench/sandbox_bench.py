"""Sandbox benchmarks: point-in-time restore, failover, sandbox.up from nothing.

Run as: python bench/sandbox_bench.py [--size-mb 1024 --wal-mb 500 --runs 3 --failovers 5 --ups 3]

- PITR: a database of --size-mb plus --wal-mb of archived WAL is restored to a
  time after all of it, by `SandboxDatabase.restore` and by the raw tools (cp of the
  same base backup, the same recovery settings, pg_ctl start, poll until read-write),
  alternately in the same run (docs/measured.md: this machine has two speeds). Target:
  ours <= 1.2x raw.
- failover: a client writes through the multi-host endpoint every 10 ms; kill ->
  first successful write after it. Target: median < 1 s (floor ~0.07 s, docs/measured.md).
- sandbox.up from nothing (PostgreSQL pair + Redis + first base backup). Target < 15 s.
Prints medians [min-max] and ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.sandbox import sandbox_environment  # noqa: E402

from spywatcher_ops.backends.sandbox import lifecycle  # noqa: E402
from spywatcher_ops.backends.sandbox.postgres import server as pg  # noqa: E402
from spywatcher_ops.backends.sandbox.postgres.provision import pick_port  # noqa: E402

VERBOSE = False


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}-{max(values):.3f}]"


# -- PITR --------------------------------------------------------------------------
def load_data(env: Any, size_mb: int, wal_mb: int) -> datetime:
    db = env.database
    state = db.box.load()
    port = state["nodes"][state["instances"][state["main"]]["primary"]]["port"]
    rows = max(1000, size_mb * 1024 * 1024 // 270)
    with db.box.connect(port, dbname="spywatcher") as conn:
        conn.execute("CREATE TABLE big (g bigint PRIMARY KEY, pad text)")
        conn.execute("INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, %s) g", (rows,))
        conn.execute("CHECKPOINT")
    print(f"  loaded {rows} rows ({size_mb} MB); base backup...", flush=True)
    db.create_snapshot(db.plan_snapshot("bench-base", {}, None), wait=True)
    with db.box.connect(port, dbname="spywatcher") as conn:
        start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        step = max(1, rows // 20)
        low = 0
        while True:
            written = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (start,)).fetchone()[0]
            if written >= wal_mb * 1024 * 1024:
                break
            conn.execute("UPDATE big SET pad = repeat('y', 200) WHERE g > %s AND g <= %s", (low, low + step))
            low = (low + step) % rows
    print(f"  wrote {wal_mb} MB of WAL", flush=True)
    return db.restorable_window().latest


def raw_restore(env: Any, backup: Path, archive: Path, target: datetime, work: Path) -> float:
    """The same restore with the PostgreSQL tools only."""
    state = env.database.box.load()
    user = env.database.box.user(state)
    data = Path(state["pg_base"]) / "nodes" / "raw-bench"  # where the server user can enter
    log = Path(state["pg_base"]) / "logs" / "raw-bench.log"
    port = pick_port({n["port"] for n in state["nodes"].values()})
    started = time.monotonic()
    user.run(["cp", "-a", str(backup), str(data)])
    settings = pg.base_settings(port)
    settings.update(
        restore_command=pg.restore_command(archive),
        recovery_target_action="promote",
        recovery_target_timeline="latest",
        recovery_target_time=target.strftime("%Y-%m-%d %H:%M:%S.%f+00"),
    )
    pg.write_conf(user, data, settings)
    pg.set_signal_file(user, data, "recovery.signal", True)
    pid = pg.start(user, data, log, wait=False)
    pg.wait_ready(
        port,
        pid,
        log,
        password=env.database.box.password(),
        read_write=True,
        timeout=3600,
        interval=0.01,
        data=data,
    )
    took = time.monotonic() - started
    pg.stop(user, data, pid)
    shutil.rmtree(data)
    return took


def ours_restore(env: Any, target: datetime, n: int) -> float:
    db = env.database
    started = time.monotonic()
    marks: list[str] = []

    def note(status: str) -> None:
        if not marks or not marks[-1].endswith(status):
            marks.append(f"{time.monotonic() - started:.2f} {status}")

    db.restore(db.plan_restore(f"bench-{n}", to_time=target, snapshot_id=None), progress=note)
    marks.append(f"{time.monotonic() - started:.2f} returned")
    if VERBOSE:
        print("    ours:", "; ".join(marks))
    took = time.monotonic() - started
    db.delete_instance(db.plan_delete_instance(f"bench-{n}"))
    return took


def bench_pitr(args: argparse.Namespace, work: Path) -> None:
    print(
        f"PITR: {args.size_mb} MB database + {args.wal_mb} MB WAL, {args.runs} runs each, alternating",
        flush=True,
    )
    env = sandbox_environment(work / "pitr-state")
    env.database.box.up()
    try:
        target = load_data(env, args.size_mb, args.wal_mb)
        state = env.database.box.load()
        backup = Path(state["pg_base"]) / "backups" / "bench-base" / "data"
        archive = Path(state["pg_base"]) / "archive" / state["instances"][state["main"]]["lineage"]
        raw, ours = [], []
        for i in range(args.runs):
            if i % 2 == 0:
                raw.append(raw_restore(env, backup, archive, target, work))
                ours.append(ours_restore(env, target, i))
            else:
                ours.append(ours_restore(env, target, i))
                raw.append(raw_restore(env, backup, archive, target, work))
            print(f"  run {i + 1}: raw {raw[-1]:.3f} s, ours {ours[-1]:.3f} s", flush=True)
        ratio = statistics.median(ours) / statistics.median(raw)
        print(f"  raw tools: {fmt(raw)}")
        print(f"  sandbox:   {fmt(ours)}")
        print(f"  ratio ours/raw: {ratio:.2f} (target <= 1.2) {'OK' if ratio <= 1.2 else 'MISSED'}")
    finally:
        env.database.box.purge()


# -- failover ------------------------------------------------------------------------
def bench_failover(args: argparse.Namespace, work: Path) -> None:
    import psycopg

    print(f"failover: {args.failovers} runs, client retrying every 10 ms", flush=True)
    env = sandbox_environment(work / "failover-state")
    db = env.database
    db.box.up()
    results, totals = [], []
    try:
        with psycopg.connect(**db.connection().kwargs(), autocommit=True) as conn:
            conn.execute("CREATE TABLE w (at timestamptz)")
        for _ in range(args.failovers):
            info = db.connection()
            acks: list[float] = []
            stop = threading.Event()

            def writer(info: Any = info, acks: list[float] = acks, stop: threading.Event = stop) -> None:
                conn = None
                while not stop.is_set():
                    try:
                        if conn is None:
                            conn = psycopg.connect(**info.kwargs(), connect_timeout=1, autocommit=True)
                        conn.execute("INSERT INTO w VALUES (now())")
                        acks.append(time.time())
                    except psycopg.Error:
                        if conn is not None:
                            conn.close()
                        conn = None
                    time.sleep(0.01)
                if conn is not None:
                    conn.close()

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            time.sleep(0.3)
            started = time.monotonic()
            result = db.failover(db.plan_failover())
            totals.append(time.monotonic() - started)
            deadline = time.monotonic() + 10
            kill = next(e.at for e in result.events if e.code == "fault").timestamp()
            while not [a for a in acks if a > kill] and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.set()
            thread.join(5)
            first = min(a for a in acks if a > kill)
            results.append(first - kill)
            print(
                f"  kill -> first write {results[-1]:.3f} s (failover incl. standby rebuild {totals[-1]:.2f} s)",
                flush=True,
            )
        med = statistics.median(results)
        print(
            f"  kill -> first write: {fmt(results)}; target < 1 s {'OK' if med < 1 else 'MISSED'}; "
            f"ratio to the 0.07 s floor: {med / 0.07:.1f}"
        )
        print(f"  whole db.failover incl. rebuilt standby: {fmt(totals)}")
    finally:
        db.box.purge()


# -- up ------------------------------------------------------------------------------
def bench_up(args: argparse.Namespace, work: Path) -> None:
    print(f"sandbox.up from nothing (PostgreSQL pair + Redis): {args.ups} runs", flush=True)
    times = []
    for i in range(args.ups):
        env = sandbox_environment(work / f"up-{i}")
        started = time.monotonic()
        lifecycle.up(env)
        times.append(time.monotonic() - started)
        lifecycle.down(env, purge=True)
        print(f"  run {i + 1}: {times[-1]:.2f} s", flush=True)
    med = statistics.median(times)
    print(f"  sandbox.up: {fmt(times)}; target < 15 s {'OK' if med < 15 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="database size in MB (default 1024)")
    parser.add_argument("--wal-mb", type=int, default=500, help="WAL to replay in MB (default 500)")
    parser.add_argument("--runs", type=int, default=3, help="restores of each kind (default 3)")
    parser.add_argument("--failovers", type=int, default=5, help="failovers (default 5)")
    parser.add_argument("--ups", type=int, default=3, help="sandbox.up runs (default 3)")
    parser.add_argument("--only", choices=["pitr", "failover", "up"], help="run one benchmark")
    parser.add_argument("--verbose", action="store_true", help="print the phases of each restore")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    work = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    print(f"started {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}, work folder {work}")
    try:
        if args.only in (None, "pitr"):
            bench_pitr(args, work)
        if args.only in (None, "failover"):
            bench_failover(args, work)
        if args.only in (None, "up"):
            bench_up(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
