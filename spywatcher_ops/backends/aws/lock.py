"""One mutating operation per aws environment: a DynamoDB conditional write.

The item `{lock_id: <environment>}` is put only if no item exists or the one
there has expired; it is deleted only by the holder (conditional on its token).
A holder that dies leaves an item that expires after `ops.aws.lock_ttl_seconds`
(default 900); a live holder renews it every third of that, so a long restore
keeps its lock. The table needs a string partition key `lock_id`
(`expires_at` doubles as a DynamoDB TTL attribute).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ...core.errors import Locked, NotReady

DEFAULT_TABLE = "spywatcher-ops-locks"

if TYPE_CHECKING:
    from ...core.environment import Environment

CREATE_HINT = (
    "create it once: aws dynamodb create-table --table-name {table} "
    "--attribute-definitions AttributeName=lock_id,AttributeType=S "
    "--key-schema AttributeName=lock_id,KeyType=HASH --billing-mode PAY_PER_REQUEST"
)


def lock_table(aws_settings: dict[str, Any]) -> str:
    """The DynamoDB table of the environment locks (ops.aws.lock_table)."""
    return str(aws_settings.get("lock_table") or DEFAULT_TABLE)


class DynamoLock:
    def __init__(self, environment: Environment, clients: Any) -> None:
        aws = environment.settings.section("aws")
        self.environment = environment
        self.clients = clients
        self.table = lock_table(aws)
        self.ttl = float(aws.get("lock_ttl_seconds", 900))
        self.lock_id = environment.name

    @property
    def _ddb(self) -> Any:
        return self.clients.client("dynamodb")

    @contextmanager
    def hold(self, owner: str, operation: str) -> Iterator[None]:
        token = uuid.uuid4().hex
        self._acquire(token, owner, operation)
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(token, stop), daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=5)
            self._release(token)

    def _acquire(self, token: str, owner: str, operation: str) -> None:
        from botocore.exceptions import ClientError

        now = time.time()
        item = {
            "lock_id": {"S": self.lock_id},
            "token": {"S": token},
            "owner": {"S": owner},
            "operation": {"S": operation},
            "host": {"S": socket.gethostname()},
            "pid": {"N": str(os.getpid())},
            "acquired_at": {"N": f"{now:.3f}"},
            "expires_at": {"N": str(int(now + self.ttl))},
        }
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(lock_id) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise Locked(self._describe_holder(), hint="wait for it to finish; a dead holder's lock expires by itself") from None
            if code == "ResourceNotFoundException":
                raise NotReady(f"lock table {self.table} does not exist", hint=CREATE_HINT.format(table=self.table)) from None
            raise NotReady(f"cannot take the lock in {self.table}: {code or exc}") from None

    def _describe_holder(self) -> str:
        reply = self._ddb.get_item(TableName=self.table, Key={"lock_id": {"S": self.lock_id}}, ConsistentRead=True)
        item = reply.get("Item") or {}

        def field(name: str) -> str:
            value = item.get(name) or {}
            return str(value.get("S") or value.get("N") or "?")

        left = ""
        if "expires_at" in item:
            left = f", expires in {max(0, int(float(field('expires_at')) - time.time()))} s"
        return (
            f"environment {self.lock_id} is locked by {field('owner')} running {field('operation')} "
            f"(host {field('host')}, pid {field('pid')}{left})"
        )

    def _renew_until(self, token: str, stop: threading.Event) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        while not stop.wait(max(self.ttl / 3, 0.5)):
            try:
                self._ddb.update_item(
                    TableName=self.table,
                    Key={"lock_id": {"S": self.lock_id}},
                    UpdateExpression="SET expires_at = :exp, renewed_at = :now",
                    ConditionExpression="#t = :token",
                    ExpressionAttributeNames={"#t": "token"},
                    ExpressionAttributeValues={
                        ":exp": {"N": str(int(time.time() + self.ttl))},
                        ":now": {"N": f"{time.time():.3f}"},
                        ":token": {"S": token},
                    },
                )
            except (ClientError, BotoCoreError):
                return  # lost or unreachable: the operation goes on; release is conditional anyway

    def _release(self, token: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._ddb.delete_item(
                TableName=self.table,
                Key={"lock_id": {"S": self.lock_id}},
                ConditionExpression="#t = :token",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Someone took over an expired lock of ours: theirs now, leave it alone.
