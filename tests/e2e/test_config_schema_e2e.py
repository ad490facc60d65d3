"""The configuration checked against one schema (core/schema.py) and shown with its sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.paths import ROOT


def inv(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "ops:\n  targets:\n    rto: {databse: 5}\n",
            "ops.targets.rto.databse: unknown key 'databse'; accepted under ops.targets.rto: application, database,",
        ),
        (
            "ops:\n  retension: {days: 3}\n",
            "ops.retension: unknown key 'retension'; accepted under ops: project,",
        ),
        ("ops:\n  retention: {days: seven}\n", "ops.retention.days = 'seven': must be a whole number"),
        (
            "ops:\n  environments:\n    sandbox: {allow_drils: true}\n",
            "ops.environments.sandbox.allow_drils: unknown key 'allow_drils'; accepted under ops.environments.sandbox: kind,",
        ),
        (
            "ops:\n  environments:\n    staging: {production: 'yes'}\n",
            "ops.environments.staging.production = 'yes': must be true or false",
        ),
        (
            "ops:\n  alarms: spywatcher-production-db-unavailable\n",
            "ops.alarms = 'spywatcher-production-db-unavailable': must be a list",
        ),
    ],
)
def test_a_bad_key_or_type_is_exit_2_naming_key_file_and_accepted_keys(tmp_path, text, said):
    bad = tmp_path / "mine.yaml"
    bad.write_text(text)
    state = tmp_path / "state"
    done = inv("-f", str(bad), "db.snapshots", INVOKE_OPS_STATE_DIR=str(state))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: -f {bad}: {said}"), done.stderr
    assert not state.exists()  # stopped before anything was touched


def test_config_show_prints_each_value_with_where_it_came_from(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("ops:\n  retention: {keep_min: 5}\n")
    done = inv("-f", str(mine), "config.show", "--env", "staging", INVOKE_OPS_TARGETS_RTO_DATABASE="30")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert lines["ops.targets.rto.database"].endswith("30.0  (INVOKE_OPS_TARGETS_RTO_DATABASE)")
    assert lines["ops.retention.keep_min"].endswith(f"5  (-f {mine})")
    assert lines["ops.retention.days"].endswith("7  (invoke.yaml)")
    assert lines["ops.drills.scenario_modules"].endswith("[]  (default)")
    assert "ops.environments.staging.region" in lines
    assert not [
        k for k in lines if k.startswith(("ops.environments.sandbox.", "ops.environments.production."))
    ]
    data = json.loads(inv("config.show", "--json").stdout)["config"]
    assert data["ops.targets.rto.database"] == {"value": 60.0, "source": "invoke.yaml"}
    unknown = inv("config.show", "--env", "nope")
    assert unknown.returncode == 2 and "--env nope: unknown environment; known:" in unknown.stderr
