"""SIGKILL of `inv sandbox.up` and `inv db.restore` at every step (issue 10, item 4): what the
killed run started is found by its data folder afterwards. `up` adopts or finishes it,
`status` shows it, `down` stops it, and `down --purge --yes` leaves no process and no folder.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from support.sandbox import server_pids_under
from support.sandbox_cli import connect, inv, inv_until, state_of

from spywatcher_ops.backends.sandbox.postgres.provision import default_pg_base

pytestmark = [pytest.mark.real, pytest.mark.e2e]

UP_STEPS = [
    "initdb n1",
    "starting primary n1",
    "base backup for standby n2",
    "starting standby n2",
    "first base backup",
    "pg_verifybackup",
    "redis",
]
# after these, `up` itself is run again too (it starts over, or repairs what the killed run left)
UP_AGAIN = {"starting primary n1", "first base backup"}
RESTORE_STEPS = ["archiving the newest WAL", "copying base backup", "replaying WAL", "recovering"]


def _bases(state_dir: Path) -> list[Path]:
    root = state_dir / "sandbox"
    return [root / "postgres", default_pg_base(root)]


def _purge_leaves_nothing(state_dir: Path) -> None:
    purge = inv(state_dir, "sandbox.down", "--purge", "--yes")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    for base in _bases(state_dir):
        assert not base.exists(), f"{base} left behind"
        assert server_pids_under(base) == [], f"processes left under {base}"
    assert server_pids_under(state_dir) == []
    assert not (state_dir / "sandbox").exists()


def _every_server_is_recorded(state_dir: Path) -> None:
    """Intent, then pid: every server running in a node folder is named by the state, and a
    recorded pid, if any, is that server's."""
    from spywatcher_ops.backends.sandbox.state import folder_pid

    path = state_dir / "sandbox" / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    nodes = {n["data"]: n for n in state.get("nodes", {}).values()}
    for base in _bases(state_dir):
        for folder in sorted((base / "nodes").glob("*")):
            pid = folder_pid(str(folder))
            if pid:
                assert str(folder) in nodes, f"server {pid} in {folder} runs unrecorded"
                assert nodes[str(folder)]["pid"] in (None, pid)


@pytest.mark.parametrize("step", UP_STEPS)
def test_sigkill_of_up_at_every_step_then_purge_leaves_nothing(tmp_path, step):
    state_dir = tmp_path / "state"
    try:
        killed = inv_until(state_dir, ["sandbox.up"], step, signal.SIGKILL)
        assert killed["sent"], f"never saw {step!r}: {killed['stderr']}"
        _every_server_is_recorded(state_dir)
        if step in UP_AGAIN:
            again = inv(state_dir, "sandbox.up")  # adopts, repairs or starts over
            assert again.returncode == 0, again.stdout + again.stderr
            status = inv(state_dir, "sandbox.status")
            assert status.returncode == 0, status.stdout + status.stderr
    finally:
        _purge_leaves_nothing(state_dir)


def test_sigkill_during_a_first_up_then_purge_alone_cleans_everything(tmp_path):
    state_dir = tmp_path / "state"
    killed = inv_until(state_dir, ["sandbox.up"], "starting standby n2", signal.SIGKILL)
    assert killed["sent"]
    running = [p for base in _bases(state_dir) for p in server_pids_under(base)]
    assert running, "the killed up left no server: nothing was tested"
    down = inv(state_dir, "sandbox.down")  # never "stopped" while one runs
    assert down.returncode == 0, down.stdout + down.stderr
    assert [p for base in _bases(state_dir) for p in server_pids_under(base)] == []
    _purge_leaves_nothing(state_dir)


def test_sigkill_of_restore_at_every_step(tmp_path):
    state_dir = tmp_path / "state"
    try:
        assert inv(state_dir, "sandbox.up").returncode == 0
        from support.sandbox import sandbox_environment

        env = sandbox_environment(state_dir)
        with connect(env) as conn:  # enough WAL that replay can be caught in the middle
            conn.execute("CREATE TABLE ballast (pad text)")
            conn.execute("INSERT INTO ballast SELECT repeat('y', 1000) FROM generate_series(1, 40000)")
        for number, step in enumerate(RESTORE_STEPS):
            name = f"killed-{number}"
            killed = inv_until(
                state_dir, ["db.restore", "--to", "latest", "--name", name, "--yes"], step, signal.SIGKILL
            )
            assert killed["sent"], f"never saw {step!r}: {killed['stderr']}"
            state = state_of(state_dir)
            inst = state["instances"].get(name)
            folder = Path(state["nodes"][inst["primary"]]["data"]) if inst else None
            status = inv(state_dir, "sandbox.status", "--json")
            assert status.returncode == 0, status.stdout + status.stderr  # the main pair is fine
            if step == "recovering":
                assert folder is not None and server_pids_under(folder), "no server to find: nothing tested"
                rows = {r["name"]: r for r in json.loads(status.stdout)["database"]}
                row = rows[inst["primary"]]
                assert row["alive"] and row["pid"] and "interrupted restore" in row["role"], row
                down = inv(state_dir, "sandbox.down")  # stops it too, and does not claim otherwise
                assert down.returncode == 0, down.stdout + down.stderr
                assert server_pids_under(Path(state["pg_base"])) == []
            up = inv(state_dir, "sandbox.up")
            assert up.returncode == 0, up.stdout + up.stderr
            after = state_of(state_dir)
            assert name not in after["instances"], f"{step}: the interrupted restore is still registered"
            if folder is not None:
                assert not folder.exists() and server_pids_under(folder) == []
        restored = inv(state_dir, "db.restore", "--to", "latest", "--name", "after-all", "--yes")
        assert restored.returncode == 0, restored.stdout + restored.stderr
    finally:
        _purge_leaves_nothing(state_dir)
