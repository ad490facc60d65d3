"""CloudWatch alarms as the on-call tests set them up in moto (unit and e2e tiers)."""

from __future__ import annotations

import time
from typing import Any


def put_alarm(cw: Any, name: str, state: str, reason: str = "threshold crossed") -> None:
    """A CPU alarm named `name`, put in `state` (what the on-call triage reads)."""
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
