"""`inv infra.redeploy` end to end: the sandbox described by Terraform
(deploy/terraform/sandbox, real terraform, real PostgreSQL and Redis) destroyed
by `terraform destroy` except its backup store and rebuilt stage by stage; a
failed stage; a rebuild killed mid-way and reported by the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]

NOOP_TF = """
terraform {
  backend "local" {}
}
resource "terraform_data" "network" {
  input = "net"
}
"""


class Cli:
    def __init__(self, tmp: Path, **sandbox: object) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.conf = tmp / "ops.yaml"
        self.conf.write_text(
            yaml.safe_dump({"ops": {"state_dir": str(self.state), "environments": {"sandbox": sandbox}}})
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "COLUMNS": "200"}

    def argv(self, *args: str) -> list[str]:
        return ["inv", "-f", str(self.conf), *args]

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def journal(self) -> list[dict]:
        path = self.state / "journal" / "sandbox.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def ok(result, code: int = 0):
    assert result.returncode == code, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


@pytest.fixture
def noop_cli(tmp_path):
    config = tmp_path / "tf"
    config.mkdir()
    (config / "main.tf").write_text(NOOP_TF)
    return Cli(
        tmp_path,
        terraform={
            "dir": str(config),
            "backend": {"type": "local"},
            "redeploy_stages": ["infrastructure", "database", "cache"],
        },
    )


def test_a_failed_stage_stops_and_says_what_is_done_and_not(noop_cli):
    done = ok(noop_cli("infra.redeploy", "--yes"), 1)
    assert "infrastructure │ ok" in done.stdout and "database       │ failed" in done.stdout
    assert "cache          │ not run" in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert "stage database failed" in last and "done: infrastructure; not done: database, cache" in last
    assert "--resume" in last
    stages = [
        (r["stage"], r["status"])
        for r in noop_cli.journal()
        if r.get("op") == "infra.redeploy" and r.get("event") == "step"
    ]
    assert stages == [
        ("infrastructure", "started"),
        ("infrastructure", "ok"),
        ("database", "started"),
        ("database", "failed"),
    ]
    # the next run knows, and --resume skips what finished
    again = ok(noop_cli("infra.redeploy", "--resume", "--dry-run"))
    assert "finished stages: infrastructure" in again.stdout
    assert "infrastructure: finished by the interrupted run, skipped (--resume)" in again.stdout
    assert "redeploy.database(to='latest')" in again.stdout and "redeploy.infrastructure" not in again.stdout


def test_a_killed_rebuild_is_reported_by_the_next_run(noop_cli):
    # no sandbox runs: the cache stage waits for it (the database stage is left out: it fails at once
    # without a sandbox, and the kill would race its end record); the rebuild is killed there
    conf = yaml.safe_load(noop_cli.conf.read_text())
    conf["ops"]["environments"]["sandbox"]["terraform"]["redeploy_stages"] = ["infrastructure", "cache"]
    conf["ops"]["terraform"] = {"stage_timeout_seconds": 60}
    noop_cli.conf.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen(
        noop_cli.argv("infra.redeploy", "--yes"),
        cwd=ROOT,
        env=noop_cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = [r.get("stage") for r in noop_cli.journal() if r.get("status") == "started"]
            if "cache" in started:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the rebuild never reached the cache stage")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    done = ok(noop_cli("infra.redeploy", "--dry-run"))
    assert "was killed; finished stages: infrastructure; it was in stage cache" in done.stdout
    assert "this run starts over" in done.stdout


def test_resume_without_an_earlier_run_and_a_bad_time(noop_cli):
    assert (
        "--resume: no interrupted or failed infra.redeploy"
        in ok(noop_cli("infra.redeploy", "--resume", "--yes"), 2).stderr
    )
    bad = ok(noop_cli("infra.redeploy", "--to", "yesterday", "--yes"), 2)
    assert "--to yesterday: not a valid time" in bad.stderr
    assert not [r for r in noop_cli.journal() if r.get("op") == "infra.redeploy"]


@pytest.fixture
def sandbox_cli(tmp_path):
    cli = Cli(tmp_path)
    yield cli
    subprocess.run(
        cli.argv("sandbox.down", "--purge", "--yes"),
        cwd=ROOT,
        env=cli.env(),
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _rows(cli: Cli, sql: str) -> list[tuple]:
    import psycopg
    from invoke import Config

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    config = Config(project_location=str(ROOT), runtime_path=str(cli.conf))
    config.load_project()
    config.load_runtime()
    env = build(load(config), "sandbox")
    with psycopg.connect(**env.database.connection().kwargs(), autocommit=True, connect_timeout=10) as conn:
        return (
            conn.execute(sql).fetchall()
            if sql.lstrip().lower().startswith("select")
            else (conn.execute(sql) and [])
        )


def test_the_sandbox_is_built_destroyed_and_rebuilt_by_terraform(sandbox_cli):
    cli = sandbox_cli
    # terraform builds the sandbox from nothing: its provisioners are the toolkit's own
    ok(cli("infra.plan"))
    built = ok(cli("infra.apply", "--yes"))
    assert "terraform_data.database_servers: Creation complete" in built.stderr
    ok(cli("sandbox.status"))
    _rows(cli, "CREATE TABLE orders (id int PRIMARY KEY, note text)")
    _rows(cli, "INSERT INTO orders SELECT g, 'o' || g FROM generate_series(1, 500) g")
    # what is not in the WAL archive yet is lost with the servers: db.window commits a heartbeat
    # and waits until it is archived (the rows are then inside the restorable window)
    ok(cli("db.window"))

    # terraform destroy: every server killed, live data deleted, the backup store kept
    planned = ok(cli("infra.plan", "--destroy"))
    assert "terraform_data │ 0   │ 0      │ 0       │ 2" in planned.stdout
    ok(cli("infra.apply", "--yes"))
    status = json.loads(cli("sandbox.status", "--json").stdout)
    assert not any(n["alive"] for n in status["database"]) and not status["cache"]
    pg_base = Path(status["pg_base"])
    assert list((pg_base / "backups").iterdir()) and list((pg_base / "archive").iterdir())

    rebuilt = ok(cli("infra.redeploy", "--yes", "--json"))
    result = json.loads(rebuilt.stdout)
    assert [(s["stage"], s["status"]) for s in result["stages"]] == [
        ("infrastructure", "ok"),
        ("cluster", "skipped"),
        ("database", "ok"),
        ("cache", "ok"),
        ("applications", "skipped"),
    ]
    assert result["met"] is True and result["total_s"] < result["target_s"] == 1800
    assert _rows(cli, "SELECT count(*) FROM orders") == [(500,)]
    ok(cli("sandbox.status"))  # primary, standby, Redis and sentinels all up


def test_the_lock_is_held_across_the_whole_rebuild(tmp_path):
    """Between and inside stages that take no lock of their own (the cache stage only waits), another
    mutating task is refused: the rebuild holds the environment lock from its first stage to its last."""
    config = tmp_path / "tf"
    config.mkdir()
    (config / "main.tf").write_text(NOOP_TF)
    cli = Cli(
        tmp_path,
        terraform={
            "dir": str(config),
            "backend": {"type": "local"},
            "redeploy_stages": ["infrastructure", "cache"],
        },
    )
    conf = yaml.safe_load(cli.conf.read_text())
    conf["ops"]["terraform"] = {"stage_timeout_seconds": 60}
    cli.conf.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen(
        cli.argv("infra.redeploy", "--yes"),
        cwd=ROOT,
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            started = [r.get("stage") for r in cli.journal() if r.get("status") == "started"]
            if "cache" in started:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the rebuild never reached the cache stage")
        # a saved plan that is not stale (the infrastructure stage has applied): only the lock stops it
        ok(cli("infra.plan"))
        refused = ok(cli("infra.apply", "--yes"), 3)
        assert "environment is locked by" in refused.stderr and "running infra.redeploy" in refused.stderr
        assert proc.poll() is None  # still waiting for the cache
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    ops = [(r.get("op"), r.get("event")) for r in cli.journal() if r.get("event") in ("start", "end")]
    assert ("infra.apply", "start") in ops  # the stage's own apply, journalled inside the rebuild
    assert [op for op, ev in ops if ev == "start"].count("infra.apply") == 1  # the refused one never started
