"""`inv oncall`: CloudWatch alarms (moto; Stubber for the pages moto does not make) to runbooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from support.oncall import put_alarm

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


def test_read_alarms_from_moto_by_state(ops_config: Any):
    import boto3
    from moto import mock_aws
    from support.aws import aws_env

    from spywatcher_ops.oncall.alarms import read_alarms

    with mock_aws():
        cw = boto3.client("cloudwatch", region_name="us-east-1")
        put_alarm(cw, "spywatcher-staging-db-unavailable", "ALARM")
        put_alarm(cw, "spywatcher-staging-cache-unavailable", "INSUFFICIENT_DATA")
        put_alarm(cw, "spywatcher-staging-api-5xx-rate", "OK")
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
