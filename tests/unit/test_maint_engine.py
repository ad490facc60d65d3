"""The run's guards, the time budget, the notice and the pre-checks, without real
processes: a frozen clock, moto for SNS and CloudWatch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.aws import aws_env
from support.clock import FakeClock

from spywatcher_ops.core.errors import BadInput, Refused
from spywatcher_ops.core.journal import read
from spywatcher_ops.drills.measure import Attempt
from spywatcher_ops.maintenance import history, notice, prechecks, runlog
from spywatcher_ops.maintenance.budget import fits, schedule
from spywatcher_ops.maintenance.context import setup
from spywatcher_ops.maintenance.impact import impairment, sentence
from spywatcher_ops.maintenance.planning import make_notice
from spywatcher_ops.maintenance.plans import PlannedStep
from spywatcher_ops.maintenance.run import RunOptions, check_guards
from spywatcher_ops.maintenance.window import current_or_next, spec_from

WINDOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # a Sunday


def _env(ops_config: Any, at: datetime) -> Any:
    return aws_env(ops_config, FakeClock(at))


@pytest.fixture
def sns_topic(staging_aws: Any, ops_config: Any) -> dict[str, str]:
    import boto3

    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    arn = sns.create_topic(Name="spywatcher-maintenance")["TopicArn"]
    queue = sqs.create_queue(QueueName="notices")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
    ops_config.ops.aws.sns_topic_arn = arn
    return {"topic": arn, "queue": queue}


def _publish_at(ops_config: Any, at: datetime) -> dict[str, Any]:
    env = _env(ops_config, at)
    return notice.publish(env, make_notice(env, setup(env, None), "2026-12-06"))


def _guards(ops_config: Any, at: datetime, **opts: Any) -> list[str]:
    env = _env(ops_config, at)
    s = setup(env, None)
    return check_guards(env, s, current_or_next(s.spec, at), RunOptions(**opts), read(env.journal.path))


def test_refused_outside_the_window_naming_the_next_one(ops_config: Any, sns_topic: Any) -> None:
    with pytest.raises(
        Refused,
        match=r"outside the maintenance window of staging .* the next one is "
        r"2026-12-06T02:00:00.000Z \.\. 2026-12-06T04:00:00.000Z UTC",
    ):
        _guards(ops_config, datetime(2026, 12, 5, 23, 59, tzinfo=UTC))  # Saturday 23:59


def test_refused_without_a_notice_and_with_one_published_late(ops_config: Any, sns_topic: Any) -> None:
    with pytest.raises(Refused, match="no notice was published for the window starting 2026-12-06T02:00"):
        _guards(ops_config, WINDOW)
    _publish_at(ops_config, WINDOW - timedelta(days=6, hours=23))  # an hour late
    with pytest.raises(Refused, match=r"went out at 2026-11-29T03:00:00.000Z, less than 7 days before it"):
        _guards(ops_config, WINDOW + timedelta(minutes=5))


def test_a_notice_published_in_time_lets_the_run_start(ops_config: Any, sns_topic: Any) -> None:
    import boto3

    out = _publish_at(ops_config, WINDOW - timedelta(days=7, minutes=1))
    assert out["message_id"] and out["topic"] == sns_topic["topic"]
    assert _guards(ops_config, WINDOW) == []
    assert _guards(ops_config, WINDOW + timedelta(seconds=7199)) == []
    # the message really went to the topic, as plain text with every step
    msgs = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=sns_topic["queue"])[
        "Messages"
    ]
    body = json.loads(msgs[0]["Body"])
    assert body["Subject"].startswith("Maintenance on staging: 2026-12-06T02:00")
    assert "1. db-housekeeping" in body["Message"] and "expected client impact" in body["Message"]
    env = _env(ops_config, WINDOW)
    assert (
        runlog.notice_published(read(env.journal.path), "staging", "2026-12-06T02:00:00.000Z")
        == "2026-11-29T01:59:00.000Z"
    )


def test_emergency_needs_a_reason_and_overrides_both_guards(ops_config: Any, sns_topic: Any) -> None:
    at = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
    with pytest.raises(BadInput, match="--emergency needs --reason"):
        _guards(ops_config, at, emergency=True)
    with pytest.raises(BadInput, match="--reason goes with --emergency"):
        _guards(ops_config, at, reason="just because")
    overridden = _guards(ops_config, at, emergency=True, reason="CVE-2026-1234")
    assert len(overridden) == 2 and overridden[0].startswith("outside the maintenance window")


def test_notice_without_a_topic_is_bad_input(ops_config: Any, staging_aws: Any) -> None:
    env = _env(ops_config, WINDOW - timedelta(days=8))
    with pytest.raises(BadInput, match="no SNS topic to publish to; set ops.aws.sns_topic_arn"):
        notice.publish(env, make_notice(env, setup(env, None), None))
    assert not [r for r in read(env.journal.path) if r.get("op") == "maint.notice"]  # nothing journalled


def test_paging_alarm_in_alarm_fails_the_precheck(ops_config: Any, staging_aws: Any) -> None:
    import boto3

    cw = boto3.client("cloudwatch", region_name="us-east-1")
    name = "spywatcher-production-db-unavailable"
    cw.put_metric_alarm(
        AlarmName=name,
        MetricName="DatabaseConnections",
        Namespace="AWS/RDS",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="LessThanThreshold",
    )
    env = _env(ops_config, WINDOW)
    first = prechecks.alarms(env)
    assert first.status == "ok", first
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    check = prechecks.alarms(env)
    assert check.status == "failed" and name in check.detail


def _steps(*names: str) -> list[PlannedStep]:
    return [PlannedStep(n, {}, 1, i) for i, n in enumerate(names, 1)]


def test_budget_p95_from_history_and_steps_that_do_not_fit() -> None:
    runs = [{"env": "production", "step": "db-engine", "status": "ok", "duration_s": d} for d in range(1, 21)]
    runs += [{"env": "production", "step": "db-engine", "status": "failed", "duration_s": 9999}]
    runs += [{"env": "staging", "step": "db-engine", "status": "ok", "duration_s": 9999}]
    est = history.estimates(runs, "production", ["db-engine", "db-housekeeping"])
    assert (
        est["db-engine"].expected_s == pytest.approx(19.05) and est["db-engine"].basis == "p95 of 20 run(s)"
    )
    assert est["db-housekeeping"].expected_s == 60.0 and est["db-housekeeping"].basis == "default"
    win = current_or_next(spec_from({}), WINDOW)
    # 50 s before the cutoff: the 19 s step fits, the 60 s one after it does not, nor anything after that
    at = win.cutoff - timedelta(seconds=50)
    slots = schedule(_steps("db-engine", "db-housekeeping", "db-engine"), est, win, at)
    assert [s.fits for s in slots] == [True, False, False]
    assert slots[0].ends == at + timedelta(seconds=19.05)
    assert fits(19.0, win, win.cutoff - timedelta(seconds=19)) and not fits(
        19.0, win, win.cutoff - timedelta(seconds=18)
    )
    assert not fits(0.0, win, win.cutoff)  # the cutoff second: nothing starts


def test_impairment_is_the_longest_gap_without_a_success() -> None:
    ok = [Attempt(t, t + 0.002, True) for t in (0.0, 0.1, 0.2, 0.3)]
    bad = [Attempt(0.31 + i * 0.01, 0.311 + i * 0.01, False) for i in range(10)]
    back = [Attempt(t, t + 0.002, True) for t in (0.42, 0.52, 0.62)]
    got = impairment(ok + bad + back, 0.25, 0.6, 0.1)
    # from the first failure (0.31) to the end of the next success (0.422)
    assert got["impaired_s"] == pytest.approx(0.112, abs=0.001) and got["failed"] == 10
    assert impairment(ok, 0.0, 0.3, 0.1)["impaired_s"] == pytest.approx(0.002, abs=0.001)
    hung = impairment(ok + [Attempt(0.4, 0.9, True)], 0.35, 0.95, 0.1)  # a call that hung, then answered
    assert hung["impaired_s"] == pytest.approx(0.5) and hung["failed"] == 0
    down = impairment(ok + bad, 0.25, 0.5, 0.1)  # not recovered by the end of the step
    assert down["impaired_s"] == pytest.approx(0.19, abs=0.001) and not down["recovered"]
    text = sentence("db-engine", {"db-write": got}, {"db-write": 0})
    assert text == "database writes paused 0.11 s (10 failed attempts) during db-engine"


def test_results_go_to_cloudwatch_and_sns_on_aws(ops_config: Any, sns_topic: Any) -> None:
    import boto3

    from spywatcher_ops.maintenance.publish import publish

    report = {
        "id": "abc123",
        "plan": "sunday",
        "environment": {"name": "staging"},
        "state": "complete",
        "started_at": "2026-12-06T02:00:05.000Z",
        "summary": "complete: 1 ok",
        "emergency": None,
        "steps": [
            {
                "index": 1,
                "name": "db-engine",
                "status": "ok",
                "duration_s": 412.5,
                "summary": "database writes paused 0.80 s during db-engine",
                "impact": {"db-write": {"impaired_s": 0.8}, "db-read": {"impaired_s": 0.4}},
                "lost": {"db-write": 0},
            },
            {
                "index": 2,
                "name": "db-housekeeping",
                "status": "not-started",
                "duration_s": None,
                "summary": "",
                "impact": {},
                "lost": {},
            },
        ],
    }
    out = publish(_env(ops_config, WINDOW), report)
    assert out["metrics"] == 6 and out["sns_message_id"]
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="Spywatcher/DR")["Metrics"]}
    assert {
        "MaintenanceCompleted",
        "MaintenanceStepsNotStarted",
        "StepDurationSeconds",
        "ClientImpairmentSeconds",
        "LostWrites",
    } <= names
    msg = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=sns_topic["queue"])[
        "Messages"
    ][0]
    body = json.loads(msg["Body"])
    assert body["Subject"] == "Maintenance on staging: complete"
    assert "1. db-engine: ok - database writes paused 0.80 s" in body["Message"]


@pytest.fixture
def staging_eks(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The loopback fake EKS API (moto 5.2 has no upgrade insights or add-on versions) with
    staging's cluster at 1.28, its node group on the newest release of 1.28."""
    from support.eks_api_server import RELEASES, FakeEks

    fake = FakeEks("spywatcher-staging-eks")
    fake.add_nodegroup("workers", release=RELEASES["1.28"])
    fake.add_addon("coredns", "v1.10.1-eksbuild.4")
    fake.add_insight("Deprecated APIs removed in Kubernetes v1.29", "PASSING")
    fake.serve()
    monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", fake.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", fake.url)
    yield fake
    fake.close()


