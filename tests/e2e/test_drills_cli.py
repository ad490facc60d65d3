"""`inv dr.*` through the real CLI: bad input and guards exit 2 before anything
happens, listings work without any environment running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT


def inv(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)},
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args, message",
    [
        (["--scenario", "nope"], "--scenario nope: unknown scenario; known: db-failover, cache-failover"),
        (
            ["--env", "staging", "--scenario", "db-stall"],
            "--scenario db-stall: not supported on aws environments",
        ),
        (["--env", "production"], "drills are not allowed on production (allow_drills: false)"),
        (["--param", "stall_s"], "--param stall_s: not KEY=VALUE"),
        (["--timeout", "-5"], "--timeout -5: use a number of seconds > 0"),
        (["--env", "qa"], "--env qa: unknown environment; known: production, sandbox, staging"),
    ],
)
def test_bad_input_and_guards_exit_2_with_nothing_done(state_dir, args, message):
    done = inv(state_dir, "dr.drill", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (state_dir / "sandbox").exists() and not (state_dir / "journal").exists()


@pytest.mark.e2e
def test_scenarios_lists_what_each_injects_and_its_targets(state_dir):
    done = inv(state_dir, "dr.scenarios", "--json")
    assert done.returncode == 0, done.stderr
    found = {s["name"]: s for s in json.loads(done.stdout)["scenarios"]}
    assert {
        "db-failover",
        "cache-failover",
        "pitr-restore",
        "snapshot-restore",
        "db-stall",
        "db-async-loss",
    } <= set(found)
    assert found["db-failover"]["rto_target_s"] == 60 and found["db-failover"]["rpo_target_s"] == 300
    assert found["cache-failover"]["rto_target_s"] == 300  # no cache target: judged as application
    assert found["db-stall"]["environments"] == ["sandbox"]
    text = inv(state_dir, "dr.scenarios", "--env", "staging").stdout
    assert "db-failover\n  injects:" in text and "db-stall" not in text


@pytest.mark.e2e
def test_history_and_report_without_drills(state_dir):
    done = inv(state_dir, "dr.history")
    assert done.returncode == 0 and "no drills recorded yet" in done.stdout
    done = inv(state_dir, "dr.report", "latest")
    assert done.returncode == 2 and "no drill in the journals" in done.stderr


@pytest.mark.e2e
def test_preflight_failure_exits_3_and_injects_nothing(state_dir):
    done = inv(state_dir, "dr.drill", "--no-up", "--scenario", "db-failover")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "FAILED database writable: the sandbox is not provisioned" in done.stdout
    assert "preflight failed, nothing was injected: db-failover: database writable" in done.stderr
    assert not any(r.get("op") == "dr.drill" for r in _journal(state_dir))


def _journal(state_dir: Path) -> list[dict]:
    path = state_dir / "journal" / "sandbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.e2e
@pytest.mark.parametrize(
    "suite, message",
    [
        (
            ["db-failover", "nope"],
            "environments.sandbox.drill_suite: nope: unknown scenario; known: db-failover",
        ),
        (["node-loss"], "environments.sandbox.drill_suite: node-loss: the sandbox has no cluster"),
    ],
)
def test_a_configured_suite_is_checked_before_anything_runs(state_dir, tmp_path, suite, message):
    config = tmp_path / "suite.yaml"
    config.write_text(yaml.safe_dump({"ops": {"environments": {"sandbox": {"drill_suite": suite}}}}))
    done = inv(state_dir, "-f", str(config), "dr.drill")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (state_dir / "sandbox").exists() and not (state_dir / "journal").exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--scenario", "db-stall", "--param", "stall_s=abc"],
            "--param stall_s=abc: not a number of seconds",
        ),
        (
            ["--scenario", "db-failover", "--param", "bogus=1"],
            "--param bogus=1: no scenario here reads bogus; accepted: none",
        ),
        (
            ["--scenario", "pitr-restore", "--param", "after_mark_s=-1"],
            "--param after_mark_s=-1: use 0 to 60 seconds",
        ),
        (["--report-dir", "/proc/version"], "--report-dir /proc/version: is a file, not a folder"),
    ],
)
def test_bad_params_and_report_dir_are_exit_2_before_anything(state_dir, args, message):
    for task in (["dr.drill"], ["dr.preflight"]):
        if task == ["dr.preflight"] and "--report-dir" in args:
            continue
        done = inv(state_dir, *task, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr
        assert not (state_dir / "sandbox").exists() and not (state_dir / "journal").exists()


@pytest.mark.e2e
def test_history_checks_its_filters(state_dir):
    done = inv(state_dir, "dr.history", "--scenario", "nope")
    assert done.returncode == 2 and "--scenario nope: unknown scenario; known: db-failover" in done.stderr
    done = inv(state_dir, "dr.history", "--env", "qa")
    assert done.returncode == 2 and "--env qa: unknown environment" in done.stderr
