"""Drill benchmarks on a private sandbox (started and purged here):

1. the default sandbox suite through the real CLI (`inv dr.drill`), wall time,
   first on a fresh state folder (includes bringing the sandbox up), then warm;
2. db-failover RTO over several runs, alternated with the raw-tool baseline
   (SIGKILL the primary, `pg_ctl -W promote` the standby, a client retrying
   every 10 ms: docs/measured.md's 55-68 ms floor) so both see the same machine state;
3. the probes' CPU cost: thread CPU time / wall time, in % of one core, while
   idle-streaming (no fault) and during the drills.

    python bench/drill_bench.py [--runs 5] [--json]

Targets: default suite < 90 s; db-failover RTO median < 1 s; probes <= 5 % of a core.
Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def environment(state_dir: Path):
    from invoke import Config

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    config = Config(project_location=str(ROOT))
    config.load_project()
    config.ops.state_dir = str(state_dir)
    return build(load(config), "sandbox")


def cli_suite(state_dir: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "dr.drill"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)},
        timeout=600,
    )
    return time.perf_counter() - start, done.returncode, done.stdout


def ours(env) -> tuple[float | None, float]:
    """One db-failover drill: its measured RTO and the probes' CPU share of one core."""
    from spywatcher_ops.drills.reporting import report
    from spywatcher_ops.drills.runner import run_scenario
    from spywatcher_ops.drills.scenario import DrillOptions
    from spywatcher_ops.drills.scenarios.registry import get

    run = run_scenario(env, get("db-failover", "sandbox"), DrillOptions())
    rep = report.build(run.records)
    cpu = sum(p.get("cpu_s") or 0 for p in rep["probes"])
    span = max((p.get("span_s") or 0 for p in rep["probes"]), default=0) or 1.0
    return rep["rto"]["achieved_s"], 100.0 * cpu / span


def raw_baseline(env) -> float:
    """docs/measured.md's procedure with the bare tools; then the sandbox repairs itself."""
    import psycopg

    from spywatcher_ops.backends.sandbox import lifecycle
    from spywatcher_ops.backends.sandbox.postgres import server as pg

    db = env.database
    procs = db.processes()
    primary, standby = procs["primary"], procs["standby"]
    info = db.connection()
    user = db.box.user(db.box.load())
    killed = time.perf_counter()
    pg.kill_tree(int(primary["pid"]))
    promote = subprocess.Popen(
        ["runuser", "-u", user.run_as, "--", user.tool("pg_ctl"), "-D", standby["data"], "-W", "promote"]
        if user.run_as
        else [user.tool("pg_ctl"), "-D", standby["data"], "-W", "promote"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = None
    while first is None and time.perf_counter() - killed < 30:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=standby["port"],
                dbname=info.dbname,
                user=info.user,
                password=info.password,
                connect_timeout=2,
                autocommit=True,
                target_session_attrs="read-write",
            ) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (at double precision)")
                conn.execute("INSERT INTO bench_raw VALUES (%s)", (time.time(),))
                first = time.perf_counter()
        except psycopg.Error:
            time.sleep(0.01)
    promote.wait(timeout=30)
    # Tell the sandbox what happened (roles), then let it rebuild the old primary as a standby.
    with db.box.statefile.editing() as state:
        main = state["instances"][state["main"]]
        old, new = main["primary"], main["standby"]
        main["primary"], main["standby"] = new, old
        state["nodes"][new]["role"], state["nodes"][old]["role"] = "primary", "standby"
        state["nodes"][old]["pid"] = None
    lifecycle.up(env)
    return (first - killed) if first else float("nan")


def idle_probe_cpu(env, seconds: float = 5.0) -> float:
    """Probes streaming with no fault: CPU % of one core."""
    from spywatcher_ops.drills.probes import (
        Anchor,
        Cadence,
        PgReader,
        PgWriter,
        RedisReader,
        RedisWriter,
        ensure_drill_table,
    )

    info = env.database.connection()
    ensure_drill_table(info)
    anchor, cadence = Anchor.system(), Cadence()
    probes = [
        PgWriter(info, "bench-idle", anchor, cadence),
        PgReader(info, anchor, cadence),
        RedisWriter(env.cache.endpoint(), "bench-idle", anchor, cadence),
        RedisReader(env.cache.endpoint(), anchor, cadence),
    ]
    for p in probes:
        p.start()
    time.sleep(seconds)
    for p in probes:
        p.stop()
        p.cleanup()
    return 100.0 * sum(p.cpu_seconds() for p in probes) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from spywatcher_ops.backends.sandbox import lifecycle

    state_dir = Path(tempfile.mkdtemp(prefix="drill-bench-"))
    env = environment(state_dir)
    out: dict = {}
    try:
        cold, code, stdout = cli_suite(state_dir)
        out["suite_fresh_s"] = round(cold, 2)
        out["suite_fresh_exit"] = code
        warm, code2, _ = cli_suite(state_dir)
        out["suite_warm_s"] = round(warm, 2)
        out["suite_warm_exit"] = code2
        out["scorecard"] = [line for line in stdout.splitlines() if " | " in line]
        rtos, raws, cpus = [], [], []
        for _ in range(args.runs):
            raws.append(raw_baseline(env))
            rto, cpu = ours(env)
            rtos.append(rto if rto is not None else float("nan"))
            cpus.append(cpu)
        out["db_failover_rto_s"] = [round(r, 3) for r in rtos]
        out["db_failover_rto_median_s"] = round(statistics.median(rtos), 3)
        out["raw_kill_to_first_write_s"] = [round(r, 3) for r in raws]
        out["raw_median_s"] = round(statistics.median(raws), 3)
        out["ratio_ours_to_raw"] = round(out["db_failover_rto_median_s"] / out["raw_median_s"], 2)
        out["probe_cpu_pct_during_drill_median"] = round(statistics.median(cpus), 2)
        out["probe_cpu_pct_idle_4_probes"] = round(idle_probe_cpu(env), 2)
    finally:
        lifecycle.down(env, purge=True)
    missed = []
    if out.get("suite_fresh_s", 1e9) >= 90:
        missed.append("default suite >= 90 s")
    if out.get("db_failover_rto_median_s", 1e9) >= 1.0:
        missed.append("db-failover RTO median >= 1 s")
    if (
        max(out.get("probe_cpu_pct_idle_4_probes", 1e9), out.get("probe_cpu_pct_during_drill_median", 1e9))
        > 5.0
    ):
        missed.append("probes > 5 % of a core")
    out["missed"] = missed
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            if k != "scorecard":
                print(f"{k}: {v}")
        print("\n".join(out["scorecard"]))
    return 1 if missed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
