"""Find and stop the sandbox's PostgreSQL servers by their data folders, not only by the
pids the state file recorded.

A run killed at the wrong moment (SIGKILL of `inv db.restore` while it recovers, a
`sandbox.up` that fails on its second node) can leave a server the state never got the
pid of. Every server of a sandbox has its data folder under `<pg_base>/nodes/`, so the
folder's postmaster.pid and the process table find it anyway: `up` adopts it, `status`
shows it, `down` and `--purge` stop it, and neither says "stopped" while one still runs.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from ....core.errors import OperationFailed
from ..net import pid_alive
from ..state import folder_pid, node_pid, servers_under
from . import server as pg


def node_folders(pg_base: Path) -> list[Path]:
    nodes = pg_base / "nodes"
    return sorted(p for p in nodes.iterdir() if p.is_dir()) if nodes.is_dir() else []


def unrecorded(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Servers running in a node folder that no node of the state names (e.g. the state was
    not saved before the run that started them was killed)."""
    known = {str(Path(n["data"])) for n in state.get("nodes", {}).values()}
    out = []
    for folder in node_folders(Path(state["pg_base"])):
        pid = folder_pid(str(folder))
        if pid and str(folder) not in known:
            out.append({"name": folder.name, "data": str(folder), "pid": pid})
    return out


def stop_all(
    user: pg.ServerUser, state: dict[str, Any], *, kill: bool = False, timeout: float = 30
) -> list[str]:
    """Stop every server of the sandbox: the state's nodes and anything else running in its
    folders (fast shutdown in parallel; with `kill`, SIGKILL: its data is deleted next).

    Returns the names of the servers that were running. Raises if one still runs afterwards.
    """
    base = Path(state["pg_base"])
    targets: dict[str, tuple[Path, int]] = {}
    for name, node in state.get("nodes", {}).items():
        pid = node_pid(node)
        if pid:
            targets[name] = (Path(node["data"]), pid)
    for extra in unrecorded(state):
        targets[extra["name"]] = (Path(extra["data"]), extra["pid"])
    for data, pid in targets.values():
        if kill:
            pg.kill_tree(pid, data)
        else:
            user.pg("pg_ctl", "-D", data, "-m", "fast", "-W", "stop", ok_codes=(0, 1))
    deadline = time.monotonic() + timeout
    for data, pid in targets.values():
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if pid_alive(pid):
            pg.kill_tree(pid, data)
    for node in state.get("nodes", {}).values():
        node["pid"] = None
    sweep(base)
    return list(targets)


def sweep(base: Path, timeout: float = 10) -> None:
    """SIGKILL whatever still runs under `base` (children of a killed postmaster, servers on
    deleted folders); raise naming the pids if any survives."""
    left = servers_under(base)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        left = [p for p in left if pid_alive(p)]
        time.sleep(0.01)
    if left:
        raise OperationFailed(
            f"processes under {base} still run after SIGKILL: {left}",
            hint="they may be stuck in the kernel (D state); check `ps -o pid,stat,cmd -p "
            + ",".join(map(str, left))
            + "`",
        )
