"""sandbox.up/status/down on real processes: idempotence, repair, stray processes,
and the faults a user meets (busy port, missing binaries, a broken state folder)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from support.sandbox import sandbox_environment, server_pids_under, tracked_pids

from spywatcher_ops.backends.sandbox.net import pid_alive
from spywatcher_ops.core.errors import NotReady

pytestmark = pytest.mark.real


def test_up_down_cycles_leave_no_stray_process_and_up_repairs(pg_pair):
    box = pg_pair.box
    base = pg_pair.pg_base()
    first = {r.name: r.pid for r in box.status()}
    # a second up changes nothing and says so
    again = box.up()
    assert {r.name: r.action for r in again} == {name: "running" for name in first}
    assert {r.name: r.pid for r in again} == first
    # down stops every tracked process, and nothing else of ours survives
    stopped = box.down()
    assert sorted(stopped) == sorted(first)
    assert not [p for p in first.values() if pid_alive(p)]
    assert server_pids_under(base) == []
    assert all(not r.alive for r in box.status())
    # up starts them again, with new pids, the data kept
    restarted = box.up()
    assert {r.action for r in restarted} == {"started"}
    assert all(r.alive for r in box.status())
    # a standby whose data folder vanished is rebuilt by up
    state = pg_pair.state()
    standby = state["instances"][state["main"]]["standby"]
    box.stop_node(state, standby)
    box.statefile.save(state)
    shutil.rmtree(state["nodes"][standby]["data"])
    actions = {r.name: r.action for r in box.up()}
    assert actions[standby].startswith("rebuilt")
    assert {r.name: r.alive for r in box.status()}[standby]


def test_a_busy_port_moves_the_server_to_another_port(pg_pair):
    box = pg_pair.box
    box.down()
    state = pg_pair.state()
    primary = state["instances"][state["main"]]["primary"]
    busy = state["nodes"][primary]["port"]
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # our own TIME_WAIT leftovers
    holder.bind(("127.0.0.1", busy))
    holder.listen()
    try:
        reports = {r.name: r for r in box.up()}
    finally:
        holder.close()
    moved = reports[primary]
    assert moved.alive and moved.port != busy
    assert f"{busy} was busy" in moved.action
    # the standby follows the primary to its new port, and the endpoint names it
    info = pg_pair.database.connection()
    assert str(moved.port) in info.port.split(",")
    status = {r.name: r for r in box.status()}
    standby = pg_pair.state()["instances"][state["main"]]["standby"]
    assert status[standby].details.get("replication") == "streaming"


def test_pg_data_lives_where_the_postgres_user_can_enter(pg_pair):
    """tmp folders are private to root: the data goes to a per-sandbox folder postgres can reach."""
    state = pg_pair.state()
    base = Path(state["pg_base"])
    if os.geteuid() == 0:
        assert state["run_as"] == "postgres"
        assert base.stat().st_uid != 0 or base == pg_pair.box.root / "postgres"
        for node in state["nodes"].values():
            assert Path(node["data"]).stat().st_uid == pg_pair.box.user(state).uid
    recorded = json.loads((pg_pair.box.root / "state.json").read_text())
    assert recorded["pg_base"] == str(base)
    assert set(tracked_pids(pg_pair.state_dir)) >= {n["pid"] for n in state["nodes"].values() if n["pid"]}


def test_a_half_deleted_sandbox_is_a_clear_error_and_reset_repairs_it(pg_pair):
    """It destroys the shared pair's data and leaves a fresh, running pair behind."""
    pair = pg_pair
    state = pair.state()
    box = pair.box
    box.down()
    primary = state["instances"][state["main"]]["primary"]
    shutil.rmtree(state["nodes"][primary]["data"])
    with pytest.raises(NotReady) as caught:
        box.up()
    assert "missing" in str(caught.value) and "sandbox.reset" in (caught.value.hint or "")
    from spywatcher_ops.backends.sandbox import lifecycle

    # reset = purge + up; only the PostgreSQL half here (the Redis half is not started by this pair)
    box.purge()
    assert not Path(state["pg_base"]).exists()
    assert all(r.alive for r in box.up())
    assert lifecycle.database_url(pair.state(), "spywatcher", "spywatcher").endswith(
        "target_session_attrs=read-write"
    )


