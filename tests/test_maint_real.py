"""The maintenance engine on a real sandbox: housekeeping on real bloat, the
Multi-AZ style switchover measured by the probes (no acknowledged write lost),
a standby that is down, and `inv maint.run` end to end: report, two runs at
once, SIGKILL mid-step then --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spywatcher_ops.core.errors import NotReady
from spywatcher_ops.core.journal import read
from spywatcher_ops.maintenance import plans
from spywatcher_ops.maintenance import report as rep
from spywatcher_ops.maintenance.context import Setup, kinds
from spywatcher_ops.maintenance.run import RunOptions, run
from spywatcher_ops.maintenance.window import spec_from

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.real


def _setup(env: Any, folder: Path, steps: str, *, window: str = "always") -> Setup:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.yaml").write_text(
        f"environments:\n  sandbox:\n    window: {window}\n    steps: {steps}\n"
    )
    plan = plans.load("test", kinds(env.settings), folder)
    env_plan = plan.for_env("sandbox")
    return Setup(plan, env_plan, spec_from(env.settings.section("maintenance"), env_plan.window))


def _app(env: Any) -> Any:
    import psycopg

    return psycopg.connect(**env.database.connection().kwargs(), autocommit=True)


def _pids(env: Any) -> dict[str, int]:
    details = env.database.describe().details
    return {details[r]["node"]: details[r]["pid"] for r in ("primary", "standby")}


def _roles(env: Any) -> tuple[str, str]:
    inst = env.database.describe()
    return inst.details["primary"]["node"], inst.details["standby"]["node"]


def test_housekeeping_vacuums_dead_tuples_and_rebuilds_a_bloated_index(
    sandbox_env: Any, tmp_path: Path
) -> None:
    env = sandbox_env
    with _app(env) as conn:
        conn.execute("DROP TABLE IF EXISTS hk_events")
        conn.execute("CREATE TABLE hk_events (id int PRIMARY KEY, pad text)")
        conn.execute("INSERT INTO hk_events SELECT g, repeat('x', 40) FROM generate_series(1, 60000) g")
        conn.execute("ANALYZE hk_events")
        conn.execute(
            "DELETE FROM hk_events WHERE id % 10 <> 0"
        )  # 54000 dead tuples, 90 % of the index wasted
    deadline = time.monotonic() + 10
    while True:
        with _app(env) as conn:
            dead = conn.execute(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'hk_events'"
            ).fetchone()[0]
        if dead >= 50000 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    outcome = run(env, _setup(env, tmp_path / "plans", "[db-housekeeping]"), RunOptions())
    assert outcome.state == "complete", outcome.steps
    step = outcome.steps[0]
    assert step["status"] == "ok"
    vacuumed = {v["table"]: v for v in step["details"]["vacuumed"]}
    assert vacuumed["public.hk_events"]["dead_before"] >= 50000
    reindexed = {r["index"]: r for r in step["details"]["reindexed"]}
    pk = reindexed["public.hk_events_pkey"]
    assert pk["bytes_after"] < pk["bytes_before"] / 3, pk
    assert {c["name"]: c["status"] for c in step["postchecks"]}["dead tuples"] == "ok"
    # REINDEX CONCURRENTLY and VACUUM block no client: no failed attempt, at most a slower commit
    assert step["impact"]["db-write"]["failed"] == 0 and step["impact"]["db-read"]["failed"] == 0
    assert step["impact"]["db-write"]["impaired_s"] < 0.5, step["impact"]
    with _app(env) as conn:
        assert conn.execute("SELECT count(*) FROM hk_events").fetchone()[0] == 6000
        conn.execute("DROP TABLE hk_events")
    # a fresh pre-maintenance snapshot was taken first, through the db.snapshot code (tags and all)
    snaps = [s for s in env.database.list_snapshots() if s.tags.get("Purpose") == "pre-maintenance"]
    assert snaps and snaps[-1].status == "available" and snaps[-1].ours


def test_pending_change_applied_by_a_switchover_without_losing_a_write(
    sandbox_env: Any, tmp_path: Path
) -> None:
    env = sandbox_env
    port = env.parts.maintenance()
    before = _roles(env)
    with _app(env) as conn:
        current = int(conn.execute("SHOW max_connections").fetchone()[0])
    port.queue_change("max_connections", str(current + 10))
    assert [c.name for c in port.pending_changes()] == ["max_connections"]
    outcome = run(env, _setup(env, tmp_path / "plans", "[db-engine]"), RunOptions(snapshot=False))
    assert outcome.state == "complete", outcome.steps
    step = outcome.steps[0]
    assert step["status"] == "ok", step
    assert step["lost"]["db-write"] == 0
    pause = step["impact"]["db-write"]["impaired_s"]
    assert pause is not None and 0 < pause < 1.0, step["impact"]
    assert step["summary"].startswith("database writes paused ")
    assert _roles(env) == (
        before[1],
        before[0],
    )  # the standby became the primary, the old primary its standby
    assert port.pending_changes() == []
    shown = step["details"]["shown"]
    assert shown["primary"]["max_connections"] == shown["standby"]["max_connections"] == str(current + 10)
    assert env.database.describe().status == "available"


def test_a_standby_down_before_the_switchover_changes_nothing(sandbox_env: Any, tmp_path: Path) -> None:
    from spywatcher_ops.backends.sandbox import lifecycle
    from spywatcher_ops.backends.sandbox import postgres as pg

    env = sandbox_env
    port = env.parts.maintenance()
    port.queue_change("max_wal_senders", "12")
    primary, standby = _roles(env)
    state = env.database.box.load()
    node = state["nodes"][standby]
    pg.kill_tree(pg.postmaster_pid(Path(node["data"])) or node.get("pid"), Path(node["data"]))
    try:
        with pytest.raises(
            NotReady, match="pre-check failed: database healthy: .* is degraded; this run changed nothing"
        ):
            run(env, _setup(env, tmp_path / "plans", "[db-engine]"), RunOptions(snapshot=False))
        assert [c.name for c in port.pending_changes()] == ["max_wal_senders"]
        assert _roles(env)[0] == primary
    finally:
        lifecycle.up(env)
    # and with the standby back, the step applies it
    outcome = run(env, _setup(env, tmp_path / "plans2", "[db-engine]"), RunOptions(snapshot=False))
    assert outcome.state == "complete" and port.pending_changes() == []


def _inv(
    state_dir: Path, plans_dir: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(state_dir, plans_dir),
    )


def _env(state_dir: Path, plans_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "INVOKE_OPS_STATE_DIR": str(state_dir),
        "INVOKE_OPS_MAINTENANCE_PLANS_DIR": str(plans_dir),
    }


def test_inv_maint_run_end_to_end_locked_killed_and_resumed(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    state_dir = env.settings.state_dir
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n    window: always\n    steps: [db-housekeeping, db-engine]\n"
    )
    done = _inv(state_dir, plans_dir, "maint.pending", "--set", "max_locks_per_transaction=80")
    assert done.returncode == 0, done.stderr
    journal = state_dir / "journal" / "sandbox.jsonl"
    first = subprocess.Popen(
        [sys.executable, "-m", "invoke", "maint.run"],
        cwd=ROOT,
        env=_env(state_dir, plans_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        started = None
        while started is None and time.monotonic() < deadline:
            started = next(
                (
                    r
                    for r in read(journal)
                    if r.get("step") == "maint-step" and r.get("index") == 2 and r.get("status") == "started"
                ),
                None,
            )
            time.sleep(0.01)
        assert started is not None, first.communicate(timeout=60)
        # Freeze the run inside the step (the step takes 0.7 s on a quiet machine), so that the
        # second run below cannot outlast it, then kill it there.
        time.sleep(0.2)
        os.kill(first.pid, signal.SIGSTOP)
        # a second run while the first holds the environment lock
        second = _inv(state_dir, plans_dir, "maint.run")
        assert second.returncode == 3 and "locked" in second.stderr, second.stderr
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    run_id = started["op_id"]
    status = _inv(state_dir, plans_dir, "maint.status")
    assert f"UNFINISHED: run {run_id}" in status.stdout and "next step 2. db-engine" in status.stdout, (
        status.stdout
    )
    fresh = _inv(state_dir, plans_dir, "maint.run")
    assert fresh.returncode == 3 and f"--resume {run_id}" in fresh.stderr, fresh.stderr
    resumed = _inv(state_dir, plans_dir, "maint.run", "--resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = json.loads(resumed.stdout)
    assert doc["id"] == run_id and doc["state"] == "complete"
    assert [s["status"] for s in doc["steps"]] == ["ok", "ok"]
    assert len(doc["operations"]) >= 2  # the killed one and the resume
    assert env.database.describe().status == "available"
    assert env.parts.maintenance().pending_changes() == []
    report = _inv(state_dir, plans_dir, "maint.report", run_id, "--env", "sandbox")
    assert report.returncode == 0, report.stderr
    html = Path(next(ln.split(": ", 1)[1] for ln in report.stdout.splitlines() if ln.startswith("html: ")))
    page = html.read_text()
    assert "<svg" in page and "db-engine" in page and run_id in page
    built = rep.build([r for r in read(journal) if r.get("op_id") in doc["operations"]], run_id)
    assert built["state"] == "complete"
    history = _inv(state_dir, plans_dir, "maint.history", "--env", "sandbox", "--json")
    groups = {g["step"]: g for g in json.loads(history.stdout)["groups"]}
    assert groups["db-engine"]["ok"] >= 1


def test_cache_rolling_restart_replica_first_then_failover(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    before = {n.id: n.role for n in env.cache.status() if n.role in ("primary", "replica")}
    pids = {n.id: n.details.get("pid") for n in env.cache.status() if n.role in ("primary", "replica")}
    outcome = run(env, _setup(env, tmp_path / "plans", "[cache-restart]"), RunOptions(snapshot=False))
    assert outcome.state == "complete", outcome.steps
    step = outcome.steps[0]
    assert step["status"] == "ok", step
    nodes = {n.id: n for n in env.cache.status()}
    after = {k: nodes[k].role for k in before}
    assert after == {k: ("replica" if v == "primary" else "primary") for k, v in before.items()}
    assert all(nodes[k].details.get("pid") != pids[k] for k in pids)  # both really restarted
    # writes were held on the old primary until it was a replica: none acknowledged there was lost
    assert step["lost"]["cache-write"] == 0, step["lost"]
    assert step["impact"]["cache-write"]["impaired_s"] < 10.0
    codes = [e["code"] for e in step["events"]]
    assert codes.index("replica-back") < codes.index("failover") < codes.index("old-primary-back")


def test_tls_certificate_renewed_with_a_reload_and_no_failed_connection(
    sandbox_env: Any, tmp_path: Path
) -> None:
    env = sandbox_env
    port = env.parts.maintenance()
    before = {c.details["node"]: c for c in port.certificates()}
    assert before and all(c.source == "sandbox-ca" for c in before.values())  # TLS on since provisioning
    pids = _pids(env)
    # a 90-day certificate is not due within 30 days: nothing changes
    quiet = run(env, _setup(env, tmp_path / "p1", "[tls-renew]"), RunOptions(snapshot=False))
    assert quiet.steps[0]["status"] == "ok" and quiet.steps[0]["details"] == {"renewed": False}
    assert {c.details["node"]: c.id for c in port.certificates()} == {n: c.id for n, c in before.items()}
    due = "[{step: tls-renew, renew_within_days: 120, valid_days: 30}]"
    outcome = run(env, _setup(env, tmp_path / "p2", due), RunOptions(snapshot=False))
    step = outcome.steps[0]
    assert step["status"] == "ok", step
    details = step["details"]
    assert details["renewed"] and details["tls_failed"] == 0 and details["tls_connections"] >= 5
    after = {c.details["node"]: c for c in port.certificates()}
    assert set(after) == set(before)
    for node, cert in after.items():
        assert cert.id == details["serial"] != before[node].id  # the new certificate is the one served
        assert 29 <= (cert.not_after - env.clock.now()).days <= 30
    # a reload, not a restart: the same postmasters, and the probes' connections never failed
    assert _pids(env) == pids
    assert step["impact"]["db-write"]["failed"] == 0 and step["impact"]["db-read"]["failed"] == 0


def test_sigterm_mid_step_rolls_it_back_and_exits_4(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    state_dir = env.settings.state_dir
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n    window: always\n    steps: [db-engine, tls-renew]\n"
    )
    assert _inv(state_dir, plans_dir, "maint.pending", "--set", "max_prepared_transactions=5").returncode == 0
    journal = state_dir / "journal" / "sandbox.jsonl"
    seen = len(read(journal))
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "maint.run"],
        cwd=ROOT,
        env=_env(state_dir, plans_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    started = None
    while started is None and time.monotonic() < deadline:
        started = next(
            (
                r
                for r in read(journal)[seen:]
                if r.get("step") == "maint-step" and r.get("status") == "started"
            ),
            None,
        )
        time.sleep(0.01)
    assert started is not None
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert f"--resume {started['op_id']}" in err
    records = [r for r in read(journal) if r.get("op_id") == started["op_id"]]
    final = [r for r in records if r.get("step") == "maint-step" and r.get("status") != "started"]
    assert [(r["index"], r["status"]) for r in final][-1] == (2, "not-started")
    first = next(r for r in final if r["index"] == 1)
    # the step ended, or was rolled back and will run again: either way the data tier is whole
    assert first["status"] in ("ok", "interrupted"), first
    assert env.database.describe().status == "available"
    resumed = _inv(state_dir, plans_dir, "maint.run", "--resume", started["op_id"])
    assert resumed.returncode == 0, resumed.stderr
    assert env.parts.maintenance().pending_changes() == []


def test_cutoff_reached_the_rest_is_not_started_exit_1(sandbox_env: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    env = sandbox_env
    state_dir = env.settings.state_dir
    # a zone where the window below does not cross midnight, so its day is today's
    zone = next(
        z for z in ("UTC", "Asia/Tokyo", "America/New_York") if 1 <= datetime.now(ZoneInfo(z)).hour <= 22
    )
    now = datetime.now(ZoneInfo(zone))
    start, end = now - timedelta(minutes=5), now + timedelta(minutes=18)  # the cutoff 2-3 minutes from now
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir()
    (plans_dir / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n"
        f"    window: {{day: {now.strftime('%A').lower()}, start: '{start:%H:%M}', end: '{end:%H:%M}', "
        f"timezone: {zone}, notice_days: 0, cutoff_minutes: 15}}\n"
        "    steps: [tls-renew, db-housekeeping, db-engine]\n"
    )
    history = state_dir / "maintenance" / "history.jsonl"
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a") as fh:  # tls-renew is known to be quick here, housekeeping to take 10 minutes
        for step, took in [("tls-renew", 1.0)] * 20 + [("db-housekeeping", 600.0)] * 20:
            fh.write(
                json.dumps(
                    {
                        "env": "sandbox",
                        "step": step,
                        "status": "ok",
                        "duration_s": took,
                        "at": datetime.now(UTC).isoformat(),
                        "run_id": "x",
                        "impact": {},
                        "lost": {},
                    }
                )
                + "\n"
            )
    plan = _inv(state_dir, plans_dir, "maint.plan", "--json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["not_started"] == ["db-housekeeping", "db-engine"]
    done = _inv(state_dir, plans_dir, "maint.run", "--json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["state"] == "cutoff"
    assert [(s["name"], s["status"], s["reason"]) for s in doc["steps"]] == [
        ("tls-renew", "ok", None),
        ("db-housekeeping", "not-started", "cutoff"),
        ("db-engine", "not-started", "cutoff"),
    ]
    assert "error: run" in done.stderr and "cutoff" in done.stderr

    # a run in which not even the first step fits takes no pre-maintenance snapshot: nothing will change
    def snapshot_ids() -> list[str]:
        return [s["id"] for s in json.loads(_inv(state_dir, plans_dir, "db.snapshots", "--json").stdout)]

    before = snapshot_ids()
    (plans_dir / "sunday.yaml").write_text(
        (plans_dir / "sunday.yaml")
        .read_text()
        .replace("[tls-renew, db-housekeeping, db-engine]", "[db-housekeeping]")
    )
    again = _inv(state_dir, plans_dir, "maint.run", "--json")
    assert again.returncode == 1, again.stderr
    assert [(s["name"], s["status"]) for s in json.loads(again.stdout)["steps"]] == [
        ("db-housekeeping", "not-started")
    ]
    assert snapshot_ids() == before
