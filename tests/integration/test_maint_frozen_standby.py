"""A frozen standby refuses the maintenance run before any step (issue 13, left over).

A SIGSTOPped standby keeps its pid (the process table says it runs) and the primary's
pg_stat_replication says "streaming" until wal_sender_timeout, so the run-level database
check passed and only db-engine's own pre-check caught it, after housekeeping had run.
Now the run's "standby ready" pre-check asks the standby itself (answering, in recovery,
replaying the primary's newest WAL within prechecks.standby_max_lag_s). Real sandbox;
the freeze goes through the FaultInjector port, as the drills' do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from spywatcher_ops.core.errors import NotReady
from spywatcher_ops.core.journal import read
from spywatcher_ops.core.ports import Processes
from spywatcher_ops.maintenance import plans
from spywatcher_ops.maintenance.context import Setup, kinds
from spywatcher_ops.maintenance.run import RunOptions, run
from spywatcher_ops.maintenance.window import spec_from


def _setup(env: Any, folder: Path, body: str) -> Setup:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.yaml").write_text("environments:\n  sandbox:\n    window: always\n" + body)
    plan = plans.load("test", kinds(env.settings), folder)
    env_plan = plan.for_env("sandbox")
    return Setup(plan, env_plan, spec_from(env.settings.section("maintenance"), env_plan.window))


def _standby(env: Any) -> Processes:
    """The standby's postmaster and its children, as FaultInjector.freeze takes them."""
    from spywatcher_ops.backends.sandbox import net

    details = env.database.describe().details["standby"]
    pid = int(details["pid"])
    pids = [pid, *net.children(pid)]
    return Processes("standby and its children", tuple((p, net.start_time(p)) for p in pids))


@contextmanager
def frozen(env: Any, processes: Processes) -> Iterator[None]:
    env.faults.freeze(processes)
    try:
        yield
    finally:
        env.faults.thaw(processes)


def _maint_records(env: Any) -> list[dict[str, Any]]:
    return [r for r in read(env.journal.path) if r.get("step") in ("maint-step", "snapshot")]


def test_a_frozen_standby_refuses_the_run_before_housekeeping(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    port = env.parts.maintenance()
    port.queue_change("max_wal_senders", "12")
    roles = env.database.describe().details
    before = _maint_records(env)
    setup = _setup(env, tmp_path / "plans", "    steps: [db-housekeeping, db-engine]\n")
    try:
        with frozen(env, _standby(env)):
            assert env.database.describe().status == "available"  # what the old check saw
            started = time.monotonic()
            with pytest.raises(NotReady) as caught:
                run(env, setup, RunOptions(snapshot=False))
            took = time.monotonic() - started
        standby = roles["standby"]["node"]
        # the sandbox's own replication alarm fires first (the run-level alarms pre-check), and
        # the standby check says why in the journal
        assert caught.value.message.startswith(
            "pre-check failed: paging alarms: in ALARM (sandbox, evaluated now): spywatcher-sandbox-db-replica-lag"
        ), caught.value.message
        assert caught.value.message.endswith("this run changed nothing")
        assert took < 15, took  # bounded: a frozen server is not waited on
        assert _maint_records(env) == before  # no step started, housekeeping included; no snapshot
        assert [c.name for c in port.pending_changes()] == ["max_wal_senders"]
        checks = next(r for r in reversed(read(env.journal.path)) if r.get("step") == "prechecks")["checks"]
        found = {c["name"]: c for c in checks}
        assert [(n, found[n]["status"]) for n in ("paging alarms", "database healthy", "standby ready")] == [
            ("paging alarms", "failed"),
            ("database healthy", "ok"),
            ("standby ready", "failed"),
        ]
        assert found["standby ready"]["detail"].startswith(
            f"standby {standby} (port {roles['standby']['port']}) does not answer a query within 2 s: hung or stopped"
        ), found["standby ready"]
        # thawed, the same plan runs: the check passes and the change is applied
        outcome = run(env, setup, RunOptions(snapshot=False))
        assert outcome.state == "complete" and port.pending_changes() == []
    finally:
        for c in port.pending_changes():
            port.queue_change(c.name, c.current)


def test_a_standby_that_stopped_replaying_fails_within_the_plans_bound(
    sandbox_env: Any, tmp_path: Path
) -> None:
    """Its server answers, but WAL receipt is frozen: the record the check writes is never replayed."""
    env = sandbox_env
    setup = _setup(
        env,
        tmp_path / "plans",
        "    prechecks: {standby_max_lag_s: 1.5}\n    steps: [db-housekeeping]\n",
    )
    assert setup.env_plan.prechecks == {"standby_max_lag_s": 1.5}
    before = _maint_records(env)
    with frozen(env, env.faults.wal_receiver()):
        started = time.monotonic()
        # the sandbox's replication alarm (replay within 5 s) fires first; the plan's bound is in the journal
        with pytest.raises(
            NotReady,
            match=r"paging alarms: in ALARM \(sandbox, evaluated now\): spywatcher-sandbox-db-replica-lag",
        ):
            run(env, setup, RunOptions(snapshot=False))
        took = time.monotonic() - started
    assert 1.5 <= took < 20, took
    checks = next(r for r in reversed(read(env.journal.path)) if r.get("step") == "prechecks")["checks"]
    (ready,) = [c for c in checks if c["name"] == "standby ready"]
    assert ready["status"] == "failed"
    assert re.match(
        r"standby \S+ has not replayed the primary's WAL up to "
        r"[0-9A-F]+/[0-9A-F]+ within 1.5 s \(replayed up to [0-9A-F]+/[0-9A-F]+\)",
        ready["detail"],
    ), ready
    assert _maint_records(env) == before
