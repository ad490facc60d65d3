"""Fail safe when it matters (issue 10, items 1-3), through the real `inv` on real servers:
a gap in the WAL archive, an interrupted restore, a failed restore kept on request, and
`db.delete`. Each reproduces what the issue saw going wrong before.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.sandbox import server_pids_under
from support.sandbox_cli import connect, inv, inv_until, state_of

pytestmark = [pytest.mark.real, pytest.mark.e2e]


@pytest.fixture(scope="module")
def box(sandbox_env):
    return sandbox_env, Path(sandbox_env.settings.state_dir)


def _archived(node: dict[str, Any], segment: str) -> bool:
    status = Path(node["data"]) / "pg_wal" / "archive_status"
    return not (status / f"{segment}.ready").exists()


def test_a_gap_in_the_wal_archive_bounds_the_window_and_a_short_restore_fails(box, tmp_path):
    env, state_dir = box
    with connect(env) as conn:
        conn.execute("CREATE TABLE gapped (id int PRIMARY KEY, pad text)")
        segments = []
        for batch in range(4):  # 4,000 rows over 4 WAL segments
            segments.append(conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0])
            conn.execute(
                "INSERT INTO gapped SELECT g, repeat('x', 300) FROM generate_series(%s::int, %s::int) g",
                (batch * 1000 + 1, batch * 1000 + 1000),
            )
            conn.execute("SELECT pg_switch_wal()")
        conn.execute("SELECT pg_switch_wal()")
    state = state_of(state_dir)
    main = state["instances"][state["main"]]
    archive = Path(state["pg_base"]) / "archive" / main["lineage"]
    missing = segments[1]  # the second batch's segment
    deadline = time.monotonic() + 30
    while not (
        (archive / missing).exists()
        and all(_archived(state["nodes"][n], missing) for n in (main["primary"], main["standby"]))
    ):
        assert time.monotonic() < deadline, f"{missing} never archived by both nodes"
        time.sleep(0.05)
    moved = tmp_path / missing
    shutil.move(str(archive / missing), moved)
    try:
        window = inv(state_dir, "db.window", "--json")
        assert window.returncode == 0, window.stderr
        shown = json.loads(window.stdout)
        assert shown["gap"] == missing, shown
        assert f"segment {missing} is missing" in window.stderr
        after_gap = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # every row was written before it
        beyond = inv(state_dir, "db.restore", "--to", after_gap, "--name", "beyond-gap", "--yes")
        assert beyond.returncode == 2, beyond.stdout + beyond.stderr
        assert "outside the restorable window" in beyond.stderr and f"WAL segment {missing}" in beyond.stderr

        short = inv(state_dir, "db.restore", "--to", "latest", "--name", "short-one", "--yes")
        assert short.returncode == 1, short.stdout + short.stderr
        errors = [ln for ln in short.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "stopped short of its target" in errors[0], short.stderr
        assert f"WAL segment {missing} is missing from the archive" in errors[0]
        assert "recovery ended at" in errors[0] and "kept, stopped and marked failed" in errors[0]
        assert state_of(state_dir)["instances"]["short-one"]["status"] == "failed"
        assert state_of(state_dir)["instances"]["short-one"]["recovery"]["reached"] is False

        checked = inv(state_dir, "db.verify", "--instance", "short-one")
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert "expected for rows written after" not in checked.stdout
        assert "FAILED status: instance is failed" in checked.stdout
        refused = inv(state_dir, "db.swap", "--instance", "short-one", "--yes")
        assert refused.returncode == 2 and "is failed, not available" in refused.stderr
        assert inv(state_dir, "sandbox.status").returncode == 0  # a kept failed restore wedges nothing
    finally:
        shutil.move(str(moved), archive / missing)
    gone = inv(state_dir, "db.delete", "--instance", "short-one", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "short-one" not in state_of(state_dir)["instances"]

    whole = inv(state_dir, "db.restore", "--to", "latest", "--name", "whole-one", "--yes", "--verify")
    assert whole.returncode == 0, whole.stdout + whole.stderr
    with connect(env, "whole-one") as conn:
        assert conn.execute("SELECT count(*) FROM gapped").fetchone()[0] == 4000
    assert inv(state_dir, "db.delete", "--instance", "whole-one", "--yes").returncode == 0
    live = inv(state_dir, "db.delete", "--instance", state["main"], "--yes")
    assert live.returncode == 2 and "it is the live instance" in live.stderr


def _more_wal(env: Any, mb: int = 40) -> None:
    """Enough WAL that replay takes long enough to be interrupted in the middle."""
    with connect(env) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ballast (pad text)")
        conn.execute(
            "INSERT INTO ballast SELECT repeat('y', 1000) FROM generate_series(1, %s::int)", (mb * 1000,)
        )


def test_ctrl_c_during_a_restore_really_rolls_it_back(box):
    env, state_dir = box
    _more_wal(env)
    before = state_of(state_dir)
    run = inv_until(
        state_dir,
        ["db.restore", "--to", "latest", "--name", "cut-one", "--yes"],
        "replaying WAL",
        signal.SIGINT,
    )
    assert run["sent"] and run["code"] == 4, run
    error = next(ln for ln in run["stderr"].splitlines() if ln.startswith("error:"))
    assert "restore cut-one interrupted while replaying WAL: Ctrl-C; rolled back:" in error, error
    assert "folder" in error and "removed" in error
    after = state_of(state_dir)
    assert "cut-one" not in after["instances"] and set(after["nodes"]) == set(before["nodes"])
    folder = Path(after["pg_base"]) / "nodes" / f"n{after['next_node'] - 1}"
    assert not folder.exists() and server_pids_under(folder) == []
    # nothing is wedged: status, up and a swap attempt all behave
    assert inv(state_dir, "sandbox.status").returncode == 0
    assert inv(state_dir, "sandbox.up").returncode == 0

    kept = inv_until(
        state_dir,
        ["db.restore", "--to", "latest", "--name", "cut-two", "--keep-failed", "--yes"],
        "replaying WAL",
        signal.SIGINT,
    )
    assert kept["sent"] and kept["code"] == 1, kept
    assert "cut-two is kept, stopped and marked failed" in kept["stderr"]
    node = state_of(state_dir)["nodes"][state_of(state_dir)["instances"]["cut-two"]["primary"]]
    assert node["desired"] == "stopped" and Path(node["data"]).is_dir()
    assert server_pids_under(Path(node["data"])) == []
    status = inv(state_dir, "sandbox.status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    row = next(r for r in json.loads(status.stdout)["database"] if r["instance"] == "cut-two")
    assert row["role"] == "failed restore" and not row["alive"]
    assert inv(state_dir, "sandbox.up").returncode == 0
    drill = inv(state_dir, "dr.drill", "--scenario", "db-failover", "--yes", timeout=300)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert inv(state_dir, "db.delete", "--instance", "cut-two", "--dry-run").returncode == 0
    assert "cut-two" in state_of(state_dir)["instances"]
    gone = inv(state_dir, "db.delete", "--instance", "cut-two", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not Path(node["data"]).exists()
    journal = [json.loads(ln) for ln in (state_dir / "journal" / "sandbox.jsonl").read_text().splitlines()]
    assert any(
        r.get("op") == "db.delete" and r.get("event") == "end" and r.get("outcome") == "ok" for r in journal
    )


def test_a_swap_that_fails_after_it_started_puts_the_original_back(box):
    env, state_dir = box
    made = inv(state_dir, "db.restore", "--to", "latest", "--name", "swap-bad", "--yes", "--verify")
    assert made.returncode == 0, made.stdout + made.stderr
    before = state_of(state_dir)
    main = before["instances"][before["main"]]
    ports = {n: before["nodes"][n]["port"] for n in (main["primary"], main["standby"])}
    incoming = before["nodes"][before["instances"]["swap-bad"]["primary"]]
    # a setting the running server has not read yet: it cannot start again once the swap stops it
    with open(Path(incoming["data"]) / "postgresql.conf", "a") as fh:
        fh.write("shared_buffers = 'plenty'\n")
    swapped = inv(state_dir, "db.swap", "--instance", "swap-bad", "--yes")
    assert swapped.returncode == 4, swapped.stdout + swapped.stderr
    error = next(ln for ln in swapped.stderr.splitlines() if ln.startswith("error:"))
    assert "swap of swap-bad failed while starting" in error, error
    assert f"rolled back: {before['main']} serves again from {main['primary']} and {main['standby']}" in error
    assert "swap-bad is stopped: it did not start again" in error
    after = state_of(state_dir)
    assert after["main"] == before["main"] and after["instances"][after["main"]] == main
    assert {n: after["nodes"][n]["port"] for n in ports} == ports
    assert not [i for i in after["instances"] if "-replaced-" in i]
    with connect(env) as conn:  # the database serves writes again, on its endpoint
        conn.execute("CREATE TABLE IF NOT EXISTS after_swap (id int)")
        conn.execute("INSERT INTO after_swap VALUES (1)")
    assert inv(state_dir, "sandbox.status").returncode == 0
    with open(Path(incoming["data"]) / "postgresql.conf") as fh:
        text = fh.read().replace("shared_buffers = 'plenty'\n", "")
    Path(incoming["data"], "postgresql.conf").write_text(text)
    assert inv(state_dir, "db.delete", "--instance", "swap-bad", "--yes").returncode == 0
