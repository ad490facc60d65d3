"""One mutating operation per aws environment: a DynamoDB conditional write.

The item `{lock_id: <environment>}` is put only if no item exists or the one
there has expired; it is deleted only by the holder (conditional on its token).
A holder that dies leaves an item that expires after `ops.aws.lock_ttl_seconds`
(default 900); a live holder renews it every third of that, so a long restore
keeps its lock. The item names the holder's host, boot, pid and the pid's start
time: a holder on this host whose process is provably gone (core/process.py
same_process; or the host rebooted since) is taken over at once, by a put
conditional on the dead holder's token, journalled and said in one line. A
holder on another host is never taken over: the refusal says who and since when. The table needs a string partition key `lock_id`
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
from ...core.errors import DeadHolder, Locked, LockLost, NotReady
from ...core.process import boot_id, pid_namespace, same_process, start_time

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
    def hold(self, owner: str, operation: str, *, take_over: bool = True) -> Iterator[None]:
        token = uuid.uuid4().hex
        self._acquire(token, owner, operation, take_over)
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

    def _acquire(self, token: str, owner: str, operation: str, take_over: bool = True) -> None:
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
        pid_started, boot, pid_ns = start_time(os.getpid()), boot_id(), pid_namespace()
        if pid_started is not None:
            item["pid_started"] = {"N": str(pid_started)}
        if boot:
            item["boot_id"] = {"S": boot}
        if pid_ns:
            item["pid_ns"] = {"S": pid_ns}
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
                holder = self._holder()
                dead = dead_here(holder)
                if dead and not take_over:
                    raise DeadHolder(
                        f"{self._describe_holder(holder)}; that process is gone ({dead})",
                        hint="the next mutating task on this host takes the lock over",
                    ) from None
                if dead and self._take_over(item, holder, dead):
                    return
                raise Locked(self._describe_holder(holder), hint=self._hint(holder)) from None
            if code == "ResourceNotFoundException":
                raise NotReady(
                    f"lock table {self.table} does not exist", hint=CREATE_HINT.format(table=self.table)
                ) from None
            raise NotReady(f"cannot take the lock in {self.table}: {code or exc}") from None

    def _holder(self) -> dict[str, Any]:
        reply = self._ddb.get_item(
            TableName=self.table, Key={"lock_id": {"S": self.lock_id}}, ConsistentRead=True
        )
        return dict(reply.get("Item") or {})

    def _take_over(self, item: dict[str, Any], holder: dict[str, Any], why: str) -> bool:
        """Replace a dead holder's item, only if it is still that holder's (its token): two
        processes taking over at once, one wins and the other is refused. True: ours now."""
        from botocore.exceptions import ClientError

        old = _field(holder, "token")
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="#t = :old",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":old": {"S": old}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False  # changed meanwhile (released, or someone else took it over)
            raise
        host, pid = _field(holder, "host"), _field(holder, "pid")
        line = (
            f"lock {self.lock_id} taken over from dead holder {host} pid {pid} "
            f"({_field(holder, 'owner')} running {_field(holder, 'operation')}, since "
            f"{_since(holder)}; {why})"
        )
        self._say(line)
        self.environment.journal.write(
            {
                "event": "lock",
                "env": self.lock_id,
                "status": "taken-over",
                "message": f"lock taken over from dead holder {host} pid {pid}",
                "holder": {
                    k: _field(holder, k) for k in ("owner", "operation", "host", "pid", "acquired_at")
                },
                "reason": why,
            }
        )
        return True

    def _describe_holder(self, item: dict[str, Any] | None = None) -> str:
        if item is None:
            item = self._holder()
        left = ""
        if "expires_at" in item:
            left = f", expires in {max(0, int(float(_field(item, 'expires_at')) - time.time()))} s"
        return (
            f"environment {self.lock_id} is locked by {_field(item, 'owner')} running "
            f"{_field(item, 'operation')} (host {_field(item, 'host')}, pid {_field(item, 'pid')}, "
            f"since {_since(item)}{left})"
        )

    def _hint(self, item: dict[str, Any]) -> str:
        if item and _field(item, "host") != socket.gethostname():
            # its process cannot be checked from here: never taken over automatically
            return (
                f"wait for it to finish; if that process is gone (check on host {_field(item, 'host')}), "
                f"its lock expires by itself, or an operator deletes it by hand: aws dynamodb delete-item "
                f'--table-name {self.table} --key \'{{"lock_id": {{"S": "{self.lock_id}"}}}}\''
            )
        return "wait for it to finish; a dead holder's lock on this host is taken over at once"

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


def _field(item: dict[str, Any], name: str) -> str:
    value = item.get(name) or {}
    return str(value.get("S") or value.get("N") or "?")


def _since(item: dict[str, Any]) -> str:
    try:
        at = float(_field(item, "acquired_at"))
    except ValueError:
        return "?"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def dead_here(item: dict[str, Any]) -> str:
    """Why the holder recorded in `item` is provably gone, when it ran on this host; '' when it
    may be alive, ran elsewhere, or its record cannot tell (one written before the pid's start
    time was kept: left to expire)."""
    if not item or _field(item, "host") != socket.gethostname():
        return ""
    recorded_boot = _field(item, "boot_id")
    if recorded_boot != "?" and boot_id() and recorded_boot != boot_id():
        return "this host has rebooted since"
    started, pid = _field(item, "pid_started"), _field(item, "pid")
    if not (started.isdigit() and pid.isdigit()) or _field(item, "pid_ns") != (pid_namespace() or "?"):
        return ""
    if same_process(int(pid), int(started)):
        return ""
    return "that process is gone" if start_time(int(pid)) is None else "that pid is another process now"
