"""SNS: the Notifications port of an aws environment (drill and maintenance summaries, notices)."""

from __future__ import annotations

from typing import Any

from .errors import failed_as_operation


class AwsNotifications:
    def __init__(self, clients: Any) -> None:
        self.clients = clients

    def publish(self, topic: str, subject: str, message: str) -> str | None:
        with failed_as_operation():
            reply = self.clients.client("sns").publish(TopicArn=topic, Subject=subject[:99], Message=message)
        message_id = reply.get("MessageId")
        return str(message_id) if message_id else None
