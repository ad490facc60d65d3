"""`inv oncall`: CloudWatch alarms (moto; Stubber for the pages moto does not make) to runbooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import ROOT

from spywatcher_ops.oncall.triage import Alarm, covering, nearest, split_name, triage

ENVS = ["sandbox", "staging", "production", "prod"]


@dataclass
class RB:
    name: str
    triggers: list[str]
    title: str = ""
    severity: str = "high"
    extra: list[str] = field(default_factory=list)


RUNBOOKS = [
    RB(
        "database-unavailable",
        ["spywatcher-production-db-unavailable", "API returns 5xx with database errors"],
    ),
    RB("cache-unavailable", ["spywatcher-production-cache-unavailable"]),
    RB(
        "high-error-rate",
        ["spywatcher-production-api-5xx-rate", "error rate above 5%"],
        title="High error rate",
    ),
    RB("elevated-response-time", ["spywatcher-production-api-latency-p95"], title="Elevated response time"),
]


def test_names_split_on_the_longest_known_environment():
    assert split_name("spywatcher-production-db-unavailable", "spywatcher", ENVS) == (
        "production",
        "db-unavailable",
    )
    assert split_name("spywatcher-prod-db", "spywatcher", ENVS) == ("prod", "db")
    assert split_name("billing-queue-depth", "spywatcher", ENVS) == (None, "billing-queue-depth")


def test_an_alarm_of_any_environment_is_covered_by_the_runbook_naming_its_resource():
    assert covering("spywatcher-production-db-unavailable", RUNBOOKS, "spywatcher", ENVS) == (
        ["database-unavailable"],
        "spywatcher-production-db-unavailable",
    )
    names, trigger = covering("spywatcher-staging-cache-unavailable", RUNBOOKS, "spywatcher", ENVS)
    assert names == ["cache-unavailable"] and trigger == "spywatcher-production-cache-unavailable"
    assert covering("spywatcher-staging-api-latency-p99", RUNBOOKS, "spywatcher", ENVS) == ([], None)


def test_nearest_runbooks_by_trigger_text():
    assert (
        nearest("spywatcher-staging-api-latency-p99", RUNBOOKS, "spywatcher", ENVS)[0]
        == "elevated-response-time"
    )
    assert nearest("spywatcher-staging-api-5xx-count", RUNBOOKS, "spywatcher", ENVS)[0] == "high-error-rate"
    assert (
        nearest("spywatcher-staging-database-down", RUNBOOKS, "spywatcher", ENVS)[0] == "database-unavailable"
    )


def test_triage_keeps_this_environment_orders_states_then_newest_first():
    t = lambda s: datetime(2026, 11, 29, 3, 0, s, tzinfo=UTC)  # noqa: E731
    alarms = [
        Alarm("spywatcher-staging-db-unavailable", "ALARM", t(1), "db down"),
        Alarm("spywatcher-staging-cache-unavailable", "ALARM", t(5), "cache down"),
        Alarm("spywatcher-production-db-unavailable", "ALARM", t(9), "another environment's"),
        Alarm("spywatcher-staging-api-5xx-rate", "INSUFFICIENT_DATA", t(20), "no data"),
        Alarm("team-x-disk", "ALARM", t(3), "not following the pattern"),
    ]
    rows = triage(alarms, RUNBOOKS, env="staging", project="spywatcher", environments=ENVS)
    assert [r.alarm.name for r in rows] == [
        "spywatcher-staging-cache-unavailable",
        "team-x-disk",
        "spywatcher-staging-db-unavailable",
        "spywatcher-staging-api-5xx-rate",
    ]
    assert rows[0].command == "inv runbook.run cache-unavailable --env staging"
    assert not rows[1].covered and rows[1].nearest and rows[1].command is None


# --- CloudWatch through moto ------------------------------------------------------------


def _alarm(cw: Any, name: str, state: str, reason: str = "threshold crossed") -> None:
    cw.put_metric_alarm(
        AlarmName=name,
        MetricName="CPUUtilization",
        Namespace="AWS/RDS",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=80,
        ComparisonOperator="GreaterThanThreshold",
        AlarmDescription=f"{name} (test)",
    )
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
    time.sleep(0.01)  # distinct StateUpdatedTimestamp (milliseconds) for the ordering


def test_read_alarms_from_moto_by_state(ops_config: Any):
    import boto3
    from fixtures_aws import aws_env
    from moto import mock_aws

    from spywatcher_ops.oncall.alarms import read_alarms

    with mock_aws():
        cw = boto3.client("cloudwatch", region_name="us-east-1")
        _alarm(cw, "spywatcher-staging-db-unavailable", "ALARM")
        _alarm(cw, "spywatcher-staging-cache-unavailable", "INSUFFICIENT_DATA")
        _alarm(cw, "spywatcher-staging-api-5xx-rate", "OK")
        env = aws_env(ops_config)
        firing = read_alarms(env, ["ALARM"])
        assert [a.name for a in firing] == ["spywatcher-staging-db-unavailable"]
        assert firing[0].metric == "AWS/RDS CPUUtilization" and firing[0].reason == "threshold crossed"
        assert firing[0].since is not None and firing[0].since.tzinfo is not None
        both = read_alarms(env, ["ALARM", "INSUFFICIENT_DATA"])
        assert {a.state for a in both} == {"ALARM", "INSUFFICIENT_DATA"}


def test_every_page_is_read(ops_config: Any):
    """moto answers in one page; a real account with hundreds of alarms answers in pages of 100."""
    import boto3
    from botocore.stub import Stubber

    from spywatcher_ops.backends.aws.cloudwatch import describe_alarms

    cw = boto3.client("cloudwatch", region_name="us-east-1")
    stub = Stubber(cw)
    base = {"StateValue": "ALARM", "AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100}
    page = lambda names: [{"AlarmName": n, "StateValue": "ALARM"} for n in names]  # noqa: E731
    stub.add_response("describe_alarms", {"MetricAlarms": page(["a1", "a2"]), "NextToken": "t1"}, base)
    stub.add_response(
        "describe_alarms",
        {
            "MetricAlarms": page(["a3"]),
            "CompositeAlarms": [{"AlarmName": "c1", "StateValue": "ALARM", "AlarmRule": "ALARM(a1)"}],
        },
        {**base, "NextToken": "t1"},
    )
    with stub:
        found = describe_alarms(cw, ["ALARM"])
    stub.assert_no_pending_responses()
    assert [a["AlarmName"] for a in found] == ["a1", "a2", "a3", "c1"]
    assert Alarm.from_cloudwatch(found[-1]).metric == "composite"


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
    _alarm(moto_cw, "spywatcher-staging-db-unavailable", "ALARM", "0 connections for 3 datapoints")
    _alarm(moto_cw, "spywatcher-staging-cache-unavailable", "ALARM")
    _alarm(moto_cw, "spywatcher-production-db-unavailable", "ALARM")  # another environment's
    _alarm(moto_cw, "spywatcher-staging-db-data-integrity", "INSUFFICIENT_DATA")
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
    _alarm(moto_cw, "spywatcher-staging-db-unavailable", "ALARM")
    _alarm(moto_cw, "spywatcher-staging-redis-evictions", "ALARM")
    done = _inv(state_dir, "oncall", "--env", "staging", endpoint=moto_server)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NO RUNBOOK covers this alarm; nearest by trigger text: cache-unavailable" in done.stdout
    assert "inv runbook.run database-unavailable --env staging" in done.stdout  # the rest still shows
    assert done.stderr.strip().splitlines()[-1] == (
        "error: 1 alarm(s) without a runbook: spywatcher-staging-redis-evictions; add each name to the "
        "triggers of a runbook (and to ops.alarms if it pages)"
    )


def test_inv_oncall_with_nothing_firing(moto_server: str, moto_cw: Any, state_dir: Any):
    _alarm(moto_cw, "spywatcher-staging-db-unavailable", "OK")
    done = _inv(state_dir, "oncall", "--env", "staging", endpoint=moto_server)
    assert done.returncode == 0, done.stderr
    assert "OK no alarm in ALARM on staging" in done.stdout


def test_inv_oncall_on_the_sandbox_says_there_is_no_cloudwatch(state_dir: Any):
    done = _inv(state_dir, "oncall")
    assert done.returncode == 2
    assert "has no CloudWatch" in done.stderr and "inv status --env sandbox" in done.stderr
    assert done.stdout == ""
