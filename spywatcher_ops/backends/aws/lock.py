"""One mutating operation per aws environment: a DynamoDB conditional write.

The item `{lock_id: <environment>}` is put only if no item exists or the one
there has expired; it is deleted only by the holder (conditional on its token).
A holder that dies leaves an item that expires after `ops.aws.lock_ttl_seconds`
(default 900); a live holder renews it every third of that, so a long restore
keeps its lock. The table needs a string partition key `lock_id`
(`expires_at` doubles as a DynamoDB TTL attribute).

A renewal that fails (throttled, a 5xx, the network) is retried with capped,
jittered exponential backoff until the lock is about to expire (a margin of a
fifth of the TTL, at most 60 s, before `expires_at`): while it retries, the item
is still ours and unexpired, so no one else can take it. When the margin is
reached, or the item turns out to be someone else's, the lock is lost: renewing
stops and the operation is told (core/stop.py) so it stops at its next safe
point with LockLost (exit 3; 4 where its rollback runs). Every retry and the
loss go to stderr and the journal.
"""

from __future__ import annotations

import math
import os
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ...core import stop
from ...core.errors import Locked, LockLost, NotReady

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
        self.interval = max(self.ttl / 3, 0.5)  # between renewals
        self.margin = min(max(self.ttl / 5, 0.5), 60.0)  # stop retrying this long before expiry
        self.expires_at = 0.0  # of the item as we last wrote it (epoch seconds)
        self.lost: str | None = None  # why the lock was lost, once it is

    @property
    def resource(self) -> str:
        return self.table

    @property
    def _ddb(self) -> Any:
        return self.clients.client("dynamodb")

    @contextmanager
    def hold(self, owner: str, operation: str) -> Iterator[None]:
        token = uuid.uuid4().hex
        self._acquire(token, owner, operation)
        self.lost = None
        stop.clear()
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(token, done), daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join(timeout=5)
            stop.clear()  # a request not raised (no safe point reached) is reported below instead
            self._release(token)
        if self.lost is not None:
            # The body finished without reaching a safe point: what it did, it did partly
            # without the lock, and another operation may have run at the same time.
            raise LockLost(
                f"{operation} finished, but the lock on {self.lock_id} was lost while it ran ({self.lost}); "
                "another operation may have run at the same time: check the journal and the environment"
            )

    def _acquire(self, token: str, owner: str, operation: str) -> None:
        from botocore.exceptions import ClientError

        now = time.time()
        expires = math.ceil(now + self.ttl)  # whole seconds (a DynamoDB TTL attribute), never early
        item = {
            "lock_id": {"S": self.lock_id},
            "token": {"S": token},
            "owner": {"S": owner},
            "operation": {"S": operation},
            "host": {"S": socket.gethostname()},
            "pid": {"N": str(os.getpid())},
            "acquired_at": {"N": f"{now:.3f}"},
            "expires_at": {"N": str(expires)},
        }
        self.expires_at = float(expires)
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
                raise Locked(
                    self._describe_holder(),
                    hint="wait for it to finish; a dead holder's lock expires by itself",
                ) from None
            if code == "ResourceNotFoundException":
                raise NotReady(
                    f"lock table {self.table} does not exist", hint=CREATE_HINT.format(table=self.table)
                ) from None
            raise NotReady(f"cannot take the lock in {self.table}: {code or exc}") from None

    def _describe_holder(self) -> str:
        reply = self._ddb.get_item(
            TableName=self.table, Key={"lock_id": {"S": self.lock_id}}, ConsistentRead=True
        )
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

    def _renew_until(self, token: str, done: threading.Event) -> None:
        while not done.wait(self.interval):
            if not self._renew(token, done):
                return

    def _renew(self, token: str, done: threading.Event) -> bool:
        """One renewal, retried through transient errors while the lock is safe. False: stop
        renewing (lost, or the operation ended)."""
        from botocore.exceptions import BotoCoreError, ClientError

        delay, attempt = min(0.2, self.interval / 4), 0
        while True:
            attempt += 1
            expires = math.ceil(time.time() + self.ttl)
            try:
                self._ddb.update_item(
                    TableName=self.table,
                    Key={"lock_id": {"S": self.lock_id}},
                    UpdateExpression="SET expires_at = :exp, renewed_at = :now",
                    ConditionExpression="#t = :token",
                    ExpressionAttributeNames={"#t": "token"},
                    ExpressionAttributeValues={
                        ":exp": {"N": str(expires)},
                        ":now": {"N": f"{time.time():.3f}"},
                        ":token": {"S": token},
                    },
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ConditionalCheckFailedException":
                    self._lose("the lock item is no longer ours: it expired and another holder took it")
                    return False
                error = code or str(exc)
            except BotoCoreError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                self.expires_at = float(expires)
                if attempt > 1:
                    self._say(f"lock {self.lock_id} renewed after {attempt} attempts")
                return True
            left = self.expires_at - time.time()
            if left - delay <= self.margin:
                self._lose(
                    f"renewal failed {attempt} time(s) in a row (last: {error}) and the lock expires "
                    f"in {max(left, 0):.1f} s"
                )
                return False
            self._say(f"lock {self.lock_id}: renewal failed ({error}); retrying in {delay:.1f} s")
            if done.wait(delay * random.uniform(0.5, 1.0)):
                return False
            delay = min(delay * 2, max(self.interval / 4, 0.2), 10.0)

    def _lose(self, why: str) -> None:
        self.lost = why
        self._say(f"lock {self.lock_id} lost: {why}; the operation stops at its next safe point")
        journal = self.environment.journal
        if journal.current is not None:
            journal.current.step("lock", "lost", reason=why)
        stop.request(LockLost(f"the lock on {self.lock_id} was lost ({why}); stopped at a safe point"))

    @staticmethod
    def _say(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

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
