"""Where an environment's alarms come from: its Monitoring port (CloudWatch on aws; on the
sandbox, alarms evaluated from its processes at the moment of asking)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import Unsupported
from .triage import Alarm

if TYPE_CHECKING:
    from ..core.environment import Environment

NO_CLOUDWATCH = (
    "environment {name} has no alarm source, so no alarms to triage; "
    "its health is `inv status --env {name}`, and `inv runbook.list` lists the runbooks"
)


def read_alarms(environment: Environment, states: list[str]) -> list[Alarm]:
    """Every alarm in `states` in the environment's account and region (all pages)."""
    monitoring = environment.parts.monitoring()
    if monitoring is None:
        raise Unsupported(NO_CLOUDWATCH.format(name=environment.name))
    return [Alarm.from_cloudwatch(raw) for raw in monitoring.alarms(states)]
