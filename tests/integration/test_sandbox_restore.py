"""Point-in-time and snapshot restores on the real sandbox PostgreSQL pair."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spywatcher_ops.core.errors import BadInput, OperationFailed

pytestmark = pytest.mark.real


def _write_rows(pair, first: int, count: int, *, gap: float = 0.01) -> list[tuple[int, datetime]]:
    """One row per transaction; returns (id, time the commit was acknowledged)."""
    acked = []
    with pair.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe (id int PRIMARY KEY, note text)")
        for i in range(first, first + count):
            conn.execute("INSERT INTO probe VALUES (%s, 'x')", (i,))
            acked.append((i, datetime.now(UTC)))
            time.sleep(gap)
    return acked


def _ids(pair, instance: str) -> list[int]:
    with pair.connect(instance) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM probe ORDER BY id").fetchall()]


def test_restore_to_time_has_every_row_up_to_t_and_none_after(pg_pair):
    db = pg_pair.database
    acked = _write_rows(pg_pair, 1, 12)
    # T = the moment row 6 was acknowledged: rows 1-6 committed at or before T,
    # rows 7-12 started after T, so they committed after it.
    target = acked[5][1]
    assert acked[6][1] > target
    window = db.restorable_window()
    assert window.earliest <= target <= window.latest
    plan = db.plan_restore("pitr-one", to_time=target, snapshot_id=None)
    instance = db.restore(plan)
    assert instance.created_by_us and instance.status == "available"
    assert instance.port not in {
        n["port"] for n in pg_pair.state()["nodes"].values() if n["instance"] != "pitr-one"
    }
    assert _ids(pg_pair, "pitr-one") == list(range(1, 7))
    # registered like a new RDS instance, and deletable because we created it
    assert "pitr-one" in {i.id for i in db.instances()}
    db.delete_instance(db.plan_delete_instance("pitr-one"))
    assert "pitr-one" not in {i.id for i in db.instances()}


def test_restore_from_snapshot_equals_the_snapshot(pg_pair):
    db = pg_pair.database
    _write_rows(pg_pair, 100, 5, gap=0)
    with pg_pair.connect() as conn:
        before = conn.execute("SELECT id, note FROM probe ORDER BY id").fetchall()
    snap = db.create_snapshot(db.plan_snapshot("snap-equal", {"Purpose": "test"}, None), wait=True)
    assert snap.ours and snap.kind == "manual" and snap.tags == {"Purpose": "test"} and snap.size_bytes
    _write_rows(pg_pair, 200, 3, gap=0)  # after the snapshot: must not appear
    with pg_pair.connect(autocommit=True) as conn:
        conn.execute("DELETE FROM probe WHERE id = 100")
    db.restore(db.plan_restore("from-snap", to_time=None, snapshot_id="snap-equal"))
    with pg_pair.connect("from-snap") as conn:
        after = conn.execute("SELECT id, note FROM probe ORDER BY id").fetchall()
    assert after == before
    # prune semantics: only our backups can be deleted; the automated one is refused
    auto = [s for s in db.list_snapshots() if s.kind == "automated"]
    assert auto and not auto[0].ours
    with pytest.raises(Exception, match="never deleted"):
        db.plan_delete_snapshots([auto[0].id])
    db.delete_snapshots(db.plan_delete_snapshots(["snap-equal"]))
    assert "snap-equal" not in {s.id for s in db.list_snapshots()}


def test_restore_target_outside_the_window_is_refused_with_the_window(pg_pair):
    db = pg_pair.database
    window = db.restorable_window()
    for bad in (window.earliest - timedelta(seconds=30), datetime.now(UTC) + timedelta(hours=1)):
        with pytest.raises(BadInput) as caught:
            db.plan_restore("never-made", to_time=bad, snapshot_id=None)
        assert caught.value.exit_code == 2
        assert "outside the restorable window" in str(caught.value)
        assert window.earliest.strftime("%Y-%m-%dT%H:%M:%S") in str(caught.value)
    assert "never-made" not in pg_pair.state()["instances"]


def test_disk_full_during_a_base_backup_removes_the_partial_backup(pg_pair, tmp_path):
    import subprocess

    db = pg_pair.database
    backups = pg_pair.pg_base() / "backups"
    user = pg_pair.box.user(pg_pair.state())
    subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size=2m,uid={user.uid},gid={user.gid},mode=0700",
            "tmpfs",
            str(backups),
        ],
        check=True,
    )
    try:
        with pytest.raises(OperationFailed) as caught:
            db.create_snapshot(db.plan_snapshot("too-big", {}, None), wait=True)
        assert "disk full" in str(caught.value) and "partial backup was removed" in str(caught.value)
        assert not (backups / "too-big").exists()
        assert list(Path(backups).iterdir()) == []
    finally:
        subprocess.run(["umount", str(backups)], check=True)
    assert "too-big" not in {s.id for s in db.list_snapshots()}


def test_restore_to_latest_has_every_acknowledged_row(pg_pair):
    db = pg_pair.database
    acked = _write_rows(pg_pair, 300, 3, gap=0)
    db.restore(db.plan_restore("latest-one", to_time=None, snapshot_id=None))
    assert {i for i, _ in acked} <= set(_ids(pg_pair, "latest-one"))
    db.delete_instance(db.plan_delete_instance("latest-one"))


def test_a_failed_restore_is_rolled_back_or_kept_marked_failed(pg_pair):
    """By default a failed restore leaves nothing (server stopped, folder removed); with
    keep_failed it is kept, stopped and marked failed, and the state on disk says so."""
    import json

    from spywatcher_ops.core.errors import RolledBack

    db = pg_pair.database
    db.create_snapshot(db.plan_snapshot("broken-copy", {}, None), wait=True)
    folder = pg_pair.pg_base() / "backups" / "broken-copy" / "data"
    (folder / "global" / "pg_control").unlink()  # a corrupted copy: the server cannot start from it
    try:
        nodes_before = set(pg_pair.state()["nodes"])
        with pytest.raises(RolledBack) as caught:
            db.restore(db.plan_restore("broken-gone", to_time=None, snapshot_id="broken-copy"))
        assert caught.value.exit_code == 4
        message = str(caught.value)
        assert "restore broken-gone failed while replaying WAL" in message and "rolled back" in message
        on_disk = json.loads((pg_pair.box.root / "state.json").read_text())
        assert "broken-gone" not in on_disk["instances"] and set(on_disk["nodes"]) == nodes_before
        removed = message.split("its folder ")[1].split(" removed")[0]
        assert not Path(removed).exists()
        assert "restore-rolled-back" in {e.code for e in db.events(datetime.now(UTC) - timedelta(minutes=5))}

        with pytest.raises(OperationFailed) as kept:
            db.restore(
                db.plan_restore("broken-one", to_time=None, snapshot_id="broken-copy"), keep_failed=True
            )
        assert "restore broken-one failed" in str(kept.value) and "kept, stopped and marked failed" in str(
            kept.value
        )
        on_disk = json.loads((pg_pair.box.root / "state.json").read_text())
        assert on_disk["instances"]["broken-one"]["status"] == "failed"
        assert db.describe("broken-one").status == "failed"
        node = on_disk["nodes"][on_disk["instances"]["broken-one"]["primary"]]
        assert node["pid"] is None and node["desired"] == "stopped" and Path(node["data"]).is_dir()
        assert "restore-failed" in {e.code for e in db.events(datetime.now(UTC) - timedelta(minutes=5))}
        pg_pair.box.up()  # a kept failed restore is left alone: up neither starts nor fails on it
        assert db.describe("broken-one").status == "failed"
    finally:
        if "broken-one" in pg_pair.state()["instances"]:
            db.delete_instance(db.plan_delete_instance("broken-one"))
        db.delete_snapshots(db.plan_delete_snapshots(["broken-copy"]))
    assert "broken-one" not in pg_pair.state()["instances"]


@pytest.mark.real
def test_an_interrupted_swap_leaves_one_name_for_the_live_servers(pg_pair_factory):
    from spywatcher_ops.backends.sandbox.postgres.operations import swap
    from spywatcher_ops.core.errors import Refused

    pair = pg_pair_factory()
    db, box = pair.database, pair.box
    db.restore(db.plan_restore("fix-1", to_time=None, snapshot_id=None))
    state = pair.state()
    state_before = pair.state()
    main = state["main"]
    real_stop = box.stop_node
    calls = []

    def interrupted(state_, name):  # Ctrl-C while the old pair is being stopped (once)
        real_stop(state_, name)
        calls.append(name)
        if len(calls) == 1:
            raise KeyboardInterrupt

    box.stop_node = interrupted
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            swap(box, state, "fix-1", "old-main", lambda _s: None)
    finally:
        del box.stop_node
    assert caught.value.exit_code == 4  # a RolledBack that is still an interrupt
    assert "rolled back: spywatcher-sandbox-db serves again" in str(caught.value)
    assert db.describe().status == "available"  # put back by itself, no `up` needed
    saved = pair.state()
    assert "old-main" not in saved["instances"]  # no second name for the main instance's servers
    for name in (saved["instances"][main]["primary"], saved["instances"][main]["standby"]):
        assert saved["nodes"][name]["instance"] == main and saved["nodes"][name]["desired"] == "running"
        assert saved["nodes"][name]["port"] == state_before["nodes"][name]["port"]  # the endpoint's ports
    box.up()  # repairs what the interruption stopped
    assert db.describe().status == "available"
    # and whatever the state says, servers shared by two instances are never deleted
    current = pair.state()
    current["instances"]["alias"] = {**current["instances"][main], "created_by_us": True}
    box.statefile.save(current)
    with pytest.raises(Refused, match="its servers also belong to"):
        db.plan_delete_instance("alias")
