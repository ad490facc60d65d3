"""CloudWatch: alarms (every alarm in the given states, all pages), metric datapoints and
metric publishing; the Monitoring port of an aws environment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .errors import failed_as_operation

STATES = ("ALARM", "INSUFFICIENT_DATA", "OK")


def describe_alarms(client: Any, states: list[str]) -> list[dict[str, Any]]:
    """Metric and composite alarms in `states`, as CloudWatch returns them (one call per state,
    every page followed: an account may hold thousands of alarms)."""
    found: list[dict[str, Any]] = []
    paginator = client.get_paginator("describe_alarms")
    for state in states:
        pages = paginator.paginate(
            StateValue=state,
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
            PaginationConfig={"PageSize": 100},
        )
        for page in pages:
            found.extend({**a, "_type": "metric"} for a in page.get("MetricAlarms") or [])
            found.extend({**a, "_type": "composite"} for a in page.get("CompositeAlarms") or [])
    return found


class AwsMonitoring:
    """The Monitoring port over CloudWatch. Provider errors are OperationFailed with their text."""

    def __init__(self, clients: Any) -> None:
        self.clients = clients

    @property
    def client(self) -> Any:
        # made on first use, then reused (AwsClients caches it); Parts.connect makes it before threads do
        return self.clients.client("cloudwatch")

    def alarms(self, states: list[str]) -> list[dict[str, Any]]:
        with failed_as_operation():
            return describe_alarms(self.client, states)

    def firing(self, names: list[str]) -> list[str]:
        found: list[str] = []
        with failed_as_operation():
            for i in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
                reply = self.client.describe_alarms(AlarmNames=names[i : i + 100], StateValue="ALARM")
                # filtered here too: moto ignores StateValue when AlarmNames is given
                found += [
                    a["AlarmName"]
                    for a in reply.get("MetricAlarms", []) + reply.get("CompositeAlarms", [])
                    if a.get("StateValue") == "ALARM"
                ]
        return found

    def latest(
        self,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        now: datetime,
        *,
        stat: str = "Average",
        minutes: int = 15,
    ) -> float | None:
        with failed_as_operation():
            answer = self.client.get_metric_statistics(
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

    def put_metrics(self, namespace: str, data: list[dict[str, Any]]) -> None:
        with failed_as_operation():
            for i in range(0, len(data), 20):  # at most 20 datums per call here (moto), 1000 on AWS
                self.client.put_metric_data(Namespace=namespace, MetricData=data[i : i + 20])
