"""Time the responder's front door: `inv status --env sandbox` (target < 1.5 s) and
`inv oncall --env staging` against 500 CloudWatch alarms in a moto server (target < 2 s).

Each is run alternately with a raw baseline in the same run, medians reported:
- status: what a responder would type by hand for the same readings, one after another
  (`psql` for role/lag/connections, `redis-cli` for role and memory of the primary);
- oncall: a bare boto3 script paginating `describe_alarms` for ALARM (the SDK call alone).

The sandbox is brought up in a private state folder (or --state-dir of a running one) and
taken down again. Exit 1 when a target is missed.

    python bench/frontdoor_bench.py [--runs 7] [--alarms 500] [--firing 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INV = [sys.executable, "-m", "invoke"]

RAW_BOTO = """
import boto3
cw = boto3.client("cloudwatch", region_name="us-east-1")
n = 0
for page in cw.get_paginator("describe_alarms").paginate(StateValue="ALARM"):
    n += len(page["MetricAlarms"])
print(n)
"""


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    took = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return took


def alternate(
    a: list[str], b: list[str], env: dict[str, str], runs: int, ok: tuple[int, ...]
) -> tuple[list[float], list[float]]:
    timed(a, env), timed(b, env, ok)  # warm the page cache for both
    xs, ys = [], []
    for _ in range(runs):
        xs.append(timed(a, env))
        ys.append(timed(b, env, ok))
    return xs, ys


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


def _passwords(path: str | None) -> dict[str, str]:
    """PGPASSWORD / REDISCLI_AUTH from the sandbox's secrets file, when it has one (0600, ours)."""
    if not path or not Path(path).exists():
        return {}
    data = json.loads(Path(path).read_text())
    out = {}
    if (data.get("postgres") or {}).get("app"):
        out["PGPASSWORD"] = str(data["postgres"]["app"])
    if (data.get("redis") or {}).get("default"):
        out["REDISCLI_AUTH"] = str(data["redis"]["default"])
    return out


def bench_status(runs: int, state_dir: str | None) -> dict[str, object]:
    own = state_dir is None
    folder = state_dir or tempfile.mkdtemp(prefix="frontdoor-bench-")
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": folder}
    try:
        if own:
            subprocess.run(INV + ["sandbox.up"], cwd=ROOT, env=env, check=True, capture_output=True)
        info = json.loads(
            subprocess.run(
                INV + ["sandbox.status", "--json"],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        url = info.get("database_url") or ""
        redis_port = next(n["port"] for n in info.get("cache", []) if n.get("role") == "primary")
        sql = (
            "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_activity), "
            "current_setting('max_connections'), (SELECT json_agg(replay_lag) FROM pg_stat_replication)"
        )
        raw = [
            "sh",
            "-c",
            f"psql '{url}' -Atc \"{sql}\" >/dev/null && "
            f"redis-cli -p {redis_port} info replication >/dev/null && "
            f"redis-cli -p {redis_port} info memory >/dev/null",
        ]
        raw_env = {**env, **_passwords(info.get("password_file"))}
        timed(raw, raw_env)  # the baseline must really read what status reads
        baseline, ours = [], []
        timed(INV + ["status", "--env", "sandbox"], env, ok=(0, 1, 3))
        for _ in range(runs):
            baseline.append(timed(raw, raw_env))
            ours.append(timed(INV + ["status", "--env", "sandbox"], env, ok=(0, 1, 3)))
    finally:
        if own:
            subprocess.run(INV + ["sandbox.down", "--purge", "--yes"], cwd=ROOT, env=env, capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)
    return {
        "raw": summary(baseline),
        "inv_status": summary(ours),
        "target_s": 1.5,
        "ratio": round(statistics.median(ours) / statistics.median(baseline), 2),
        "ok": statistics.median(ours) < 1.5,
    }


def bench_oncall(runs: int, alarms: int, firing: int) -> dict[str, object]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "INVOKE_OPS_STATE_DIR": tempfile.mkdtemp(prefix="frontdoor-oncall-"),
    }
    try:
        cw = boto3.client(
            "cloudwatch",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        resources = [
            "db-unavailable",
            "cache-unavailable",
            "api-5xx-rate",
            "api-latency-p95",
            "backend-cpu-high",
            "db-storage-low",
            "queue-depth",
            "api-unhealthy-hosts",
        ]
        for i in range(alarms):
            name = (
                f"spywatcher-staging-{resources[i % len(resources)]}-{i:03d}"
                if i >= len(resources)
                else f"spywatcher-staging-{resources[i]}"
            )
            cw.put_metric_alarm(
                AlarmName=name,
                MetricName="M",
                Namespace="Bench",
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
            )
            if i < firing:
                cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="bench")
        baseline, ours = alternate(
            [sys.executable, "-c", RAW_BOTO], INV + ["oncall", "--env", "staging"], env, runs, ok=(0, 1)
        )
    finally:
        server.stop()
        shutil.rmtree(env["INVOKE_OPS_STATE_DIR"], ignore_errors=True)
    return {
        "alarms": alarms,
        "firing": firing,
        "raw_boto3": summary(baseline),
        "inv_oncall": summary(ours),
        "target_s": 2.0,
        "ratio": round(statistics.median(ours) / statistics.median(baseline), 2),
        "ok": statistics.median(ours) < 2.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--alarms", type=int, default=500)
    parser.add_argument("--firing", type=int, default=40, help="how many of them are in ALARM")
    parser.add_argument("--state-dir", help="a running sandbox's state folder (default: a fresh one)")
    parser.add_argument("--only", choices=["status", "oncall"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, object] = {"runs": args.runs}
    if args.only in (None, "status"):
        result["status"] = bench_status(args.runs, args.state_dir)
    if args.only in (None, "oncall"):
        result["oncall"] = bench_oncall(args.runs, args.alarms, args.firing)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, data in result.items():
            if isinstance(data, dict):
                print(f"{name}: {json.dumps(data)}")
    return 0 if all(d.get("ok") for d in result.values() if isinstance(d, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
