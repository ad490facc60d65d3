"""AWS-only parts of the drills: the TestFailover quota, the IAM permission
simulation, and publishing results (CloudWatch metrics, an SNS summary).

boto3 clients come from the environment's AwsClients (env.parts.clients),
so the request ids reach the journal and tests can point them at moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import OpsError
from .scenario import Check, Scenario

if TYPE_CHECKING:
    from ..core.environment import Environment

PUBLISH_ACTIONS = ("cloudwatch:PutMetricData",)
# Every drill on aws: who am I (journal, simulation), the environment lock (DynamoDB).
COMMON_ACTIONS = (
    "sts:GetCallerIdentity",
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)


def _clients(env: Environment) -> Any:
    return env.parts.clients  # type: ignore[attr-defined]


def test_failover_quota(env: Environment) -> Check:
    """ElastiCache allows a limited number of TestFailover calls per 24 h (5 by default)."""
    cache = env.cache
    try:
        used = cache.test_failovers_in_window()  # type: ignore[attr-defined]
    except OpsError as exc:
        return Check("TestFailover quota", "failed", exc.message, hint=exc.hint)
    quota = int(getattr(cache, "quota", 5))
    if len(used) >= quota:
        return Check(
            "TestFailover quota",
            "failed",
            f"{len(used)} of {quota} TestFailover calls used in the last 24 h",
            hint="wait until the oldest call is 24 h old",
        )
    return Check(
        "TestFailover quota", "ok", f"{len(used)} of {quota} TestFailover calls used in the last 24 h"
    )


def required_actions(env: Environment, scenario: Scenario) -> list[str]:
    actions = list(scenario.aws_actions_for(env))
    actions += PUBLISH_ACTIONS + COMMON_ACTIONS
    if env.settings.section("aws").get("sns_topic_arn"):
        actions.append("sns:Publish")
    return sorted(set(actions))


def permissions(env: Environment, scenario: Scenario) -> Check:
    """IAM policy simulation of the caller for every action the scenario needs."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    actions = required_actions(env, scenario)
    clients = _clients(env)
    try:
        arn = clients.client("sts").get_caller_identity()["Arn"]
        principal = _policy_source(arn)
        denied = []
        resources = resource_arns(env, arn)
        for service, acts in _by_service(actions):
            # Simulated against the resource the drill touches, where its ARN is known: a
            # least-privilege policy scoped to it would be "denied" against the default "*".
            kwargs: dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": acts}
            if service in resources:
                kwargs["ResourceArns"] = [resources[service]]
            for page in clients.client("iam").get_paginator("simulate_principal_policy").paginate(**kwargs):
                for result in page.get("EvaluationResults", []):
                    if result.get("EvalDecision") != "allowed":
                        denied.append(f"{result['EvalActionName']} ({result.get('EvalDecision')})")
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        # ResponseParserError: an endpoint that does not implement the simulation
        # (moto) answers with a body botocore cannot parse; report it, don't crash.
        return Check(
            "IAM permissions",
            "failed",
            f"could not simulate the caller's policy: {exc}",
            hint="the caller needs iam:SimulatePrincipalPolicy on itself, or check the policy by hand",
        )
    if denied:
        return Check(
            "IAM permissions",
            "failed",
            "denied: " + ", ".join(denied),
            hint="allow these actions to the role that runs drills (deploy/iam/drills-policy.json lists them all)",
        )
    return Check("IAM permissions", "ok", f"{len(actions)} action(s) allowed for {principal}")


