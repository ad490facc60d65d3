"""AWS-only parts of the drills: the TestFailover quota, the IAM permission
simulation, and publishing results (CloudWatch metrics, an SNS summary).

The provider is reached through the environment's ports (Permissions, Monitoring,
Notifications), so the request ids reach the journal and tests can point them at moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import OperationFailed, OpsError
from ..core.ports import Denial
from .scenario import Check, Scenario

if TYPE_CHECKING:
    from ..core.environment import Environment
    from .scenario import DrillOptions

PUBLISH_ACTIONS = ("cloudwatch:PutMetricData",)
# Every drill on aws: who am I (journal, simulation), the environment lock (DynamoDB).
COMMON_ACTIONS = (
    "sts:GetCallerIdentity",
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)


def test_failover_quota(env: Environment) -> Check:
    """ElastiCache allows a limited number of TestFailover calls per 24 h (5 by default)."""
    cache = env.cache
    quota = cache.quota
    if quota is None:
        return Check("TestFailover quota", "ok", f"no test failover quota on {env.kind}")
    try:
        used = cache.test_failovers_in_window()
    except OpsError as exc:
        return Check("TestFailover quota", "failed", exc.message, hint=exc.hint)
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


def permissions(env: Environment, scenario: Scenario, options: DrillOptions | None = None) -> Check:
    """IAM policy simulation of the caller for every action the scenario needs, against the
    resources it touches where their ARNs are known (the Permissions port)."""
    iam = env.permissions
    try:
        requests = simulations(env, scenario, iam.caller(), options)
        principal = iam.principal()
        denied = [d for actions, resources in requests for d in iam.simulate(actions, resources)]
    except OperationFailed as exc:
        # e.g. an endpoint that does not implement the simulation (moto): report it, don't crash
        return Check(
            "IAM permissions",
            "failed",
            f"could not simulate the caller's policy: {exc.message}",
            hint="the caller needs iam:SimulatePrincipalPolicy on itself, or check the policy by hand",
        )
    if denied:
        return Check(
            "IAM permissions",
            "failed",
            "denied: " + ", ".join(_denial(d) for d in denied),
            hint="allow these actions to the role that runs drills (deploy/iam/drills-policy.json lists them all)",
        )
    count = sum(len(actions) for actions, _ in requests)
    return Check("IAM permissions", "ok", f"{count} action(s) allowed for {principal}")


def simulations(
    env: Environment, scenario: Scenario, caller_arn: str, options: DrillOptions | None = None
) -> list[tuple[list[str], list[str] | None]]:
    """The simulations to ask for, (actions, resource ARNs or None for "*"): one per service for
    the scenario's actions; for a rebuild, also what Terraform needs on the state backend (the
    S3 bucket, the state key and lock file, the DynamoDB lock table) of the workspace it applies."""
    resources = resource_arns(env, caller_arn)
    out: list[tuple[list[str], list[str] | None]] = [
        (acts, [resources[service]] if service in resources else None)
        for service, acts in _by_service(required_actions(env, scenario))
    ]
    if scenario.part == "infrastructure":
        out += _rebuilt(env, options).permissions.state_backend_access()
    return out


def _rebuilt(env: Environment, options: DrillOptions | None) -> Environment:
    """The environment whose Terraform state the rebuild applies: a DR region's (--param region=R)."""
    region = (options.params if options else {}).get("region")
    if not region:
        return env
    from ..infra.region import dr_environment

    return dr_environment(env, region)


def _denial(d: Denial) -> str:
    where = "" if d.resource == "*" else f" on {d.resource}"
    return f"{d.action}{where} ({d.decision})"


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
    namespace = str(aws.get("metrics_namespace") or "Spywatcher/DR")
    env.monitoring.put_metrics(namespace, metric_data(report))
    out: dict[str, Any] = {"namespace": namespace}
    topic = aws.get("sns_topic_arn")
    if topic:
        subject = (
            f"DR drill {report['scenario']['name']} on {report['environment']['name']}: {report['outcome']}"
        )
        out["sns_message_id"] = env.notifications.publish(str(topic), subject, sns_message(report))
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
