"""boto3's errors as the toolkit's: a port method raises OperationFailed, never a botocore class."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def provider_errors() -> tuple[type[BaseException], ...]:
    """What a boto3 call raises when the service (or the way to it) refuses: ClientError,
    BotoCoreError, and ResponseParserError (an endpoint that answers with a body botocore
    cannot parse, e.g. moto where it lacks an operation)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (ClientError, BotoCoreError, ResponseParserError)


@contextmanager
def failed_as_operation() -> Iterator[None]:
    """Inside: a provider error becomes OperationFailed with the provider's own text."""
    from ...core.errors import OperationFailed

    try:
        yield
    except provider_errors() as exc:
        raise OperationFailed(str(exc)) from None