def test_up_applies_a_changed_replication_mode(pg_pair):
    from support.sandbox import PgPair

    def sync_state(pair):
        state = pair.state()
        standby = state["instances"][state["main"]]["standby"]
        return {r.name: r for r in pair.box.status()}[standby].details.get("sync_state")

    assert sync_state(pg_pair) == "sync"
    relaxed = PgPair(sandbox_environment(pg_pair.state_dir, replication="asynchronous"), pg_pair.state_dir)
    relaxed.box.up()
    assert sync_state(relaxed) == "async"
    pg_pair.box.up()  # and back: the shared pair stays synchronous
    assert sync_state(pg_pair) == "sync"


def test_window_answers_at_once_when_the_synchronous_standby_is_down(pg_pair_factory):
    """The heartbeat commit must not wait for a missing synchronous standby (it held the state lock)."""
    import threading
    import time
    from datetime import UTC, datetime

    from spywatcher_ops.backends.sandbox.postgres import server as pg

    pair = pg_pair_factory("synchronous")
    state = pair.state()
    standby = state["nodes"][state["instances"][state["main"]]["standby"]]
    pg.kill_tree(standby["pid"], Path(standby["data"]))
    before = datetime.now(UTC)
    answer: dict = {}
    # in a thread: a regression hangs forever, and the test must fail, not hang
    worker = threading.Thread(
        target=lambda: answer.update(window=pair.database.restorable_window()), daemon=True
    )
    started = time.monotonic()
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "db.window hangs while the synchronous standby is down"
    assert time.monotonic() - started < 10
    assert answer["window"].latest >= before  # a new heartbeat reached the archive
    # the lock is free again: up repairs the standby
    actions = {r.name: r.action for r in pair.box.up()}
    assert actions[state["instances"][state["main"]]["standby"]] in (
        "started",
        "rebuilt (it would not start as a standby)",
    )


def test_a_sandbox_made_before_the_marker_is_still_purged_whole(tmp_path):
    from spywatcher_ops.backends.sandbox import lifecycle
    from spywatcher_ops.backends.sandbox.paths import MARKER

    env = sandbox_environment(tmp_path / "state")
    lifecycle.up(env)
    root = env.database.box.root
    base = Path(json.loads((root / "state.json").read_text())["pg_base"])
    pids = tracked_pids(tmp_path / "state")
    for folder in (base, root / "redis"):  # as an older spywatcher-ops left them
        (folder / MARKER).unlink()
    result = lifecycle.down(env, purge=True)
    assert result["kept"] == []
    assert not base.exists() and not (root / "redis").exists()
    assert not [p for p in pids if pid_alive(p)]
    assert server_pids_under(base) == []


def test_provisioned_folders_carry_the_marker(pg_pair):
    from spywatcher_ops.backends.sandbox.paths import MARKER

    assert (pg_pair.pg_base() / MARKER).is_file()


def test_postgres_servers_run_with_the_postgres_group_only(pg_pair):
    """Run as root, a server must not keep root's group (nor root's supplementary groups);
    run as anyone else, the servers are ours and keep our own primary group."""
    import pwd

    gid = pwd.getpwnam("postgres").pw_gid if os.geteuid() == 0 else os.getgid()
    state = pg_pair.state()
    for name in (state["instances"][state["main"]]["primary"], state["instances"][state["main"]]["standby"]):
        status = Path(f"/proc/{state['nodes'][name]['pid']}/status").read_text().splitlines()
        fields = {line.split(":", 1)[0]: line.split(":", 1)[1].split() for line in status}
        assert fields["Gid"] == [str(gid)] * 4, (name, fields["Gid"])
        if os.geteuid() == 0:  # only root can drop supplementary groups
            assert fields["Groups"] in ([], [str(gid)]), (name, fields["Groups"])