def resource_arns(env: Environment, caller_arn: str) -> dict[str, str]:
    """service -> the ARN of the one resource of it the drills touch, where the name fixes it.
    RDS and ElastiCache act on several (source, restored copy, members): simulated on "*"."""
    parts = caller_arn.split(":")
    partition, account = parts[1], parts[4]
    region = env.env.region or "us-east-1"
    project = env.settings.project
    return {
        "dynamodb": f"arn:{partition}:dynamodb:{region}:{account}:table/{env.parts.lock().resource}",
        "eks": f"arn:{partition}:eks:{region}:{account}:cluster/{env.env.resource(project, 'eks')}",
        # The real ARN ends in 6 random characters that only reading the secret (a password)
        # would tell; a policy scoped with the usual `...-credentials-*` pattern matches this one.
        "secretsmanager": (
            f"arn:{partition}:secretsmanager:{region}:{account}:secret:"
            f"{env.env.resource(project, 'db-credentials')}-AbCdEf"
        ),
    }


def _by_service(actions: list[str]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for action in actions:
        groups.setdefault(action.split(":")[0], []).append(action)
    return sorted(groups.items())


def _policy_source(arn: str) -> str:
    """An assumed-role session ARN -> the role ARN that IAM can simulate."""
    # arn:aws:sts::123456789012:assumed-role/RoleName/session -> arn:aws:iam::123456789012:role/RoleName
    if ":assumed-role/" in arn:
        prefix, rest = arn.split(":assumed-role/", 1)
        account = prefix.split(":")[4]
        partition = prefix.split(":")[1]
        role = rest.split("/")[0]
        return f"arn:{partition}:iam::{account}:role/{role}"
    if arn.startswith("arn:") and ":sts::" in arn and ":user/" in arn:
        return arn.replace(":sts::", ":iam::", 1)  # IAM users (moto reports them under sts)
    return arn


def metric_data(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The CloudWatch datums of one report. Pure."""
    dims = [
        {"Name": "Environment", "Value": str(report["environment"]["name"])},
        {"Name": "Scenario", "Value": str(report["scenario"]["name"])},
    ]
    from datetime import datetime

    at = datetime.fromisoformat(str(report["started_at"]).replace("Z", "+00:00"))
    data = []
    for name, value in (
        ("RTOSeconds", report["rto"]["achieved_s"]),
        ("RPOSeconds", report["rpo"]["achieved_s"]),
        ("LostWrites", report["rpo"].get("lost_writes")),
    ):
        if value is not None:
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": dims,
                    "Timestamp": at,
                    "Value": float(value),
                    "Unit": "Count" if name == "LostWrites" else "Seconds",
                }
            )
    data.append(
        {
            "MetricName": "TargetsMet",
            "Dimensions": dims,
            "Timestamp": at,
            "Value": 1.0 if report["outcome"] == "met" else 0.0,
            "Unit": "Count",
        }
    )
    return data


def publish(env: Environment, report: dict[str, Any]) -> dict[str, Any]:
    """put_metric_data to ops.aws.metrics_namespace; an SNS summary if ops.aws.sns_topic_arn is set."""
    aws = env.settings.section("aws")
    clients = _clients(env)
    namespace = str(aws.get("metrics_namespace") or "Spywatcher/DR")
    clients.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=metric_data(report))
    out: dict[str, Any] = {"namespace": namespace}
    topic = aws.get("sns_topic_arn")
    if topic:
        subject = (
            f"DR drill {report['scenario']['name']} on {report['environment']['name']}: {report['outcome']}"
        )
        reply = clients.client("sns").publish(
            TopicArn=str(topic), Subject=subject[:99], Message=sns_message(report)
        )
        out["sns_message_id"] = reply.get("MessageId")
    return out


def sns_message(report: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{float(v):.2f} s"

    return "\n".join(
        [
            f"Drill {report['scenario']['name']} on {report['environment']['name']}: {report['outcome'].upper()}",
            report["summary"],
            f"RTO {fmt(report['rto']['achieved_s'])} (target {fmt(report['rto']['target_s'])}): {report['rto']['verdict']}",
            f"RPO {fmt(report['rpo']['achieved_s'])} (target {fmt(report['rpo']['target_s'])}): {report['rpo']['verdict']}",
            f"Report id {report['id']}",
        ]
    )
