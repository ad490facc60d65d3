"""What db.swap says after it on AWS (moto): not the reverse command (the task prints it once,
"to reverse:"), and that connections opened before the swap keep the old, still running instance."""

from __future__ import annotations

from support.aws import STAGING_DB, aws_env

from spywatcher_ops.recovery.swap import SwapOutcome


def test_rds_swap_says_old_connections_keep_the_old_instance(staging_aws, ops_config):
    db = aws_env(ops_config).database
    new = db.restore(db.plan_restore("fix-notes", to_time=None, snapshot_id=None), progress=lambda _s: None)
    replaced = f"{STAGING_DB}-replaced-20261126t120000z"
    warnings = SwapOutcome(db.plan_swap(new.id, replaced), True, replaced).warnings
    assert not any("inv db.swap" in w for w in warnings), warnings
    assert any("keep talking to the old instance" in w and replaced in w for w in warnings), warnings
    assert any("DNS" in w for w in warnings), warnings
