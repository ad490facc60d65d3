"""The sandbox state file and event log: what runs where, and what happened.

Everything the sandbox starts is recorded here, so `down` can stop exactly
those processes and drills can find the pids they inject faults into.

`<sandbox root>/state.json` (written atomically; readers never see half a file):

    {
      "version": 1,
      "root": "/.../.ops/sandbox",          # sandbox_root(environment)
      "pg_base": "/var/tmp/spywatcher-ops-1a2b3c4d",   # PostgreSQL data, archive, backups
                                            # (= <root>/postgres when the server user can enter root)
      "run_as": "postgres" | null,          # system user the PostgreSQL servers run as (null: ourselves)
      "replication": "synchronous" | "asynchronous",
      "main": "spywatcher-sandbox-db",      # the instance behind the stable endpoint
      "next_node": 3, "next_lineage": 2,    # counters for new node (n3) and archive (l2) names
      "instances": {                        # RDS-like instances, by id
        "spywatcher-sandbox-db": {
          "primary": "n1", "standby": "n2",   # node names (standby null for single-node)
          "lineage": "l1",                  # archive folder <pg_base>/archive/<lineage>
          "created_by_us": false,           # true for restores made by `db.restore`
          "created": "2026-11-25T14:03:00.000Z", "origin": "sandbox.up",
          "status": "creating" | "available" | "failed"   # restores only, while/after they are built
        }
      },
      "nodes": {                            # one PostgreSQL server each
        "n1": {
          "instance": "spywatcher-sandbox-db",
          "role": "primary" | "standby" | "single",
          "data": "<pg_base>/nodes/n1", "log": "<pg_base>/logs/n1.log",
          "port": 25432,                    # 127.0.0.1 only
          "pid": 12345,                     # postmaster pid when last started (check it is alive)
          "desired": "running" | "stopped",  # stopped: kept data of a replaced (swapped-out) pair
          "sync_names": "\"n2\"",             # primary only: synchronous_standby_names in force
          "notes": ["port 25432 was busy; moved to 25433"]
        }
      },
      "heartbeats": [{"at": "...", "wal": "000000010000000000000003", "lineage": "l1"}]
    }                                       # heartbeat commits known to be archived: "latest restorable"

Nodes are renamed never; roles move. After `db.failover` the standby node becomes
"primary" and the old primary is rebuilt as "standby"; after `db.swap` the
restored node takes the endpoint's ports and the old pair's nodes get
`desired: stopped` under the replaced instance's name.

Fault injection (drills): the primary postmaster is `nodes[instances[main].primary].pid`,
the standby's is `nodes[instances[main].standby].pid`; the walreceiver pid is
live state, read it with `SandboxDatabase.processes()` (pg_stat_wal_receiver).
A recorded pid is only trusted if /proc/<pid>/cmdline names the node's data
folder (`node_alive`), so a pid reused after a reboot is never signalled.
To lose acknowledged writes on purpose (asynchronous mode), either SIGSTOP the
walreceiver (docs/measured.md) before the writes, or call
`SandboxDatabase.pause_replication()`. `db.failover` ends a stopped walreceiver
with SIGTERM + SIGCONT before promoting (a stopped one would hold the promotion
forever; one merely resumed would deliver the WAL still in its socket).

`<sandbox root>/events.jsonl`: one JSON object per line
`{"at", "source", "code", "message"}` (fault, promote, rebuilt, data-loss...),
read back by `Database.events(since)`.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ...core.clock import iso
from ...core.errors import NotReady
from .net import pid_alive

STATE_FILE = "state.json"
EVENTS_FILE = "events.jsonl"
VERSION = 1


class StateFile:
    """Read, write (atomically) and lock `<root>/state.json`."""

    def __init__(self, root: Path, check: Callable[[], None] | None = None) -> None:
        self.root = root
        self.path = root / STATE_FILE
        # run before every read or write: a folder we may not use is a clear error, not a PermissionError
        self.check = check or (lambda: None)

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, Any]:
        """The state, or {} when there is none yet. A damaged file is a clear error."""
        self.check()
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except PermissionError:
            raise NotReady(
                f"cannot read the sandbox state file {self.path}: permission denied",
                hint="run as the user who created the sandbox, or point ops.state_dir elsewhere",
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise NotReady(
                f"the sandbox state file {self.path} is damaged (not JSON)",
                hint="`inv sandbox.reset --yes` rebuilds the sandbox from nothing (its data is lost)",
            ) from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise NotReady(
                f"the sandbox state file {self.path} has an unknown layout",
                hint="`inv sandbox.reset --yes` rebuilds the sandbox from nothing (its data is lost)",
            )
        return data

    def save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    @contextmanager
    def editing(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under an flock, so two of our processes never interleave.

        The state is saved only when the block succeeds; a failure path that changed
        something real (a process stopped, an instance failed) must save it itself.
        """
        self.check()
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "state.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self.load()
            yield state
            self.save(state)
        finally:
            os.close(fd)

    def busy(self) -> bool:
        """Another run holds the state lock right now (e.g. a restore still building)."""
        try:
            fd = os.open(self.root / "state.lock", os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we got
        return False


class EventLog:
    """Append-only sandbox event log (the sandbox's RDS events)."""

    def __init__(self, root: Path) -> None:
        self.path = root / EVENTS_FILE

    def add(self, at: datetime, code: str, message: str, source: str = "sandbox") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": iso(at), "source": source, "code": code, "message": message}) + "\n"
        with open(self.path, "a") as fh:
            fh.write(line)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
        return out


def main_instance(state: dict[str, Any]) -> dict[str, Any]:
    return state["instances"][state["main"]]


def node(state: dict[str, Any], name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    return state["nodes"].get(name)


def processes_in(folder: str) -> list[int]:
    """Processes whose working folder is `folder`: a postmaster's children chdir to the data
    folder, so this finds the orphans a SIGKILLed postmaster leaves behind."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == folder:
                out.append(int(entry))
        except OSError:
            continue
    return out


def serves(pid: int | None, data: str) -> bool:
    """`pid` is alive and is the postmaster of `data` (its command line names the folder),
    not a pid reused by another program after a reboot."""
    if not pid or not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return str(data).encode() in cmdline


def folder_pid(data: str) -> int | None:
    """The postmaster serving `data`, read from its postmaster.pid and checked in the process table."""
    try:
        with open(Path(data) / "postmaster.pid") as fh:
            pid = int(fh.readline().strip() or 0)
    except (FileNotFoundError, NotADirectoryError, PermissionError, ValueError):
        return None
    return pid if serves(pid, data) else None


def node_pid(node: dict[str, Any]) -> int | None:
    """The live postmaster of a node: the recorded pid, or else the one its data folder names.

    A server started by a run that was killed before it could record the pid is still
    found (and then adopted by `up`, stopped by `down`), never reported as stopped.
    """
    pid = node.get("pid")
    if serves(pid, node["data"]):
        return int(pid)  # type: ignore[arg-type]
    return folder_pid(node["data"])


def node_alive(node: dict[str, Any]) -> bool:
    """The node's postmaster runs (found by its recorded pid or by its data folder)."""
    return node_pid(node) is not None


def servers_under(base: str | Path) -> list[int]:
    """Every live process of the servers under `base`: a postmaster names its data folder on
    its command line, its children work in it (also after the folder was deleted)."""
    needle = str(base).rstrip("/") + "/"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == os.getpid() or not pid_alive(pid):
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if (cwd + "/").startswith(needle) or f"-D {needle}" in cmd:
            found.append(pid)
    return found
