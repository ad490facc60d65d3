"""A dead holder of an aws environment's lock on this host is taken over at once (its record
names host, boot, pid namespace, pid and the pid's start time); a live holder, or one on
another host, still refuses, saying who, since when and how to break it by hand."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import boto3
import pytest
from support.aws import LOCK_TABLE, REGION, aws_env

from spywatcher_ops.backends.aws.lock import DynamoLock
from spywatcher_ops.backends.aws.session import AwsClients
from spywatcher_ops.core.errors import Locked
from spywatcher_ops.core.journal import read
from spywatcher_ops.core.process import boot_id, pid_namespace, start_time


def _lock(ops_config) -> tuple[DynamoLock, object]:
    env = aws_env(ops_config)
    return DynamoLock(env, AwsClients(REGION, None)), env


def _item() -> dict:
    return (
        boto3.client("dynamodb", region_name=REGION)
        .get_item(TableName=LOCK_TABLE, Key={"lock_id": {"S": "staging"}}, ConsistentRead=True)
        .get("Item")
        or {}
    )


def _plant(pid: int, started: int | None, host: str | None = None) -> None:
    """The item a holder leaves when it is SIGKILLed: unexpired (15 min to go)."""
    item = {
        "lock_id": {"S": "staging"},
        "token": {"S": "killed-token"},
        "owner": {"S": "alice"},
        "operation": {"S": "maint.run"},
        "host": {"S": host or socket.gethostname()},
        "pid": {"N": str(pid)},
        "acquired_at": {"N": f"{time.time() - 5:.3f}"},
        "expires_at": {"N": str(int(time.time()) + 895)},
        "boot_id": {"S": boot_id()},
        "pid_ns": {"S": pid_namespace()},
    }
    if started is not None:
        item["pid_started"] = {"N": str(started)}
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=LOCK_TABLE, Item=item)


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_of_a_killed_holder_on_this_host_is_taken_over(staging_aws, ops_config, child, capfd):
    started = start_time(child.pid)
    _plant(child.pid, started)
    child.kill()
    child.wait()  # reaped: that pid is gone
    lock, env = _lock(ops_config)
    with lock.hold("bob", "maint.run"):
        item = _item()
        assert item["owner"]["S"] == "bob"
        assert item["pid"]["N"] == str(os.getpid())
        assert item["pid_started"]["N"] == str(start_time(os.getpid()))
        lock._release("killed-token")  # the dead holder's token no longer releases it
        assert _item()["owner"]["S"] == "bob"
    assert _item() == {}
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "taken over" in line]
    assert len(lines) == 1, err
    assert f"taken over from dead holder {socket.gethostname()} pid {child.pid}" in lines[0]
    assert "alice running maint.run" in lines[0]
    records = [r for r in read(env.journal.path) if r.get("event") == "lock"]
    assert records and records[0]["status"] == "taken-over"
    assert records[0]["message"] == f"lock taken over from dead holder {socket.gethostname()} pid {child.pid}"


def test_a_reused_pid_is_not_the_holder(staging_aws, ops_config, child):
    # the pid is alive but its start time is not the recorded one: another process now
    _plant(child.pid, (start_time(child.pid) or 0) + 1)
    lock, _ = _lock(ops_config)
    with lock.hold("bob", "maint.run"):
        assert _item()["owner"]["S"] == "bob"


def test_a_live_holder_on_this_host_still_refuses(staging_aws, ops_config, child):
    _plant(child.pid, start_time(child.pid))
    lock, _ = _lock(ops_config)
    with pytest.raises(
        Locked, match=rf"locked by alice running maint.run \(host .*, pid {child.pid}, since "
    ):
        with lock.hold("bob", "maint.run"):
            pass
    assert _item()["token"]["S"] == "killed-token"  # untouched


def test_a_record_without_the_start_time_is_left_to_expire(staging_aws, ops_config, child):
    _plant(child.pid, None)  # written before start times were kept: the pid alone proves nothing
    child.kill()
    child.wait()
    lock, _ = _lock(ops_config)
    with pytest.raises(Locked):
        with lock.hold("bob", "maint.run"):
            pass
    assert _item()["token"]["S"] == "killed-token"


def test_a_holder_on_another_host_is_never_taken_over(staging_aws, ops_config, child):
    _plant(child.pid, start_time(child.pid), host="ops-box-2")
    child.kill()
    child.wait()  # gone here, but its record names another host: nothing here can tell
    lock, _ = _lock(ops_config)
    with pytest.raises(Locked) as caught:
        with lock.hold("bob", "maint.run"):
            pass
    text = str(caught.value) + " " + (caught.value.hint or "")
    assert "host ops-box-2" in text and "since " in text
    assert f"aws dynamodb delete-item --table-name {LOCK_TABLE}" in text
    assert _item()["token"]["S"] == "killed-token"
