"""Recovery domain functions through the Database port (RDS in moto here):
every bad input is refused before any mutating call; plans are approved or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from freezegun import freeze_time
from support.aws import REGION, STAGING_DB, aws_env
from support.clock import FakeClock

from spywatcher_ops.core.errors import BadInput, Refused
from spywatcher_ops.core.journal import read
from spywatcher_ops.core.ports import RestoreWindow
from spywatcher_ops.recovery import failover, restore, snapshot, swap, window
from spywatcher_ops.recovery.restore import RestoreRequest, check_request

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _instances() -> list[str]:
    return sorted(
        i["DBInstanceIdentifier"]
        for i in boto3.client("rds", region_name=REGION).describe_db_instances()["DBInstances"]
    )


def _yes(_plan) -> bool:
    return True


def _no(_plan) -> bool:
    return False


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RestoreRequest(to="2026-11-25T14:03:00Z", from_snapshot="s1"), "choose one"),
        (RestoreRequest(), "give --to TIME"),
        (RestoreRequest(to="2026-11-25T14:03:00"), "no zone"),
        (RestoreRequest(to="yesterday-ish"), "not a valid time"),
        (RestoreRequest(to="2026-11-26T12:00:01Z"), "in the future"),
        (RestoreRequest(to="latest", name="9lives"), "--name 9lives: not a valid instance identifier"),
        (RestoreRequest(to="latest", name="a--b"), "--name a--b"),
    ],
)
def test_checks_that_need_no_provider(request_, message):
    with pytest.raises(BadInput, match=message):
        check_request(request_, now=NOW)


def test_latest_and_zoned_times_pass():
    assert check_request(RestoreRequest(to="latest"), now=NOW).to_time is None
    checked = check_request(RestoreRequest(to="2026-11-25T15:03:00+01:00", name="Fix-1"), now=NOW)
    assert checked.to_time == datetime(2026, 11, 25, 14, 3, tzinfo=UTC) and checked.name == "fix-1"


@freeze_time(NOW)
def test_window_arithmetic_and_the_message_shows_the_window():
    w = RestoreWindow(earliest=NOW - timedelta(days=7), latest=NOW - timedelta(minutes=5), retention_days=7)
    assert window.check_inside(NOW - timedelta(days=7), w) == NOW - timedelta(days=7)
    with pytest.raises(
        BadInput,
        match=r"outside the restorable window 2026-11-19T12:00:00.000Z .. "
        r"2026-11-26T11:55:00.000Z \(backup retention 7 days\)",
    ):
        window.check_inside(NOW - timedelta(minutes=1), w)
    with pytest.raises(BadInput, match="outside"):
        window.check_inside(NOW - timedelta(days=7, seconds=1), w)


def test_restore_outside_the_window_makes_no_call(staging_aws, ops_config):
    env = aws_env(ops_config)
    before = _instances()
    too_old = (env.clock.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(BadInput, match=f"--to {too_old[:-1]}.*outside the restorable window"):
        restore.restore(env, RestoreRequest(to=too_old), approve=_yes, progress=print)
    assert _instances() == before


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RestoreRequest(to="latest", name=STAGING_DB), "already exists"),
        (
            RestoreRequest(from_snapshot="nope-1"),
            "--from-snapshot nope-1: no such snapshot of spywatcher-staging-db",
        ),
    ],
)
def test_restore_refuses_names_and_snapshots_before_any_call(staging_aws, ops_config, request_, message):
    before = _instances()
    with pytest.raises(BadInput, match=message):
        restore.restore(aws_env(ops_config), request_, approve=_yes, progress=print)
    assert _instances() == before


def test_dry_run_restore_returns_the_plan_and_creates_nothing(staging_aws, ops_config):
    outcome = restore.restore(
        aws_env(ops_config, FakeClock(NOW)), RestoreRequest(to="latest"), approve=_no, progress=print
    )
    assert not outcome.applied and outcome.new_id == "spywatcher-staging-db-restored-20261126t120000z"
    assert outcome.plan.steps[0].action == "restore_db_instance_to_point_in_time"
    assert _instances() == [STAGING_DB]


def test_restore_applies_and_journals(staging_aws, ops_config):
    env = aws_env(ops_config)
    outcome = restore.restore(env, RestoreRequest(to="latest", name="fix-1"), approve=_yes, progress=print)
    assert outcome.applied and outcome.instance is not None and outcome.instance.status == "available"
    assert _instances() == ["fix-1", STAGING_DB]
    records = read(env.settings.state_dir / "journal" / "staging.jsonl")
    assert [r["event"] for r in records] == ["start", "step", "step", "end"]
    assert records[-1]["outcome"] == "ok" and records[-1]["result"]["new_instance"] == "fix-1"


def test_snapshot_is_named_tagged_and_timed(staging_aws, ops_config):
    env = aws_env(ops_config, FakeClock(NOW))
    outcome = snapshot.take_snapshot(
        env, label="pre-deploy", copy_to_region=None, wait=True, approve=_yes, progress=print
    )
    assert outcome.snapshot is not None
    assert outcome.snapshot.id == "spywatcher-staging-pre-deploy-20261126t120000z"
    assert outcome.snapshot.tags == {
        "Environment": "staging",
        "Project": "spywatcher",
        "CostCenter": "engineering",
        "ManagedBy": "spywatcher-ops",
        "Purpose": "pre-deploy",
    }
    assert outcome.duration_s is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "Pre Deploy"}, "--label Pre Deploy: not a valid label"),
        ({"copy_to_region": "mars-1"}, "not an AWS region"),
        ({"copy_to_region": "us-west-2", "wait": False}, "drop --no-wait"),
    ],
)
def test_snapshot_bad_input(staging_aws, ops_config, kwargs, message):
    args = {"label": "manual", "copy_to_region": None, "wait": True, **kwargs}
    with pytest.raises(BadInput, match=message):
        snapshot.take_snapshot(aws_env(ops_config), approve=_yes, progress=print, **args)
    snaps = boto3.client("rds", region_name=REGION).describe_db_snapshots()["DBSnapshots"]
    assert [s["SnapshotType"] for s in snaps] == ["automated"]


def _record_verify(env, instance: str, *, ok: bool) -> None:
    """What `db.verify` journals (recovery.verify.verify), without a PostgreSQL to connect to."""
    with env.operation("db.verify", {"instance": instance}, mutating=False) as op:
        op.result = {"instance": instance, "ok": ok, "failed": [] if ok else ["connect"]}
        if not ok:
            op.outcome = "failed"


def test_swap_checks_the_instance_then_renames(staging_aws, ops_config):
    env = aws_env(ops_config, FakeClock(NOW))
    with pytest.raises(BadInput, match="--instance nope: no such instance; instances: spywatcher-staging-db"):
        swap.swap(env, "nope", approve=_yes, progress=print)
    with pytest.raises(BadInput, match="already the serving instance"):
        swap.swap(env, STAGING_DB, approve=_yes, progress=print)
    restore.restore(env, RestoreRequest(to="latest", name="fix-1"), approve=_yes, progress=print)
    # the guard: not verified -> refused (exit 2), nothing renamed
    with pytest.raises(Refused, match="no passed db.verify of it is recorded") as caught:
        swap.swap(env, "fix-1", approve=_yes, progress=print)
    assert caught.value.exit_code == 2 and _instances() == ["fix-1", STAGING_DB]
    _record_verify(env, "fix-1", ok=False)  # a failed verification does not count either
    with pytest.raises(Refused, match="no passed db.verify"):
        swap.swap(env, "fix-1", approve=_yes, progress=print)
    _record_verify(env, "fix-1", ok=True)
    outcome = swap.swap(env, "fix-1", approve=_yes, progress=print)
    assert outcome.result is not None
    assert outcome.replaced_as == "spywatcher-staging-db-replaced-20261126t120000z"
    assert _instances() == [STAGING_DB, outcome.replaced_as]
    # reversing within the same second must not reuse the name the original sits under
    back = swap.swap(env, outcome.replaced_as, approve=_yes, progress=print)
    assert back.replaced_as == "spywatcher-staging-db-replaced-20261126t120000z-2"
    assert _instances() == [STAGING_DB, back.replaced_as]
    serving = boto3.client("rds", region_name=REGION).describe_db_instances(DBInstanceIdentifier=STAGING_DB)[
        "DBInstances"
    ][0]
    assert {"Key": "ManagedBy", "Value": "terraform"} in serving["TagList"]


def test_failover_dry_run_and_apply(staging_aws, ops_config):
    env = aws_env(ops_config)
    assert not failover.failover(env, approve=_no, progress=print).applied
    outcome = failover.failover(env, approve=_yes, progress=print)
    assert outcome.applied and outcome.duration_s is not None and outcome.duration_s >= 0
