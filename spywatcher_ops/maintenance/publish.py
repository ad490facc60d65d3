"""On aws, a finished run's results go where the drills' do: CloudWatch metrics
(ops.aws.metrics_namespace) and a summary to the SNS topic (ops.aws.sns_topic_arn)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.environment import Environment


def metric_data(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The CloudWatch datums of one report. Pure."""
    env = str(report["environment"]["name"])
    at = datetime.fromisoformat(str(report["started_at"]).replace("Z", "+00:00"))
    run_dims = [{"Name": "Environment", "Value": env}, {"Name": "Plan", "Value": str(report["plan"])}]
    data = [
        {
            "MetricName": "MaintenanceCompleted",
            "Dimensions": run_dims,
            "Timestamp": at,
            "Value": 1.0 if report["state"] == "complete" else 0.0,
            "Unit": "Count",
        },
        {
            "MetricName": "MaintenanceStepsNotStarted",
            "Dimensions": run_dims,
            "Timestamp": at,
            "Value": float(sum(1 for s in report["steps"] if s["status"] == "not-started")),
            "Unit": "Count",
        },
    ]
    for s in report["steps"]:
        if s["duration_s"] is None:
            continue
        dims = [{"Name": "Environment", "Value": env}, {"Name": "Step", "Value": str(s["name"])}]
        data.append(
            {
                "MetricName": "StepDurationSeconds",
                "Dimensions": dims,
                "Timestamp": at,
                "Value": float(s["duration_s"]),
                "Unit": "Seconds",
            }
        )
        for probe, impact in (s["impact"] or {}).items():
            if impact.get("impaired_s") is not None:
                data.append(
                    {
                        "MetricName": "ClientImpairmentSeconds",
                        "Timestamp": at,
                        "Unit": "Seconds",
                        "Dimensions": [*dims, {"Name": "Probe", "Value": str(probe)}],
                        "Value": float(impact["impaired_s"]),
                    }
                )
        lost = sum(int(v or 0) for v in (s["lost"] or {}).values())
        data.append(
            {
                "MetricName": "LostWrites",
                "Dimensions": dims,
                "Timestamp": at,
                "Value": float(lost),
                "Unit": "Count",
            }
        )
    return data


def sns_message(report: dict[str, Any]) -> str:
    lines = [
        f"Maintenance {report['plan']} on {report['environment']['name']}: {report['state'].upper()}",
        report["summary"],
    ]
    if report.get("emergency"):
        lines.append(f"EMERGENCY: {report['emergency']['reason']}")
    for s in report["steps"]:
        lines.append(
            f"{s['index']}. {s['name']}: {s['status']}" + (f" - {s['summary']}" if s["summary"] else "")
        )
    lines.append(f"Run id {report['id']}")
    return "\n".join(lines)


def publish(env: Environment, report: dict[str, Any]) -> dict[str, Any]:
    aws = env.settings.section("aws")
    namespace = str(aws.get("metrics_namespace") or "Spywatcher/DR")
    data = metric_data(report)
    env.monitoring.put_metrics(namespace, data)  # in batches the service takes
    out: dict[str, Any] = {"namespace": namespace, "metrics": len(data)}
    topic = env.env.raw.get("sns_topic_arn") or aws.get("sns_topic_arn")
    if topic:
        subject = f"Maintenance on {report['environment']['name']}: {report['state']}"
        out["sns_message_id"] = env.notifications.publish(str(topic), subject, sns_message(report))
    return out
