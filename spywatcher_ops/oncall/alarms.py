"""Where an environment's alarms come from: CloudWatch on aws; the sandbox has none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import Unsupported
from .triage import Alarm

if TYPE_CHECKING:
    from ..core.environment import Environment

NO_CLOUDWATCH = (
    "environment {name} (sandbox) has no CloudWatch, so no alarms to triage; "
    "its health is `inv status --env {name}`, and `inv runbook.list` lists the runbooks"
)


def read_alarms(environment: Environment, states: list[str]) -> list[Alarm]:
    """Every alarm in `states` in the environment's account and region (all pages)."""
    if environment.kind != "aws":
        raise Unsupported(NO_CLOUDWATCH.format(name=environment.name))
    from ..backends.aws.cloudwatch import describe_alarms

    client = _clients(environment).client("cloudwatch")
    return [Alarm.from_cloudwatch(raw) for raw in describe_alarms(client, states)]


def _clients(environment: Environment) -> Any:
    return environment.parts.clients  # type: ignore[attr-defined]
