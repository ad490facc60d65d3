"""IAM policy simulation of the caller: the Permissions port of an aws environment.

The drills' preflight asks, before injecting anything, whether the role that runs them may
take every action the scenario needs, against the resources it will touch where their ARNs are
known (a least-privilege policy scoped to a resource is "denied" against the default "*").
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from ...core.ports import Denial
from .errors import failed_as_operation

if TYPE_CHECKING:
    from ...core.environment import Environment

# What the S3 backend of `terraform init/plan/apply` does with its state (Terraform's S3 backend
# documentation), plus the versioning check inv infra.apply makes before applying.
STATE_BUCKET_ACTIONS = ["s3:ListBucket", "s3:GetBucketVersioning"]
STATE_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject"]
LOCK_FILE_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]  # use_lockfile: <key>.tflock
LOCK_TABLE_ACTIONS = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]


def policy_source(arn: str) -> str:
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


def state_backend_access(
    backend: dict[str, Any], state_key: str, *, partition: str, account: str
) -> list[tuple[list[str], list[str]]]:
    """(actions, resource ARNs) the S3 backend `backend` needs for the object `state_key`. Pure."""
    if str(backend.get("type", "s3")) != "s3":
        return []
    bucket = str(backend["bucket"])
    groups = [
        (list(STATE_BUCKET_ACTIONS), [f"arn:{partition}:s3:::{bucket}"]),
        (list(STATE_OBJECT_ACTIONS), [f"arn:{partition}:s3:::{bucket}/{state_key}"]),
    ]
    if backend.get("use_lockfile"):
        groups.append((list(LOCK_FILE_ACTIONS), [f"arn:{partition}:s3:::{bucket}/{state_key}.tflock"]))
    table = backend.get("dynamodb_table")
    if table:
        region = str(backend.get("region") or "us-east-1")
        groups.append(
            (list(LOCK_TABLE_ACTIONS), [f"arn:{partition}:dynamodb:{region}:{account}:table/{table}"])
        )
    return groups


class AwsPermissions:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.clients = clients

    @cached_property
    def _caller(self) -> str:
        with failed_as_operation():
            return str(self.clients.client("sts").get_caller_identity()["Arn"])

    def caller(self) -> str:
        return self._caller

    def principal(self) -> str:
        return policy_source(self._caller)

    def simulate(self, actions: list[str], resources: list[str] | None = None) -> list[Denial]:
        kwargs: dict[str, Any] = {"PolicySourceArn": self.principal(), "ActionNames": actions}
        if resources:
            kwargs["ResourceArns"] = resources
        denied = []
        with failed_as_operation():
            pages = self.clients.client("iam").get_paginator("simulate_principal_policy").paginate(**kwargs)
            for page in pages:
                for result in page.get("EvaluationResults", []):
                    decision = str(result.get("EvalDecision"))
                    if decision == "allowed":
                        continue
                    # IAM names the resource of each result when resources were asked about
                    named = str(result.get("EvalResourceName") or "*")
                    denied.append(Denial(str(result["EvalActionName"]), named, decision))
        return denied

    def state_backend_access(self) -> list[tuple[list[str], list[str]]]:
        from ..terraform import settings_for

        settings = settings_for(self.environment)
        parts = self._caller.split(":")
        return state_backend_access(
            settings.backend,
            settings.state_key if settings.kind == "s3" else "",
            partition=parts[1],
            account=parts[4],
        )
