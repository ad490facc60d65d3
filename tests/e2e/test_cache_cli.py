"""`inv cache.status` and `inv cache.failover` end to end: the real CLI, real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

pytestmark = [pytest.mark.real, pytest.mark.e2e]


def inv(state_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_status_then_failover_then_status(redis_sandbox, cache_state_dir: Path) -> None:
    done = inv(cache_state_dir, "cache.status", "--json")
    assert done.returncode == 0, done.stderr
    nodes = {n["id"]: n for n in json.loads(done.stdout)["nodes"]}
    assert sorted(n["role"] for n in nodes.values()) == [
        "primary",
        "replica",
        "sentinel",
        "sentinel",
        "sentinel",
    ]
    assert all(n["alive"] for n in nodes.values())
    primary = next(n for n in nodes.values() if n["role"] == "primary")
    replica = next(n for n in nodes.values() if n["role"] == "replica")
    assert replica["details"]["link"] == "up" and replica["details"]["lag_bytes"] is not None

    table = inv(cache_state_dir, "cache.status")
    assert table.returncode == 0
    assert "sentinel-3" in table.stdout and "primary" in table.stdout and str(primary["port"]) in table.stdout

    dry = inv(cache_state_dir, "cache.failover", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        f"sandbox.kill(node='{primary['id']}', pid={primary['details']['pid']}, signal='SIGKILL'"
        in dry.stdout
    )
    assert "DRY RUN" in dry.stdout
    unconfirmed = inv(cache_state_dir, "cache.failover")
    assert unconfirmed.returncode == 2 and "pass --yes" in unconfirmed.stderr
    after_dry = {n.id: n for n in redis_sandbox.status()}
    assert after_dry[primary["id"]].role == "primary"
    assert after_dry[primary["id"]].details["pid"] == primary["details"]["pid"]  # nothing was killed

    failed_over = inv(cache_state_dir, "cache.failover", "--yes", "--json")
    assert failed_over.returncode == 0, failed_over.stderr
    result = json.loads(failed_over.stdout)
    assert result["old_primary"].startswith(primary["id"]) and result["new_primary"].startswith(replica["id"])
    assert 0 < result["duration_s"] < 10
    codes = [e["code"] for e in result["events"]]
    assert {"fault", "+sdown", "+odown", "+switch-master", "first-write", "rejoined"} <= set(codes)
    assert "sentinels report the master" in failed_over.stderr  # progress on stderr, JSON clean on stdout

    roles = {
        n["id"]: n["role"] for n in json.loads(inv(cache_state_dir, "cache.status", "--json").stdout)["nodes"]
    }
    assert roles[replica["id"]] == "primary" and roles[primary["id"]] == "replica"

    journal = [
        json.loads(line) for line in (cache_state_dir / "journal" / "sandbox.jsonl").read_text().splitlines()
    ]
    ours = [r for r in journal if r.get("op") == "cache.failover"]
    assert (
        [r["event"] for r in ours][0] == "start"
        and ours[-1]["event"] == "end"
        and ours[-1]["outcome"] == "ok"
    )
    assert {r.get("step") for r in ours} >= {"kill", "switch", "first-write", "rejoin"}


def test_bad_input_exits_2_with_one_line(redis_sandbox, cache_state_dir: Path) -> None:
    before = {n.id: n.details.get("pid") for n in redis_sandbox.status()}
    unknown_env = inv(cache_state_dir, "cache.status", "--env", "prod")
    assert unknown_env.returncode == 2
    assert (
        unknown_env.stderr.strip()
        == "error: --env prod: unknown environment; known: production, sandbox, staging"
    )

    unknown_group = inv(cache_state_dir, "cache.failover", "--node-group", "0009", "--yes")
    assert unknown_group.returncode == 2
    assert "--node-group 0009" in unknown_group.stderr and "known: spywatcher" in unknown_group.stderr
    assert len(unknown_group.stderr.strip().splitlines()) == 1
    assert {n.id: n.details.get("pid") for n in redis_sandbox.status()} == before


def test_status_without_a_sandbox_says_how_to_start_it(tmp_path: Path) -> None:
    done = inv(tmp_path, "cache.status")
    assert done.returncode == 3
    assert "not set up" in done.stderr and "inv sandbox.up" in done.stderr
