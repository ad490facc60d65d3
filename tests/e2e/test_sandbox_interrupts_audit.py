"""Ctrl-C at moments issue 10's own tests did not cover, found by the adversarial audit:
during `db.delete` and during `sandbox.up`. Each message must say what was really left
(nothing is rolled back by either), and the sandbox must not be wedged afterwards.
Through the real `inv` on real servers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT
from support.sandbox import server_pids_under

pytestmark = [pytest.mark.real, pytest.mark.e2e]


def inv(state_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    return subprocess.run(["inv", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def inv_interrupted(state_dir: Path, args: list[str], marker: str, timeout: float = 180) -> dict[str, Any]:
    """Run `inv ARGS` and press Ctrl-C (SIGINT) once a progress line containing `marker` appears."""
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        ["inv", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen, sent = [], False
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            proc.send_signal(signal.SIGINT)
            sent = True
            break
        if time.monotonic() > deadline:
            break
    out, err = proc.communicate(timeout=timeout)
    return {"code": proc.returncode, "stdout": out, "stderr": "".join(seen) + err, "sent": sent}


def test_ctrl_c_during_db_delete_says_what_is_left_and_a_rerun_finishes(sandbox_env):
    state_dir = Path(sandbox_env.settings.state_dir)
    made = inv(state_dir, "db.restore", "--to", "latest", "--name", "audit-del", "--yes")
    assert made.returncode == 0, made.stderr

    run = inv_interrupted(state_dir, ["db.delete", "--instance", "audit-del", "--yes"], "stopping")
    assert run["sent"], run["stderr"]
    # before: exit 4, "what was started has been rolled back", and the half-deleted instance
    # stayed "desired running": sandbox.status exited 3 on it
    assert run["code"] == 1, run["stderr"]
    assert "has been rolled back" not in run["stderr"]
    assert "delete of audit-del interrupted while stopping" in run["stderr"]
    assert "not rolled back" in run["stderr"] and "again to finish" in run["stderr"]
    state = json.loads((state_dir / "sandbox" / "state.json").read_text())
    assert state["instances"]["audit-del"]["status"] == "failed"
    status = inv(state_dir, "sandbox.status", "--json")
    assert status.returncode == 0, status.stderr

    again = inv(state_dir, "db.delete", "--instance", "audit-del", "--yes")
    assert again.returncode == 0, again.stderr
    state = json.loads((state_dir / "sandbox" / "state.json").read_text())
    assert "audit-del" not in state["instances"]
    assert not [n for n in state["nodes"].values() if n.get("instance") == "audit-del"]
    records = [
        json.loads(line) for line in (state_dir / "journal" / "sandbox.jsonl").read_text().splitlines()
    ]
    ends = [r for r in records if r.get("op") == "db.delete" and r.get("event") == "end"]
    assert [r["outcome"] for r in ends][-2:] == ["DeleteInterrupted", "ok"]


@pytest.mark.parametrize(
    ("marker", "said"),
    [
        ("starting primary", "the next `inv sandbox.up` starts over"),
        ("up: redis", "nothing was rolled back"),
    ],
)
def test_ctrl_c_during_sandbox_up_says_what_it_left(tmp_path, marker, said):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    try:
        run = inv_interrupted(state_dir, ["sandbox.up"], marker)
        assert run["sent"], run["stderr"]
        # before: exit 4 and "what was started has been rolled back", while PostgreSQL kept running
        assert run["code"] == 1, run["stderr"]
        assert "has been rolled back" not in run["stderr"]
        assert said in run["stderr"], run["stderr"]
        up = inv(state_dir, "sandbox.up")
        assert up.returncode == 0, up.stderr
        assert inv(state_dir, "sandbox.status").returncode == 0
    finally:
        state = state_dir / "sandbox" / "state.json"
        base = Path(json.loads(state.read_text())["pg_base"]) if state.exists() else None
        down = inv(state_dir, "sandbox.down", "--purge", "--yes")
        assert down.returncode == 0, down.stderr
        assert not server_pids_under(state_dir)
        if base is not None:
            assert not server_pids_under(base) and not base.exists()


def test_db_instances_lists_every_sandbox_instance_and_offers_only_deletes_db_delete_accepts(sandbox_env):
    state_dir = Path(sandbox_env.settings.state_dir)
    made = inv(state_dir, "db.restore", "--to", "latest", "--name", "audit-x", "--yes")
    assert made.returncode == 0, made.stderr
    assert inv(state_dir, "db.verify", "--instance", "audit-x").returncode == 0
    swapped = inv(state_dir, "db.swap", "--instance", "audit-x", "--yes")
    assert swapped.returncode == 0, swapped.stderr
    listed = inv(state_dir, "db.instances", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)["instances"]}
    replaced = next(i for i in rows if i.startswith("spywatcher-sandbox-db-replaced-"))
    # before: a restore named without the environment's prefix was left out of the list on the
    # sandbox, and the pair a swap replaced (made by sandbox.up, not by a restore) came with a
    # db.delete command that db.delete refuses (exit 2)
    assert replaced in rows and rows[replaced]["delete_command"] is None
    assert (
        rows[replaced]["operation"] == "db.swap: the instance spywatcher-sandbox-db replaced"
    )  # was "db.restore of sandbox.up"
    assert inv(state_dir, "db.delete", "--instance", replaced, "--yes").returncode == 2
    made = inv(state_dir, "db.restore", "--to", "latest", "--name", "audit-y", "--yes")
    assert made.returncode == 0, made.stderr
    rows = {r["id"]: r for r in json.loads(inv(state_dir, "db.instances", "--json").stdout)["instances"]}
    assert rows["audit-y"]["delete_command"] == "inv db.delete --env sandbox --instance audit-y"
    assert inv(state_dir, "db.delete", "--instance", "audit-y", "--yes").returncode == 0


def test_a_redis_server_started_but_never_recorded_is_not_shown_as_not_running(sandbox_env):
    """What a Ctrl-C in sandbox.up's Redis step leaves: a server running whose pid the state
    never got. Before, `sandbox.status` said "sentinel-2 (process: not running)", exit 3."""
    state_dir = Path(sandbox_env.settings.state_dir)
    redis_state = state_dir / "sandbox" / "redis" / "state.json"
    saved = redis_state.read_text()
    state = json.loads(saved)
    pid = state["nodes"]["sentinel-2"]["pid"]
    state["nodes"]["sentinel-2"]["pid"] = None
    redis_state.write_text(json.dumps(state))
    try:
        done = inv(state_dir, "sandbox.status", "--json")
        assert done.returncode == 0, done.stderr
        rows = {r["name"]: r for r in json.loads(done.stdout)["cache"]}
        assert rows["sentinel-2"]["alive"] is True and rows["sentinel-2"]["pid"] == pid
    finally:
        redis_state.write_text(saved)


def test_sigterm_during_a_restore_rolls_it_back_like_ctrl_c(sandbox_env):
    """A CI job's timeout or systemd sends SIGTERM: before, the process vanished mid-restore
    (exit -15, no word, no journal end) and left the new server running."""
    state_dir = Path(sandbox_env.settings.state_dir)
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        ["inv", "db.restore", "--to", "latest", "--name", "audit-term", "--yes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "copying base backup" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _out, err = proc.communicate(timeout=180)
    err = "".join(seen) + err
    assert proc.returncode == 4, err
    assert "restore audit-term interrupted while" in err and ": SIGTERM; rolled back" in err, err
    state = json.loads((state_dir / "sandbox" / "state.json").read_text())
    assert "audit-term" not in state["instances"]
    assert not [n for n in state["nodes"].values() if n.get("instance") == "audit-term"]
    records = [
        json.loads(line) for line in (state_dir / "journal" / "sandbox.jsonl").read_text().splitlines()
    ]
    end = [r for r in records if r.get("op") == "db.restore" and r.get("event") == "end"][-1]
    assert end["outcome"] == "RestoreInterrupted"


def test_a_swap_killed_before_it_built_the_standby_is_not_reported_healthy(sandbox_env):
    """SIGKILL while db.swap builds the new standby: the endpoint serves the new instance with
    no standby. Before, `sandbox.status` exited 0 (and `up` listed the rebuilt standby twice)."""
    state_dir = Path(sandbox_env.settings.state_dir)
    made = inv(state_dir, "db.restore", "--to", "latest", "--name", "audit-kill", "--yes")
    assert made.returncode == 0, made.stderr
    assert inv(state_dir, "db.verify", "--instance", "audit-kill").returncode == 0
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        ["inv", "db.swap", "--instance", "audit-kill", "--yes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "base backup for standby" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((state_dir / "sandbox" / "state.json").read_text())
    assert not state["instances"][state["main"]]["standby"]  # what the kill left
    status = inv(state_dir, "sandbox.status")
    assert status.returncode == 3, status.stdout
    assert "spywatcher-sandbox-db has no standby: `inv sandbox.up` builds one" in status.stderr
    plan = inv(state_dir, "sandbox.up", "--dry-run")
    assert "sandbox.build_standby(instance='spywatcher-sandbox-db')" in plan.stdout, plan.stdout
    up = inv(state_dir, "sandbox.up", "--json")
    assert up.returncode == 0, up.stderr
    names = [row["name"] for row in json.loads(up.stdout)["database"]]
    assert len(names) == len(set(names)), names
    assert inv(state_dir, "sandbox.status").returncode == 0


def test_ctrl_c_during_sandbox_down_says_nothing_was_rolled_back(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    try:
        assert inv(state_dir, "sandbox.up").returncode == 0
        for delay in (0.05, 0.02, 0.0, 0.0):  # down has no progress lines: Ctrl-C soon after its plan
            out = tmp_path / "down.out"
            with out.open("w") as fh:
                proc = subprocess.Popen(
                    ["inv", "sandbox.down", "--yes"],
                    cwd=ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                deadline = time.monotonic() + 60
                while "Plan:" not in out.read_text() and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(delay)
                proc.send_signal(signal.SIGINT)
                _o, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                break
            assert inv(state_dir, "sandbox.up").returncode == 0  # it finished first: again, sooner
        # before: exit 4 and "what was started has been rolled back" with half the sandbox stopped
        assert proc.returncode == 1, err
        assert "has been rolled back" not in err
        assert "sandbox.down interrupted: nothing was rolled back" in err, err
        assert inv(state_dir, "sandbox.down", "--yes").returncode == 0
    finally:
        down = inv(state_dir, "sandbox.down", "--purge", "--yes")
        assert down.returncode == 0, down.stderr
        assert not server_pids_under(state_dir)


def test_ctrl_c_while_a_failover_rebuilds_the_old_primary_says_the_failover_stands(sandbox_env):
    state_dir = Path(sandbox_env.settings.state_dir)
    assert inv(state_dir, "sandbox.up").returncode == 0
    run = inv_interrupted(state_dir, ["db.failover", "--yes"], "rebuilding")
    assert run["sent"], run["stderr"]
    # before: exit 4, "what was started has been rolled back", after a promotion that stands
    assert run["code"] == 1, run["stderr"]
    assert "has been rolled back" not in run["stderr"]
    assert "failover done: " in run["stderr"] and "nothing was rolled back" in run["stderr"], run["stderr"]
    assert inv(state_dir, "sandbox.up").returncode == 0
    assert inv(state_dir, "sandbox.status").returncode == 0


def test_ctrl_c_during_a_cache_failover_says_where_the_primary_is_after_the_repair(sandbox_env):
    state_dir = Path(sandbox_env.settings.state_dir)
    run = inv_interrupted(state_dir, ["cache.failover", "--yes"], "master still")
    assert run["sent"], run["stderr"]
    assert run["code"] == 4, run["stderr"]  # repaired: a primary and a replica again
    # before: only "interrupted; what was started has been rolled back or is in the journal",
    # while the primary may have moved to the other node
    assert (
        "the cache was repaired: a primary and a replica run again, the primary is 127.0.0.1:"
        in run["stderr"]
    )
    assert inv(state_dir, "sandbox.status").returncode == 0


def test_ctrl_c_before_a_restore_created_anything_says_so(sandbox_env):
    state_dir = Path(sandbox_env.settings.state_dir)
    run = inv_interrupted(
        state_dir,
        ["db.restore", "--to", "latest", "--name", "audit-early", "--yes"],
        "archiving the newest WAL",
    )
    assert run["sent"], run["stderr"]
    assert run["code"] == 4, run["stderr"]
    # before: the generic "what was started has been rolled back or is in the journal"
    assert (
        "restore audit-early interrupted while archiving the newest WAL (Ctrl-C): nothing was created"
        in run["stderr"]
    ), run["stderr"]
    state = json.loads((state_dir / "sandbox" / "state.json").read_text())
    assert "audit-early" not in state["instances"]


def test_after_a_rolled_back_swap_the_refusal_says_why_the_verification_no_longer_counts(sandbox_env):
    state_dir = Path(sandbox_env.settings.state_dir)
    assert inv(state_dir, "db.restore", "--to", "latest", "--name", "audit-again", "--yes").returncode == 0
    assert inv(state_dir, "db.verify", "--instance", "audit-again").returncode == 0
    run = inv_interrupted(state_dir, ["db.swap", "--instance", "audit-again", "--yes"], "as the primary")
    assert run["sent"] and run["code"] == 4, run["stderr"]
    again = inv(state_dir, "db.swap", "--instance", "audit-again", "--yes")
    assert again.returncode == 2
    # before: "no passed db.verify of it is recorded since it was created", though one was
    assert (
        "since it was last created or touched by db.restore, db.swap (a rolled-back one too" in again.stderr
    )
    assert inv(state_dir, "db.delete", "--instance", "audit-again", "--yes").returncode == 0
