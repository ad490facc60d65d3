"""The sandbox's own alarms, through `inv`: every one a runbook covers, the maintenance
run-level alarms pre-check evaluates them (not production's names, which the sandbox does
not have), and a responder walks `replication-degraded` on a real sandbox whose standby
was killed, through a real terminal, until the standby replays again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from support.paths import ROOT
from support.walk import Walk

from spywatcher_ops.backends.sandbox import lifecycle

INV = [sys.executable, "-m", "invoke"]


def _environ(env: Any) -> dict[str, str]:
    return {
        **os.environ,
        "INVOKE_OPS_STATE_DIR": str(env.settings.state_dir),
        "COLUMNS": "250",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def _inv(env: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INV, *args],
        cwd=ROOT,
        env=_environ(env),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _alarms_check(env: Any) -> dict[str, Any]:
    done = _inv(env, "maint.plan", "--env", "sandbox", "--json")
    assert done.stdout, done.stderr
    checks = json.loads(done.stdout)["prechecks"]
    return next(c for c in checks if c["name"] == "paging alarms")


def _standby(env: Any) -> Any:
    from spywatcher_ops.backends.sandbox import net
    from spywatcher_ops.core.ports import Processes

    pid = int(env.database.describe().details["standby"]["pid"])
    return Processes("standby", tuple((p, net.start_time(p)) for p in [pid, *net.children(pid)]))


def test_healthy_sandbox_alarms_precheck_is_ok_with_the_count_evaluated(sandbox_env: Any) -> None:
    check = _alarms_check(sandbox_env)
    assert check["status"] == "ok", check
    # the sandbox's own 8, measured now; not "none of 14 paging alarm(s)" (production's names)
    assert check["detail"].startswith("none of 8 sandbox alarm(s) in ALARM, evaluated now"), check
    assert "spywatcher-production" not in check["detail"]


def test_killed_cache_replica_fails_the_alarms_precheck_naming_the_sandbox_alarm(sandbox_env: Any) -> None:
    env = sandbox_env
    replica = next(n for n in env.cache.status() if n.role == "replica")
    os.kill(int(replica.details["pid"]), signal.SIGKILL)
    try:
        check = _alarms_check(env)
        plan = _inv(env, "maint.plan", "--env", "sandbox")
        oncall = _inv(env, "oncall", "--env", "sandbox")
    finally:
        lifecycle.up(env)
    assert check["status"] == "failed", check
    assert check["detail"] == "in ALARM (sandbox, evaluated now): spywatcher-sandbox-cache-replica-link", (
        check
    )
    assert (
        "FAILED paging alarms: in ALARM (sandbox, evaluated now): spywatcher-sandbox-cache-replica-link"
        in (plan.stdout)
    ), plan.stdout
    # covered now: exit 0 and the runbook to run
    assert oncall.returncode == 0, oncall.stdout + oncall.stderr
    assert "inv runbook.run cache-redundancy-lost --env sandbox" in oncall.stdout
    assert _alarms_check(env)["status"] == "ok"  # repaired: the replica is back and linked


def test_frozen_standby_fails_the_alarms_precheck_naming_the_sandbox_alarm(sandbox_env: Any) -> None:
    env = sandbox_env
    standby = _standby(env)
    env.faults.freeze(standby)
    try:
        check = _alarms_check(env)
        oncall = _inv(env, "oncall", "--env", "sandbox")
    finally:
        env.faults.thaw(standby)
    assert check["status"] == "failed", check
    assert "spywatcher-sandbox-db-replica-lag" in check["detail"], check
    assert oncall.returncode == 0, oncall.stdout + oncall.stderr
    assert "inv runbook.run replication-degraded --env sandbox" in oncall.stdout


def test_responder_walks_replication_degraded_with_the_standby_killed(sandbox_env: Any) -> None:
    env = sandbox_env
    env.faults.kill(_standby(env))
    try:
        walk = Walk(
            ["runbook.run", "replication-degraded", "--env", "sandbox", "--incident", "INC-3107"],
            _environ(env),
        )
        child, expect = walk.child, walk.expect

        expect(r"Step 1/6: What the alarms measured")
        expect(r"\$ inv oncall --env sandbox --all")
        expect(r"ALARM\s+spywatcher-sandbox-db-replica-lag")
        expect(r"standby n2 \(port \d+\) does not answer")
        expect(r"Step 2/6: How far a restore can go now")
        expect(r"latest restorable:")
        expect(r"Step 3/6: Fix the archive, if it fails")
        expect(r"Done\?")
        child.sendline("skip")  # the archive is fine: only the standby is down
        expect(r"Step 4/6: Restart or rebuild the standby")
        expect(r"\$ inv sandbox.up --env sandbox")
        expect(r"Run it\?")
        child.sendline("y")
        expect(r"sandbox sandbox is up")
        expect(r"Step 5/6: Verify")
        expect(r"\$ inv sandbox.status --env sandbox")
        expect(r"\$ inv db.window --env sandbox")
        expect(r"Step 6/6: Record")
        expect(r"Done\?")
        child.sendline("note")
        expect("Note for the timeline:")
        child.sendline("standby n2 killed; restarted by sandbox.up")
        expect(r"Done\?")
        child.sendline("y")
        output = walk.finish()
    finally:
        lifecycle.up(env)  # whatever the walk did, leave the module's sandbox whole
    assert child.exitstatus == 0, output[-3000:]
    assert "exited" not in output, output[-3000:]  # no diagnostic failed: the verify step passed
    # the standby replays again: the alarm is OK, measured by a fresh inv
    listed = json.loads(_inv(env, "oncall", "--all", "--json").stdout)
    assert "spywatcher-sandbox-db-replica-lag" not in [a["alarm"] for a in listed["alarms"]]
    timeline = _inv(env, "runbook.timeline", "--incident", "INC-3107", "--format", "md")
    assert "standby n2 killed; restarted by sandbox.up" in timeline.stdout, timeline.stdout


def test_responder_walks_cache_redundancy_lost_with_the_replica_killed(sandbox_env: Any) -> None:
    env = sandbox_env
    replica = next(n for n in env.cache.status() if n.role == "replica")
    os.kill(int(replica.details["pid"]), signal.SIGKILL)
    try:
        walk = Walk(
            ["runbook.run", "spywatcher-sandbox-cache-replica-link", "--env", "sandbox"], _environ(env)
        )
        child, expect = walk.child, walk.expect

        # the alarm's name, as the pager shows it, finds the runbook
        expect(r"Runbook: Cache redundancy lost \(cache-redundancy-lost\)")
        expect(r"Step 1/4: See which node is missing")
        expect(r"\$ inv cache.status --env sandbox")
        expect(rf"{replica.id}")
        expect(r"Step 2/4: Restart what is down")
        expect(r"Run it\?")
        child.sendline("y")
        expect(r"Step 3/4: Verify")
        expect(r"\$ inv cache.status --env sandbox")
        expect(r"Step 4/4: Record")
        expect(r"Done\?")
        child.sendline("y")
        output = walk.finish()
    finally:
        lifecycle.up(env)
    assert child.exitstatus == 0, output[-3000:]
    assert "exited" not in output, output[-3000:]
    linked = [n for n in env.cache.status() if n.role == "replica"]
    assert linked and all(n.alive and n.details.get("link") == "up" for n in linked), linked
