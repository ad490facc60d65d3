"""The newest CloudWatch datapoint of a metric (status reads a few, read-only)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def latest(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    now: datetime,
    *,
    stat: str = "Average",
    minutes: int = 15,
) -> float | None:
    """The most recent datapoint of the last `minutes`, or None when the metric reported nothing."""
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=minutes),
        EndTime=now,
        Period=60,
        Statistics=[stat],
    )
    points = sorted(answer.get("Datapoints") or [], key=lambda p: p["Timestamp"])
    return float(points[-1][stat]) if points else None
