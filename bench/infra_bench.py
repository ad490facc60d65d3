"""`inv infra.plan` against bare `terraform plan` on the same configuration.

A moto server (in this process) holds the S3 state bucket (versioning on) and
the DynamoDB lock table; a configuration of N terraform_data resources is
applied once, then, alternately, `runs` times each:

  bare:  terraform plan -input=false -lock-timeout=0s -out=FILE   (initialised once, like a user's folder)
  bare+: the same plan, then terraform show -json FILE              (what a summary needs)
  ours:  inv infra.plan --env staging                               (init skipped when unchanged, one
                                                                     plan -out -json, summary, journal)
  start: python -c "import invoke"                                  (what any `inv` task pays first)

Prints medians [min-max] and the ratio ours / bare (target <= 1.2) and ours / bare+, and the
floor (bare + start) / bare: the ratio an `inv` task that added nothing but invoke would get.
Exit 1 when ours / bare is above the target.

    python bench/infra_bench.py [--resources 300] [--runs 7] [--target 1.2] [--json]

With --rebuild: the sandbox full-rebuild drill on a database of --mb MB (default
256): the sandbox built by terraform (inv infra.plan + infra.apply), the data
loaded and a base backup taken (inv db.snapshot), then `inv dr.drill --scenario
full-rebuild`, --runs times; prints the drill's wall time, RTO, RPO and each
stage's seconds (medians [min-max]) against the 60 s target. Exit 1 above it.

    python bench/infra_bench.py --rebuild [--mb 256] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUCKET, KEY, LOCK = "bench-tfstate", "staging/terraform.tfstate", "bench-tflock"


def moto() -> tuple[object, str]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1").create_table(
        TableName=LOCK,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return server, url


def configuration(folder: Path, resources: int) -> None:
    body = ['terraform {\n  backend "s3" {}\n}\n\nvariable "size" {\n  default = "small"\n}\n']
    for i in range(resources):
        body.append(f'resource "terraform_data" "r{i}" {{\n  input = "r{i}-${{var.size}}"\n}}\n')
    (folder / "main.tf").write_text("\n".join(body))


def backend(url: str) -> dict[str, object]:
    return {
        "bucket": BUCKET,
        "key": KEY,
        "region": "us-east-1",
        "dynamodb_table": LOCK,
        "endpoints": {"s3": url, "dynamodb": url},
        "use_path_style": True,
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
        "skip_region_validation": True,
    }


CPU: list[float] = []  # CPU seconds (user + sys) of the last timed command and its children


def timed(argv: list[str], *, cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # on a loaded machine wall time swings with the neighbours; CPU time much less
    CPU[:] = [after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime]
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return took


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}-{max(values):.3f}]"


def rebuild(args: argparse.Namespace) -> int:
    """The sandbox full-rebuild drill on a database of args.mb MB, args.runs times."""
    import shutil

    target = 60.0
    work = Path(tempfile.mkdtemp(prefix="infra-rebuild-bench-"))
    conf = work / "ops.yaml"
    conf.write_text(yaml.safe_dump({"ops": {"state_dir": str(work / "state")}}))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    inv = str(Path(sys.executable).parent / "inv")

    def run(*argv: str, timeout: float = 900) -> str:
        done = subprocess.run(
            [inv, "-f", str(conf), *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise SystemExit(f"inv {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-800:]}")
        return done.stdout

    walls: list[float] = []
    rtos: list[float] = []
    rpos: list[float] = []
    stages: dict[str, list[float]] = {}
    try:
        run("infra.plan")
        run("infra.apply", "--yes")
        load = (
            "CREATE TABLE bench_rows (id bigint PRIMARY KEY, pad text);"
            f"INSERT INTO bench_rows SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, {args.mb * 1000}) g;"
        )  # ~1 kB a row with its overhead: MB * 1000 rows
        _sql(conf, load)
        size = _sql(conf, "SELECT pg_database_size(current_database())").strip()
        run("db.snapshot", "--yes")  # a base backup that holds the data, as a nightly one would
        for _ in range(args.runs):
            started = time.perf_counter()
            out = json.loads(run("dr.drill", "--scenario", "full-rebuild", "--yes", "--json"))
            walls.append(time.perf_counter() - started)
            card = out["scorecard"][0]
            if card["outcome"] != "met":
                raise SystemExit(f"the drill did not meet its targets: {card['summary']}")
            rtos.append(card["rto_s"])
            rpos.append(card["rpo_s"] or 0.0)
            report = json.loads(Path(card["report"]).with_suffix(".json").read_text())
            for st in report["details"]["stages"]:
                stages.setdefault(st["stage"], []).append(st["duration_s"] or 0.0)
    finally:
        subprocess.run(
            [inv, "-f", str(conf), "sandbox.down", "--purge", "--yes"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=300,
        )
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "database_mb": args.mb,
        "database_bytes": int(size) if size.isdigit() else size,
        "runs": args.runs,
        "drill_wall_s": round(statistics.median(walls), 2),
        "rto_s": round(statistics.median(rtos), 2),
        "rpo_s": round(statistics.median(rpos), 3),
        "stages_s": {k: round(statistics.median(v), 2) for k, v in stages.items()},
        "target_rto_s": target,
        "ok": statistics.median(rtos) <= target,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"sandbox full-rebuild drill, database {result['database_bytes']} bytes, {args.runs} run(s)")
        print(f"dr.drill wall time: {fmt(walls)}")
        print(f"RTO (destroy -> first acknowledged write): {fmt(rtos)}  target < {target:.0f} s")
        print(f"RPO: {fmt(rpos)}")
        for name, values in stages.items():
            print(f"  stage {name:<15} {fmt(values)}")
    return 0 if result["ok"] else 1


def _sql(conf: Path, sql: str) -> str:
    """One statement on the sandbox's database, with the connection the toolkit itself uses."""
    import psycopg
    from invoke import Config

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    config = Config(project_location=str(ROOT), runtime_path=str(conf))
    config.load_project()
    config.load_runtime()
    environment = build(load(config), "sandbox")
    with psycopg.connect(**environment.database.connection().kwargs(), autocommit=True) as conn:
        cur = conn.execute(sql)
        row = cur.fetchone() if cur.description else None
    return "" if row is None else str(row[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=1.2)
    parser.add_argument("--rebuild", action="store_true", help="time the sandbox full-rebuild drill instead")
    parser.add_argument("--mb", type=int, default=256, help="--rebuild: the database size in MB")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.rebuild:
        return rebuild(args)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server, url = moto()
    try:
        with tempfile.TemporaryDirectory(prefix="infra-bench-") as tmp:
            work = Path(tmp)
            config = work / "infra"
            config.mkdir()
            configuration(config, args.resources)
            env = {
                **os.environ,
                "TF_CLI_CONFIG_FILE": "/dev/null",
                "TF_IN_AUTOMATION": "1",
                "CHECKPOINT_DISABLE": "1",
                "AWS_ENDPOINT_URL": url,
            }
            # a user's Python caches bytecode; without it every `inv` recompiles ~100 modules (0.3 s here)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            bare_env = {**env, "TF_DATA_DIR": str(work / "bare-data")}
            hcl = work / "backend.hcl"
            from spywatcher_ops.backends.terraform import hcl_value

            hcl.write_text("".join(f"{k} = {hcl_value(v)}\n" for k, v in backend(url).items()))
            tf = "terraform"
            timed(
                [tf, "init", "-input=false", "-no-color", f"-backend-config={hcl}"], cwd=config, env=bare_env
            )
            timed([tf, "apply", "-input=false", "-no-color", "-auto-approve"], cwd=config, env=bare_env)
            (config / "big.tfvars").write_text('size = "big"\n')  # every resource changes: a real plan
            conf = work / "ops.yaml"
            conf.write_text(
                yaml.safe_dump(
                    {
                        "ops": {
                            "state_dir": str(work / "state"),
                            "environments": {
                                "staging": {
                                    "terraform": {
                                        "dir": str(config),
                                        "var_files": [str(config / "big.tfvars")],
                                        "backend": backend(url),
                                    }
                                }
                            },
                        }
                    }
                )
            )
            inv = str(Path(sys.executable).parent / "inv")
            ours_cmd = [inv, "-f", str(conf), "infra.plan", "--env", "staging"]
            out = work / "bare.tfplan"
            bare_cmd = [
                tf,
                "plan",
                "-input=false",
                "-no-color",
                "-lock-timeout=0s",
                f"-out={out}",
                "-var-file=big.tfvars",
            ]
            show_cmd = [tf, "show", "-json", str(out)]
            timed(ours_cmd, cwd=ROOT, env=env)  # first run: init of our own data folder, not measured
            timed(bare_cmd, cwd=config, env=bare_env)
            # the floor of any `inv` task: the interpreter and invoke's own import, in this run
            start_cmd = [sys.executable, "-c", "import invoke"]
            bare, bare_show, ours, start = [], [], [], []
            bare_cpu, ours_cpu = [], []
            load_before = os.getloadavg()[0]
            for _ in range(args.runs):
                b = timed(bare_cmd, cwd=config, env=bare_env)
                bare.append(b)
                bare_cpu.append(CPU[0])
                bare_show.append(b + timed(show_cmd, cwd=config, env=bare_env))
                ours.append(timed(ours_cmd, cwd=ROOT, env=env))
                ours_cpu.append(CPU[0])
                start.append(timed(start_cmd, cwd=ROOT, env=env))
            load_after = os.getloadavg()[0]
    finally:
        server.stop()  # type: ignore[attr-defined]
    ratio = statistics.median(ours) / statistics.median(bare)
    ratio_show = statistics.median(ours) / statistics.median(bare_show)
    result = {
        "resources": args.resources,
        "runs": args.runs,
        "bare_plan_s": round(statistics.median(bare), 3),
        "bare_plan_show_s": round(statistics.median(bare_show), 3),
        "inv_infra_plan_s": round(statistics.median(ours), 3),
        "ratio": round(ratio, 2),
        "ratio_vs_plan_and_show": round(ratio_show, 2),
        "import_invoke_s": round(statistics.median(start), 3),
        "floor_ratio": round(
            (statistics.median(bare) + statistics.median(start)) / statistics.median(bare), 2
        ),
        "bare_plan_cpu_s": round(statistics.median(bare_cpu), 3),
        "inv_infra_plan_cpu_s": round(statistics.median(ours_cpu), 3),
        "cpu_ratio": round(statistics.median(ours_cpu) / statistics.median(bare_cpu), 2),
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "target": args.target,
        "ok": ratio <= args.target,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"configuration: {args.resources} terraform_data resources, S3 backend + DynamoDB lock on moto; "
            f"{args.runs} alternating runs"
        )
        print(f"terraform plan -out:              {fmt(bare)}")
        print(f"terraform plan -out + show -json: {fmt(bare_show)}")
        print(f"inv infra.plan:                   {fmt(ours)}")
        print(
            f"python -c 'import invoke':         {fmt(start)}  (floor of any inv task: "
            f"(plan + this) / plan = {result['floor_ratio']})"
        )
        print(
            f"CPU (user+sys): terraform plan {fmt(bare_cpu)}, inv infra.plan {fmt(ours_cpu)}, "
            f"ratio {result['cpu_ratio']}"
        )
        print(
            f"load average (1 min) before / after: {result['load_average_1m'][0]} / "
            f"{result['load_average_1m'][1]} on {result['cpus']} CPUs"
        )
        print(
            f"ratio inv / bare plan: {result['ratio']} (target <= {args.target}) -> "
            f"{'OK' if result['ok'] else 'OVER'}; inv / (plan + show): {result['ratio_vs_plan_and_show']}"
        )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
