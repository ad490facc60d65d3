"""The DynamoDB lock keeps renewing through transient errors, and when it cannot keep
the lock the operation is told and stops at its next safe point (issue 10, item 8).

Reproduced first: with a 3 s TTL and one throttled `update_item`, the renewal thread
gave up, the item expired, and a second holder took the lock while the first
operation still ran. Errors are injected into the real (moto-backed) client through
botocore's own `before-call` hook, the mechanism Stubber uses: the call returns the
error response DynamoDB would send, and every other call goes to moto.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from support.aws import LOCK_TABLE, REGION, aws_env

from spywatcher_ops.backends.aws.lock import DynamoLock
from spywatcher_ops.backends.aws.session import AwsClients
from spywatcher_ops.core.clock import SystemClock
from spywatcher_ops.core.errors import Locked, LockLost
from spywatcher_ops.core.journal import read
from spywatcher_ops.core.waiting import wait_for

TTL = 3.0


class Throttle:
    """Fails UpdateItem (the renewal) with ThrottlingException while `failing` says so."""

    def __init__(self, failing: Any) -> None:
        self.failing = failing
        self.calls: list[tuple[float, bool]] = []

    def __call__(self, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        fail = self.failing(len(self.calls))
        self.calls.append((time.time(), fail))
        if not fail:
            return None  # on to moto
        error = {
            "Error": {
                "Code": "ThrottlingException",
                "Message": "Rate of requests exceeds the allowed throughput.",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 400, {}, None), error


def lock_with(ops_config: Any, throttle: Throttle | None = None) -> tuple[DynamoLock, Any]:
    ops_config.ops.aws.lock_ttl_seconds = TTL
    env = aws_env(ops_config, clock=SystemClock())
    lock = DynamoLock(env, AwsClients(REGION, None))
    if throttle is not None:
        lock._ddb.meta.events.register("before-call.dynamodb.UpdateItem", throttle)
    return lock, env


def item() -> dict:
    return (
        boto3.client("dynamodb", region_name=REGION)
        .get_item(TableName=LOCK_TABLE, Key={"lock_id": {"S": "staging"}}, ConsistentRead=True)
        .get("Item")
        or {}
    )


def test_renewal_rides_out_throttling_and_no_one_else_takes_the_lock(staging_aws, ops_config, capfd) -> None:
    # The first four renewal attempts are throttled (about 0.8 s of failures), then it recovers.
    throttle = Throttle(lambda n: n < 4)
    first, _ = lock_with(ops_config, throttle)
    second, _ = lock_with(ops_config)
    started = time.time()
    with first.hold("alice", "db.restore"):
        acquired_expiry = int(item()["expires_at"]["N"])
        # Past the expiry the first item had: a renewer that gave up would have lost it by now.
        time.sleep(max(0.0, acquired_expiry - time.time()) + 1.2)
        with pytest.raises(Locked, match="locked by alice"):
            with second.hold("bob", "db.swap"):
                pass
        assert item()["owner"]["S"] == "alice"
        assert int(item()["expires_at"]["N"]) > acquired_expiry
        assert first.lost is None
    assert item() == {}  # released normally, no LockLost
    failed = [t for t, fail in throttle.calls if fail]
    assert len(failed) == 4 and any(not fail for _, fail in throttle.calls)
    assert failed[0] - started < TTL  # the failures really were inside the first TTL
    err = capfd.readouterr().err
    assert "renewal failed (ThrottlingException); retrying" in err
    assert "renewed after 5 attempts" in err


def test_the_operation_stops_at_its_next_safe_point_when_renewal_is_lost(
    staging_aws, ops_config, capfd
) -> None:
    throttle = Throttle(lambda n: True)  # DynamoDB throttles every renewal
    ops_config.ops.aws.lock_ttl_seconds = TTL
    env = aws_env(ops_config, clock=SystemClock())
    # The environment's own clients: the lock env.operation takes renews through this one.
    env.parts.clients.client("dynamodb").meta.events.register("before-call.dynamodb.UpdateItem", throttle)
    started = time.monotonic()
    with pytest.raises(LockLost) as caught:
        with env.operation("db.restore", {"to": "latest"}):
            # A long wait on provider state (a restore waits up to hours): each poll is a safe point.
            wait_for(
                lambda: (False, None, "creating"),
                what="the restore",
                clock=env.clock,
                timeout=60,
                interval=0.05,
            )
    elapsed = time.monotonic() - started
    assert caught.value.exit_code == 3
    assert "was lost (renewal failed" in str(caught.value) and "ThrottlingException" in str(caught.value)
    assert elapsed < TTL + 1.0  # told before the lock ran out, not after the 60 s wait
    assert len(throttle.calls) >= 3  # it retried before giving up
    err = capfd.readouterr().err
    assert "lost: renewal failed" in err and "stops at its next safe point" in err
    records = [r for r in read(env.journal.path) if r.get("op") == "db.restore"]
    assert any(r["event"] == "step" and r["step"] == "lock" and r["status"] == "lost" for r in records)
    assert records[-1]["event"] == "end" and records[-1]["outcome"] == "LockLost"


def test_a_lock_taken_over_is_lost_at_once_and_not_released_from_the_new_holder(
    staging_aws, ops_config
) -> None:
    lock, _ = lock_with(ops_config)
    ddb = boto3.client("dynamodb", region_name=REGION)
    body_done = threading.Event()
    with pytest.raises(LockLost, match="finished, but the lock on staging was lost"):
        with lock.hold("alice", "db.snapshot"):
            # Someone else's item now (what a takeover after expiry leaves).
            ddb.put_item(
                TableName=LOCK_TABLE,
                Item={
                    "lock_id": {"S": "staging"},
                    "token": {"S": "bobs"},
                    "owner": {"S": "bob"},
                    "operation": {"S": "db.swap"},
                    "expires_at": {"N": str(int(time.time()) + 60)},
                },
            )
            deadline = time.time() + TTL
            while lock.lost is None and time.time() < deadline:
                time.sleep(0.05)
            body_done.set()  # the body ends without a safe point: the loss is reported at the end
    assert body_done.is_set()
    assert "another holder took it" in (lock.lost or "")
    assert item()["owner"]["S"] == "bob"  # ours was not deleted from under bob
