"""Who is acting on AWS, for the audit journal: account and caller ARN."""

from __future__ import annotations

from typing import Any

from ...core.errors import NotReady


def caller_identity(clients: Any) -> dict[str, str]:
    """{"aws_account": ..., "aws_arn": ...} from STS; NotReady when there are no usable credentials."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        reply = clients.client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise NotReady(
            f"cannot tell who is calling AWS (sts get-caller-identity failed: {exc})",
            hint="check AWS credentials or the environment's profile in invoke.yaml",
        ) from None
    return {"aws_account": str(reply["Account"]), "aws_arn": str(reply["Arn"])}
