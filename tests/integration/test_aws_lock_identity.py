"""DynamoLock (conditional put with expiry, conditional delete), caller identity,
and request ids reaching the journal through AwsClients' hook."""

from __future__ import annotations

import time

import boto3
import pytest
from support.aws import LOCK_TABLE, REGION, aws_env

from spywatcher_ops.backends.aws.identity import caller_identity
from spywatcher_ops.backends.aws.lock import DynamoLock
from spywatcher_ops.backends.aws.session import AwsClients
from spywatcher_ops.core.errors import Locked, NotReady
from spywatcher_ops.core.journal import read


def _lock(ops_config) -> DynamoLock:
    env = aws_env(ops_config)
    return DynamoLock(env, AwsClients(REGION, None))


def _item() -> dict:
    return (
        boto3.client("dynamodb", region_name=REGION)
        .get_item(TableName=LOCK_TABLE, Key={"lock_id": {"S": "staging"}}, ConsistentRead=True)
        .get("Item")
        or {}
    )


def test_second_holder_is_refused_with_who_holds_it(staging_aws, ops_config):
    first, second = _lock(ops_config), _lock(ops_config)
    with first.hold("alice", "db.restore"):
        assert _item()["owner"]["S"] == "alice"
        with pytest.raises(Locked, match="locked by alice running db.restore"):
            with second.hold("bob", "db.swap"):
                pass
        assert _item()["owner"]["S"] == "alice"  # the refused attempt changed nothing
    assert _item() == {}  # released
    with second.hold("bob", "db.swap"):
        assert _item()["owner"]["S"] == "bob"


def test_an_expired_lock_is_taken_over_and_the_old_holder_does_not_release_it(staging_aws, ops_config):
    ddb = boto3.client("dynamodb", region_name=REGION)
    # what a holder killed with SIGKILL leaves behind: an item whose expiry has passed
    ddb.put_item(
        TableName=LOCK_TABLE,
        Item={
            "lock_id": {"S": "staging"},
            "token": {"S": "dead-token"},
            "owner": {"S": "crashed"},
            "operation": {"S": "db.restore"},
            "expires_at": {"N": str(int(time.time()) - 5)},
        },
    )
    lock = _lock(ops_config)
    with lock.hold("carol", "db.snapshot"):
        assert _item()["owner"]["S"] == "carol"
        # the dead holder coming back cannot delete carol's lock (conditional on its token)
        lock._release("dead-token")
        assert _item()["owner"]["S"] == "carol"
    assert _item() == {}


def test_a_live_holder_renews_its_lock(staging_aws, ops_config):
    ops_config.ops.aws.lock_ttl_seconds = 1.5  # renewed every 0.5 s
    lock = _lock(ops_config)
    with lock.hold("alice", "db.restore"):
        acquired = _item()  # (on a loaded machine the first renewal may already have happened)
        time.sleep(1.2)
        item = _item()
        # 1.2 s later it was renewed again: a later renewal time, an expiry no earlier
        assert float(item["renewed_at"]["N"]) > float(
            (acquired.get("renewed_at") or acquired["acquired_at"])["N"]
        )
        assert int(item["expires_at"]["N"]) >= int(acquired["expires_at"]["N"])  # (whole seconds)


def test_missing_lock_table_says_how_to_create_it(staging_aws, ops_config):
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=LOCK_TABLE)
    with pytest.raises(NotReady, match="create-table --table-name spywatcher-ops-locks"):
        with _lock(ops_config).hold("alice", "db.snapshot"):
            pass


def test_caller_identity_names_account_and_arn(staging_aws):
    who = caller_identity(AwsClients(REGION, None))
    assert who["aws_account"] == "123456789012"
    assert who["aws_arn"].startswith("arn:aws:")


def test_mutating_operation_journals_identity_and_request_ids(staging_aws, ops_config):
    env = aws_env(ops_config)
    with env.operation("db.snapshot", {"label": "x", "password": "hunter2"}):
        env.database.instances()
    records = read(env.settings.state_dir / "journal" / "staging.jsonl")
    start, end = records[0], records[-1]
    assert start["who"]["aws_account"] == "123456789012" and "os_user" in start["who"]
    assert start["args"]["password"] == "***"
    assert end["outcome"] == "ok" and end["request_ids"]  # the describe call's id came through the hook
    assert "hunter2" not in (env.settings.state_dir / "journal" / "staging.jsonl").read_text()
