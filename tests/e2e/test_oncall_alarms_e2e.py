"""`inv oncall`: CloudWatch alarms (moto; Stubber for the pages moto does not make) to runbooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from support.oncall import put_alarm
from support.paths import ROOT

# --- CloudWatch through moto ------------------------------------------------------------


# --- end to end through `inv` -------------------------------------------------------------


def _inv(state_dir: Any, *args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "200"}
    if endpoint:
        environ["AWS_ENDPOINT_URL"] = endpoint
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def moto_cw(moto_server: str) -> Any:
    import boto3

    urllib.request.urlopen(
        urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10
    ).read()
    return boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_server)


def test_inv_oncall_names_the_runbook_and_the_command(moto_server: str, moto_cw: Any, state_dir: Any):
    put_alarm(moto_cw, "spywatcher-staging-db-unavailable", "ALARM", "0 connections for 3 datapoints")
    put_alarm(moto_cw, "spywatcher-staging-cache-unavailable", "ALARM")
    put_alarm(moto_cw, "spywatcher-production-db-unavailable", "ALARM")  # another environment's
    put_alarm(moto_cw, "spywatcher-staging-db-data-integrity", "INSUFFICIENT_DATA")
    done = _inv(state_dir, "oncall", "--env", "staging", endpoint=moto_server)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "2 alarm(s) in ALARM on staging" in out
    assert out.index("spywatcher-staging-cache-unavailable") < out.index("spywatcher-staging-db-unavailable")
    assert "inv runbook.run database-unavailable --env staging" in out
    assert "inv runbook.run cache-unavailable --env staging" in out
    assert "0 connections for 3 datapoints" in out
    assert "production" not in out and "data-integrity" not in out

    done = _inv(state_dir, "oncall", "--env", "staging", "--all", "--json", endpoint=moto_server)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [a["state"] for a in data["alarms"]] == ["ALARM", "ALARM", "INSUFFICIENT_DATA"]
    assert data["alarms"][2]["runbook"] == "data-corruption"
    assert data["alarms"][0]["command"] == "inv runbook.run cache-unavailable --env staging"


def test_inv_oncall_shows_an_alarm_without_runbook_in_red_and_exits_1(
    moto_server: str, moto_cw: Any, state_dir: Any
):
    put_alarm(moto_cw, "spywatcher-staging-db-unavailable", "ALARM")
    put_alarm(moto_cw, "spywatcher-staging-redis-evictions", "ALARM")
    done = _inv(state_dir, "oncall", "--env", "staging", endpoint=moto_server)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NO RUNBOOK covers this alarm; nearest by trigger text: cache-unavailable" in done.stdout
    assert "inv runbook.run database-unavailable --env staging" in done.stdout  # the rest still shows
    assert done.stderr.strip().splitlines()[-1] == (
        "error: 1 alarm(s) without a runbook: spywatcher-staging-redis-evictions; add each name to the "
        "triggers of a runbook (and to ops.alarms if it pages)"
    )


def test_inv_oncall_with_nothing_firing(moto_server: str, moto_cw: Any, state_dir: Any):
    put_alarm(moto_cw, "spywatcher-staging-db-unavailable", "OK")
    done = _inv(state_dir, "oncall", "--env", "staging", endpoint=moto_server)
    assert done.returncode == 0, done.stderr
    assert "OK no alarm in ALARM on staging" in done.stdout


def test_inv_oncall_on_a_sandbox_not_made_says_so(state_dir: Any):
    # the sandbox's alarms are evaluated from its servers (e2e/test_oncall_sandbox_e2e.py): none yet
    done = _inv(state_dir, "oncall")
    assert done.returncode == 3
    assert "the sandbox is not provisioned" in done.stderr and "inv sandbox.up" in done.stderr
    assert done.stdout == ""