def test_plan_on_aws_shows_every_step_and_every_precheck_result(
    ops_config: Any, staging_aws: Any, staging_eks: Any
) -> None:
    from spywatcher_ops.maintenance.planning import make_plan

    env = _env(ops_config, WINDOW - timedelta(days=1))
    plan = make_plan(env, setup(env, None), None)
    steps = [s["step"] for s in plan["steps"]]
    # the data tier, then the hosts, then Kubernetes: control plane (+ add-ons, node groups), node groups
    assert steps == [
        "db-housekeeping",
        "db-engine",
        "cache-restart",
        "tls-renew",
        "os-patch",
        "eks-upgrade",
        "eks-nodegroups",
    ]
    assert plan["window"]["start"] == "2026-12-06T02:00:00.000Z" and plan["not_started"] == []
    # defaults, no history yet: 6130 s, inside the 105 minutes before the 03:45 cutoff
    assert [s["expected_s"] for s in plan["steps"]] == [60.0, 30.0, 30.0, 10.0, 600.0, 3600.0, 1800.0]
    assert plan["expected_total_s"] == sum(s["expected_s"] for s in plan["steps"]) == 6130.0
    own = {s["step"]: {c["name"]: (c["status"], c["detail"]) for c in s["prechecks"]} for s in plan["steps"]}
    # none configured: said, and skipped (not a failure that would stop the EKS steps after it)
    assert own["os-patch"] == {
        "hosts": ("skip", "no SSH hosts configured (ops.environments.staging.ssh.hosts): nothing to patch")
    }
    assert own["eks-upgrade"] == {
        "one minor version": ("ok", "1.28 -> 1.29"),
        "upgrade insights": ("ok", "1 insight(s), none in ERROR"),
        "removed APIs": ("ok", "none removed in 1.29 in use"),
        "node groups": ("ok", "all within one minor version of 1.29"),
        "add-ons": ("ok", "coredns v1.10.1-eksbuild.4 -> v1.11.1-eksbuild.9"),
    }
    assert own["eks-nodegroups"]["node groups"] == (
        "ok",
        "workers: 1.28 release 1.28.15-20241121 (newest 1.28.15-20241121)",
    )
    assert not any(
        m == "POST" and p.startswith("/clusters/") and "insights" not in p for m, p in staging_eks.calls
    )
    # planned 45 minutes into the window, the control plane upgrade (3600 s) would cross the cutoff
    late = make_plan(_env(ops_config, WINDOW + timedelta(minutes=45)), setup(env, None), None, checks=False)
    assert late["not_started"] == ["eks-upgrade", "eks-nodegroups"]
    checks = {c["name"]: c for c in plan["prechecks"]}
    assert checks["notice"]["status"] == "warn" and checks["paging alarms"]["status"] == "ok"
    # moto's RDS instance has no real server behind it: said, not hidden
    assert checks["database healthy"]["status"] == "failed"
    assert all(s["prechecks"] for s in plan["steps"])  # every step's own pre-check has a result


def test_os_patch_without_hosts_is_skipped_unless_the_plan_says_hosts_are_required(
    ops_config: Any, staging_aws: Any
) -> None:
    from spywatcher_ops.maintenance.os_patch import OS_PATCH
    from spywatcher_ops.maintenance.steps import STEPS, StepContext

    env = _env(ops_config, WINDOW)
    defaults = {k: v.default for k, v in STEPS["os-patch"].settings.items()}
    assert defaults["hosts_required"] is False

    def precheck(**settings: Any) -> tuple[list[Any], dict[str, Any]]:
        ctx = StepContext(env=env, settings={**defaults, **settings}, progress=print, note=print)
        return OS_PATCH.precheck(ctx), ctx.state

    checks, state = precheck()
    assert [(c.name, c.status, c.ok) for c in checks] == [("hosts", "skip", True)]
    assert state["skip"] == "no SSH hosts configured (ops.environments.staging.ssh.hosts): nothing to patch"
    checks, state = precheck(hosts_required=True)
    assert [(c.name, c.status) for c in checks] == [("hosts", "failed")]
    assert checks[0].detail == "staging has no SSH hosts and the plan says hosts_required"
    assert "skip" not in state
