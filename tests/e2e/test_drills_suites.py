"""Drill suites (drills/*.yaml): validation with file and line, `inv dr.check`, and
`inv dr.drill --suite` running a suite's scenarios against its target overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT
from support.sandbox import server_pids_under

GOOD = """\
description: a test suite
environments: [sandbox]
scenarios:
  - db-failover
  - db-stall
params:
  stall_s: 2
targets:
  rto: {database: 10}
  rpo: {database: 0}
timeout_s: 120
stable: 3
"""


def inv(state_dir: Path, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), **env},
    )


@pytest.mark.e2e
def test_inv_dr_check_accepts_the_shipped_suites(state_dir):
    done = inv(state_dir, "dr.check", "--json")
    assert done.returncode == 0, done.stderr
    shipped = {s["name"]: s for s in json.loads(done.stdout)["suites"]}
    assert {"default-sandbox", "weekly-staging", "measurement-proofs"} <= set(shipped)
    assert shipped["default-sandbox"]["scenarios"] == [
        "db-failover",
        "cache-failover",
        "pitr-restore",
        "snapshot-restore",
    ]
    assert not list((ROOT / "drills").rglob("*.py")), "drills/ holds suites and their README, no code"


@pytest.mark.e2e
def test_inv_dr_check_exits_2_naming_every_bad_file_and_line(state_dir, tmp_path):
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD)
    (folder / "bad.yaml").write_text("environments: [sandbox]\nscenarios:\n  - db-failover\n  - nope\n")
    done = inv(state_dir, "dr.check", INVOKE_OPS_DRILLS_SUITES_DIR=str(folder))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "drills/bad.yaml:4: scenarios: 'nope': unknown; accepted:" in done.stderr
    assert not (state_dir / "journal").exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "nope"], "--suite nope: no such suite in"),
        (["--suite", "weekly-staging"], "--suite weekly-staging: runs on staging, not on sandbox"),
        (["--suite", "default-sandbox", "--scenario", "db-failover"], "give one of them"),
    ],
)
def test_dr_drill_suite_bad_input_exits_2_with_nothing_done(state_dir, args, message):
    done = inv(state_dir, "dr.drill", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (state_dir / "sandbox").exists() and not (state_dir / "journal").exists()


@pytest.mark.real
@pytest.mark.e2e
def test_a_suite_runs_its_scenarios_against_its_own_targets(state_dir, tmp_path):
    """The suite's RTO target (1 ms: no failover makes it) is the one judged: exit 1, and
    the scorecard and the report carry the suite's target, not the project's 60 s."""
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "tight.yaml").write_text(
        "environments: [sandbox]\nscenarios: [db-failover]\ntargets:\n  rto: {database: 0.001}\nstable: 3\n"
    )
    try:
        done = inv(
            state_dir,
            "dr.drill",
            "--suite",
            "tight",
            "--json",
            timeout=300,
            INVOKE_OPS_DRILLS_SUITES_DIR=str(folder),
        )
        assert done.returncode == 1, done.stdout + done.stderr
        (row,) = json.loads(done.stdout)["scorecard"]
        assert row["scenario"] == "db-failover" and row["outcome"] == "missed"
        assert row["rto_target_s"] == 0.001 and row["rto_s"] > 0.001
    finally:
        inv(state_dir, "sandbox.down", "--purge", "--yes")
        assert not server_pids_under(state_dir)
