"""The maintenance engine on a real sandbox: housekeeping on real bloat, the
Multi-AZ style switchover measured by the probes (no acknowledged write lost),
a standby that is down, and `inv maint.run` end to end: report, two runs at
once, SIGKILL mid-step then --resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from spywatcher_ops.core.errors import NotReady
from spywatcher_ops.core.journal import read
from spywatcher_ops.maintenance import plans
from spywatcher_ops.maintenance.context import Setup, kinds
from spywatcher_ops.maintenance.run import RunOptions, run
from spywatcher_ops.maintenance.window import spec_from

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
    from spywatcher_ops.backends.sandbox.postgres import server as pg

    env = sandbox_env
    port = env.parts.maintenance()
    port.queue_change("max_wal_senders", "12")
    primary, standby = _roles(env)
    state = env.database.box.load()
    node = state["nodes"][standby]
    pg.kill_tree(pg.postmaster_pid(Path(node["data"])) or node.get("pid"), Path(node["data"]))
    try:
        # the sandbox's replication alarm leads the refusal; the database check says degraded too
        with pytest.raises(
            NotReady,
            match=r"pre-check failed: paging alarms: in ALARM \(sandbox, evaluated now\): "
            r"spywatcher-sandbox-db-replica-lag; this run changed nothing",
        ):
            run(env, _setup(env, tmp_path / "plans", "[db-engine]"), RunOptions(snapshot=False))
        checks = next(r for r in reversed(read(env.journal.path)) if r.get("step") == "prechecks")["checks"]
        (healthy,) = [c for c in checks if c["name"] == "database healthy"]
        assert healthy["status"] == "failed" and healthy["detail"].endswith("is degraded"), healthy
        assert [c.name for c in port.pending_changes()] == ["max_wal_senders"]
        assert _roles(env)[0] == primary
    finally:
        lifecycle.up(env)
    # and with the standby back, the step applies it
    outcome = run(env, _setup(env, tmp_path / "plans2", "[db-engine]"), RunOptions(snapshot=False))
    assert outcome.state == "complete" and port.pending_changes() == []


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
