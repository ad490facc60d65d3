"""CloudWatch alarms, read-only: every alarm in the given states, all pages."""

from __future__ import annotations

from typing import Any

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
