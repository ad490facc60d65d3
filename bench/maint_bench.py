"""Maintenance job benchmarks (issue 13), on a private sandbox of real processes.

1. `inv maint.plan` on an environment with a 20-step plan and 200 earlier runs
   of history (4000 step records): target under 1 s. Measured alternately with
   `inv maint.window` (the same start-up, config and plan loading, no estimates
   and no pre-checks) as the baseline in the same run; medians.
2. The whole default sandbox plan (maintenance/sunday.yaml: housekeeping on a
   ~256 MB database with dead tuples and a bloated index, the db-engine
   switchover, the Redis rolling restart, the certificate reload) through
   `inv maint.run`: target under 60 s, with the switchover's measured write
   impairment under 1 s. Each run queues a pending-reboot change first, so the
   switchover really happens.

    python bench/maint_bench.py [--runs 3] [--size-mb 256] [--plans 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inv(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if check and done.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def timed(env: dict[str, str], *args: str) -> float:
    t = time.perf_counter()
    inv(env, *args)
    return time.perf_counter() - t


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}-{max(values):.3f}]"


def write_plan_bench_inputs(state: Path, plans: Path, *, distinct: bool = False) -> None:
    """20 steps (each of the 4 step types 5 times); `distinct`: each with its own settings, so
    no two pre-checks are the same question (maint.plan asks a repeated one only once)."""
    steps = ["db-housekeeping", "db-engine", "cache-restart", "tls-renew"] * 5
    setting = {
        "db-housekeeping": "dead_tuples_min",
        "db-engine": "max_write_pause_s",
        "cache-restart": "max_write_pause_s",
        "tls-renew": "renew_within_days",
    }
    items = [
        f"      - {{step: {s}, {setting[s]}: {10 + i}}}" if distinct else f"      - {s}"
        for i, s in enumerate(steps)
    ]
    (plans / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n    window: always\n    steps:\n" + "\n".join(items) + "\n"
    )
    hist = state / "maintenance" / "history.jsonl"
    hist.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(13)
    with hist.open("w") as fh:
        for run in range(200):
            for step in steps:
                fh.write(
                    json.dumps(
                        {
                            "run_id": f"r{run:04d}",
                            "op_id": f"r{run:04d}",
                            "env": "sandbox",
                            "step": step,
                            "at": "2026-11-01T02:00:00.000Z",
                            "duration_s": round(rng.uniform(1, 30), 3),
                            "status": "ok",
                            "impact": {"db-write": round(rng.uniform(0, 0.3), 3)},
                            "lost": {},
                        }
                    )
                    + "\n"
                )


def fill_database(env: dict[str, str], size_mb: int) -> None:
    """A table of about size_mb with a quarter of its rows deleted (dead tuples, a bloated index)."""
    import psycopg

    status = json.loads(inv(env, "sandbox.status", "--json").stdout)
    url = status["database_url"] if "database_url" in status else None
    secrets = json.loads((Path(env["INVOKE_OPS_STATE_DIR"]) / "sandbox" / "secrets.json").read_text())
    port = next(n["port"] for n in status["database"] if n["role"] == "primary")
    rows = size_mb * 1024 * 1024 // 130
    with psycopg.connect(
        host="127.0.0.1",
        port=port,
        dbname="spywatcher",
        user="postgres",
        password=secrets["postgres"]["superuser"],
        autocommit=True,
    ) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_events")
        conn.execute("CREATE TABLE bench_events (id bigint PRIMARY KEY, at timestamptz, pad text)")
        conn.execute(
            "INSERT INTO bench_events SELECT g, now(), repeat('x', 80) FROM generate_series(1, %s) g", (rows,)
        )
        conn.execute("ANALYZE bench_events")
        conn.execute("DELETE FROM bench_events WHERE id % 4 = 0")
        size = conn.execute("SELECT pg_size_pretty(pg_database_size('spywatcher'))").fetchone()[0]
    print(
        f"database filled: {rows} rows, a quarter deleted; database size {size}"
        + (f" ({url})" if url else "")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="whole default plan runs")
    ap.add_argument("--plans", type=int, default=7, help="maint.plan timings (and as many baseline ones)")
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument(
        "--only", choices=("plan", "run"), help="only the plan timing, or only the whole-plan runs"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="maint-bench-") as tmp:
        state, plans = Path(tmp) / "state", Path(tmp) / "plans"
        state.mkdir()
        plans.mkdir()
        env = {
            **os.environ,
            "INVOKE_OPS_STATE_DIR": str(state),
            "INVOKE_OPS_MAINTENANCE_PLANS_DIR": str(plans),
        }
        t = time.perf_counter()
        inv(env, "sandbox.up")
        print(f"sandbox.up: {time.perf_counter() - t:.1f} s")
        try:
            # 1. the plan with 20 steps and 200 runs of history
            write_plan_bench_inputs(state, plans)
            if args.only == "run":
                args.plans = 0
            ours, base, spread = [], [], []
            for _ in range(args.plans):
                write_plan_bench_inputs(state, plans)
                base.append(timed(env, "maint.window"))
                ours.append(timed(env, "maint.plan", "--json"))
                write_plan_bench_inputs(state, plans, distinct=True)
                spread.append(timed(env, "maint.plan", "--json"))
            if ours:
                print(
                    f"inv maint.plan (20 steps, 200 runs = 4000 history lines, every pre-check): {fmt(ours)}; "
                    f"baseline inv maint.window {fmt(base)}; ratio {statistics.median(ours) / statistics.median(base):.2f}"
                    f"; target < 1 s: {'MET' if statistics.median(ours) < 1 else 'MISSED'}"
                )
                print(f"  the same with 20 distinct step settings (20 separate pre-checks): {fmt(spread)}")
            (state / "maintenance" / "history.jsonl").unlink()
            if args.only == "plan":
                return

            # 2. the whole default sandbox plan
            (plans / "sunday.yaml").write_text((ROOT / "maintenance" / "sunday.yaml").read_text())
            fill_database(env, args.size_mb)
            whole, pauses, cache_pauses, lost = [], [], [], []
            for i in range(args.runs):
                inv(env, "maint.pending", "--set", f"max_connections={70 + i}")
                if i:  # dead tuples and bloat again, so housekeeping has work each time
                    fill_database(env, args.size_mb)
                t = time.perf_counter()
                done = inv(env, "maint.run", "--json", check=False)
                elapsed = time.perf_counter() - t
                if done.returncode != 0:
                    raise SystemExit(f"maint.run exited {done.returncode}: {done.stderr[-3000:]}")
                doc = json.loads(done.stdout)
                steps = {s["name"]: s for s in doc["steps"]}
                whole.append(elapsed)
                pauses.append(steps["db-engine"]["impact"]["db-write"]["impaired_s"])
                print(f"  switchover phases: {steps['db-engine']['details'].get('phases_s')}")
                cache_pauses.append(steps["cache-restart"]["impact"]["cache-write"]["impaired_s"])
                lost.append(sum(int(v or 0) for s in doc["steps"] for v in s["lost"].values()))
                print(
                    f"run {i + 1}: {elapsed:.1f} s; "
                    + "; ".join(f"{s['name']} {s['status']} {s['duration_s']:.2f} s" for s in doc["steps"])
                )
            print(
                f"whole default plan through inv maint.run: {fmt(whole)}; target < 60 s: "
                f"{'MET' if statistics.median(whole) < 60 else 'MISSED'}"
            )
            print(
                f"switchover write impairment (db-write probe): {fmt(pauses)}; target < 1 s: "
                f"{'MET' if max(pauses) < 1 else 'MISSED'} (docs/measured.md floor for kill -> first write: 55-68 ms)"
            )
            print(
                f"cache write pause during the rolling restart: {fmt(cache_pauses)}; acknowledged writes lost in "
                f"all runs: {sum(lost)}"
            )
        finally:
            inv(env, "sandbox.down", "--purge", "--yes", check=False)


if __name__ == "__main__":
    main()
