"""A frozen standby fails a drill's preflight (auditor, issues 13/15).

A SIGSTOPped standby keeps its pid, so describe() says Multi-AZ on and "available" and the
drills' standby check passed: a db-failover drill then failed over onto a server that could
not answer. The check now also asks DataMaintenance.standby_ready (answering, in recovery,
replaying the primary's newest WAL), the port the maintenance run's pre-check uses. Real
sandbox; the freeze goes through the FaultInjector port, as the drills' own faults do.
"""

from __future__ import annotations

import time
from typing import Any

from spywatcher_ops.core.ports import Processes
from spywatcher_ops.drills.preflight import standby_ready


def _standby(env: Any) -> Processes:
    from spywatcher_ops.backends.sandbox import net

    pid = int(env.database.describe().details["standby"]["pid"])
    return Processes(
        "standby and its children", tuple((p, net.start_time(p)) for p in [pid, *net.children(pid)])
    )


def test_a_frozen_standby_fails_the_drill_preflight_and_a_thawed_one_passes(sandbox_env: Any) -> None:
    env = sandbox_env
    roles = env.database.describe().details
    ok = standby_ready(env)
    assert ok.status == "ok", ok
    assert "replayed the primary's newest WAL" in ok.detail
    frozen = _standby(env)
    env.faults.freeze(frozen)
    try:
        assert env.database.describe().status == "available"  # all the old check looked at
        started = time.monotonic()
        check = standby_ready(env)
        took = time.monotonic() - started
    finally:
        env.faults.thaw(frozen)
    assert check.status == "failed", check
    assert check.detail.startswith(
        f"standby {roles['standby']['node']} (port {roles['standby']['port']}) does not answer a query"
    ), check.detail
    assert took < 10, took  # bounded: a frozen server is not waited on
    # and with a deadline (the re-check after a drill), a standby that thaws in time passes
    assert standby_ready(env, deadline_s=5.0).status == "ok"
