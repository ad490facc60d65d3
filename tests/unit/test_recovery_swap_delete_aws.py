"""db.swap's guard and rollback, and db.delete, on RDS (moto).

A failure is injected with botocore's own event system (a `before-call` handler that
answers one ModifyDBInstance with an RDS error), so every other call goes to moto.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from support.aws import REGION, STAGING_DB, aws_env
from support.clock import FakeClock

from spywatcher_ops.core.errors import BadInput, Refused, RolledBack
from spywatcher_ops.core.journal import read
from spywatcher_ops.recovery import delete, restore, swap
from spywatcher_ops.recovery.restore import RestoreRequest

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _yes(_plan: Any) -> bool:
    return True


def _instances() -> list[str]:
    return sorted(
        i["DBInstanceIdentifier"]
        for i in boto3.client("rds", region_name=REGION).describe_db_instances()["DBInstances"]
    )


def _verified(env: Any, instance: str) -> None:
    """What a passed `db.verify` journals (no PostgreSQL behind moto to connect to)."""
    with env.operation("db.verify", {"instance": instance}, mutating=False) as op:
        op.result = {"instance": instance, "ok": True, "failed": []}


def _fail_rename_of(client: Any, instance: str) -> list[dict[str, Any]]:
    """Make RDS refuse renaming `instance` (once); returns the calls it refused."""
    from botocore.awsrequest import AWSResponse

    refused: list[dict[str, Any]] = []

    def handler(params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body") or {}
        if (
            body.get("DBInstanceIdentifier") == instance
            and body.get("NewDBInstanceIdentifier")
            and not refused
        ):
            refused.append(dict(body))
            error = {
                "Error": {"Code": "InvalidDBInstanceState", "Message": f"{instance} is not available"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            return AWSResponse("https://rds", 400, {}, None), error
        return None

    client.meta.events.register("before-call.rds.ModifyDBInstance", handler)
    return refused


def test_swap_of_an_unavailable_instance_is_refused_and_touches_nothing(staging_aws, ops_config):
    env = aws_env(ops_config, FakeClock(NOW))
    restore.restore(env, RestoreRequest(to="latest", name="fix-1"), approve=_yes, progress=print)
    _verified(env, "fix-1")
    boto3.client("rds", region_name=REGION).stop_db_instance(DBInstanceIdentifier="fix-1")
    with pytest.raises(Refused, match="the instance is stopped, not available") as caught:
        swap.swap(env, "fix-1", approve=_yes, progress=print)
    assert caught.value.exit_code == 2
    assert _instances() == ["fix-1", STAGING_DB]
    assert not [r for r in read(env.journal.path) if r.get("op") == "db.swap"]


def test_a_verification_before_the_instance_was_rebuilt_does_not_count(staging_aws, ops_config):
    env = aws_env(ops_config, FakeClock(NOW))
    _verified(env, "fix-2")  # an older instance of the same name
    restore.restore(env, RestoreRequest(to="latest", name="fix-2"), approve=_yes, progress=print)
    with pytest.raises(Refused, match="no passed db.verify"):
        swap.swap(env, "fix-2", approve=_yes, progress=print)


def test_a_swap_that_fails_after_it_started_gives_the_original_its_name_back(staging_aws, ops_config):
    env = aws_env(ops_config, FakeClock(NOW))
    restore.restore(env, RestoreRequest(to="latest", name="fix-3"), approve=_yes, progress=print)
    _verified(env, "fix-3")
    refused = _fail_rename_of(env.database.rds, "fix-3")
    with pytest.raises(RolledBack) as caught:
        swap.swap(env, "fix-3", approve=_yes, progress=print)
    assert refused, "the injected failure was not reached"
    assert caught.value.exit_code == 4
    assert f"rolled back: {STAGING_DB} has its name back" in str(caught.value)
    assert _instances() == ["fix-3", STAGING_DB]  # no -replaced- name left
    serving = boto3.client("rds", region_name=REGION).describe_db_instances(DBInstanceIdentifier=STAGING_DB)[
        "DBInstances"
    ][0]
    assert {"Key": "ManagedBy", "Value": "terraform"} in serving["TagList"]  # the original serves
    end = [r for r in read(env.journal.path) if r.get("op") == "db.swap" and r.get("event") == "end"]
    assert end[-1]["outcome"] == "RolledBack"


def test_delete_refuses_the_live_one_and_what_we_did_not_make_and_keeps_a_final_snapshot(
    staging_aws, ops_config
):
    env = aws_env(ops_config, FakeClock(NOW))
    rds = boto3.client("rds", region_name=REGION)
    with pytest.raises(Refused, match="it is the live instance") as caught:
        delete.delete(env, STAGING_DB, final_snapshot=True, approve=_yes, progress=print)
    assert caught.value.exit_code == 2
    rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=STAGING_DB,
        TargetDBInstanceIdentifier="by-hand",
        UseLatestRestorableTime=True,
    )
    with pytest.raises(Refused, match="not created by spywatcher-ops"):
        delete.delete(env, "by-hand", final_snapshot=True, approve=_yes, progress=print)
    with pytest.raises(BadInput, match="no such instance"):
        delete.delete(env, "nope", final_snapshot=True, approve=_yes, progress=print)
    restore.restore(env, RestoreRequest(to="latest", name="fix-4"), approve=_yes, progress=print)
    dry = delete.delete(env, "fix-4", final_snapshot=True, approve=lambda _p: False, progress=print)
    assert not dry.applied and "fix-4" in _instances()
    call = dry.plan.steps[-1]
    assert call.action == "delete_db_instance" and call.params["SkipFinalSnapshot"] is False
    assert call.params["FinalDBSnapshotIdentifier"] == "fix-4-final-20261126t120000z"
    done = delete.delete(env, "fix-4", final_snapshot=True, approve=_yes, progress=print)
    assert done.applied and done.final_snapshot == "fix-4-final-20261126t120000z"
    assert _instances() == ["by-hand", STAGING_DB]
    snaps = {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]}
    assert "fix-4-final-20261126t120000z" in snaps
    ends = [r for r in read(env.journal.path) if r.get("op") == "db.delete" and r.get("event") == "end"]
    assert (
        ends[-1]["outcome"] == "ok" and ends[-1]["result"]["final_snapshot"] == "fix-4-final-20261126t120000z"
    )
    restore.restore(env, RestoreRequest(to="latest", name="fix-5"), approve=_yes, progress=print)
    plain = delete.delete(env, "fix-5", final_snapshot=False, approve=_yes, progress=print)
    assert plain.final_snapshot is None and plain.plan.steps[-1].params["SkipFinalSnapshot"] is True


def test_ctrl_c_while_rds_builds_a_restore_says_what_is_left(staging_aws, ops_config):
    """RDS goes on building the instance: the message says so instead of 'rolled back'."""
    env = aws_env(ops_config, FakeClock(NOW))
    polls: list[int] = []

    def ctrl_c(params: dict[str, Any], **_: Any) -> None:
        if (params.get("body") or {}).get("DBInstanceIdentifier") == "fix-6":
            polls.append(1)
            raise KeyboardInterrupt

    env.database.rds.meta.events.register("before-call.rds.DescribeDBInstances", ctrl_c)
    with pytest.raises(KeyboardInterrupt) as caught:
        restore.restore(env, RestoreRequest(to="latest", name="fix-6"), approve=_yes, progress=print)
    assert polls and caught.value.exit_code == 1  # type: ignore[attr-defined]
    message = str(caught.value)
    assert (
        "RDS goes on creating fix-6" in message and "inv db.delete --env staging --instance fix-6" in message
    )
    assert "fix-6" in _instances()
    end = [r for r in read(env.journal.path) if r.get("op") == "db.restore" and r.get("event") == "end"]
    assert end[-1]["outcome"] == "RestoreInterrupted"
