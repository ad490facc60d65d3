"""The sandbox's FaultInjector (core/ports.py): signals to its own PostgreSQL processes.

What the measurement proofs need (drills/scenarios/proofs.py): a hung primary
(SIGSTOP of the postmaster and its children), and a loss of known size, which
loopback replication never produces by itself: stop WAL *receipt* (SIGSTOP of
the standby's walreceiver), let N writes be acknowledged, kill the primary
(docs/measured.md, "Asynchronous loss does not appear on loopback").
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.errors import NotReady
from ...core.ports import Processes
from . import net
from .postgres.database import SandboxDatabase
from .state import processes_in

if TYPE_CHECKING:
    from ...core.environment import Environment


class SandboxFaults:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    @property
    def db(self) -> SandboxDatabase:  # built when a fault needs the servers (a thaw needs only pids)
        return SandboxDatabase(self.environment)

    def _primary(self) -> dict[str, Any]:
        primary: dict[str, Any] = self.db.processes()["primary"]
        if not primary.get("pid"):
            raise NotReady("the sandbox primary is not running", hint="run `inv sandbox.up`")
        return primary

    @staticmethod
    def _now(what: str, pids: list[int]) -> Processes:
        return Processes(what, tuple((pid, net.start_time(pid)) for pid in pids))

    def primary(self) -> Processes:
        primary = self._primary()
        pid = int(primary["pid"])
        found = self._now("primary and its children", [pid, *net.children(pid)])
        return Processes(found.what, found.pids, str(Path(primary["data"]).resolve()))

    def wal_receiver(self) -> Processes:
        receiver = (self.db.processes().get("walreceiver") or {}).get("pid")
        if not receiver:
            raise NotReady("the standby has no walreceiver: it is not streaming", hint="run `inv sandbox.up`")
        return self._now("standby walreceiver", [int(receiver)])

    def freeze(self, processes: Processes) -> None:
        net.signal_same(list(processes.pids), signal.SIGSTOP)

    def thaw(self, processes: Processes) -> tuple[list[int], list[int]]:
        return net.signal_same(list(processes.pids), signal.SIGCONT)

    def end_frozen(self, processes: Processes) -> None:
        # SIGTERM is held while the process is stopped and handled first on SIGCONT,
        # before it reads anything more from its socket: what was in flight is lost.
        net.signal_same(list(processes.pids), signal.SIGTERM)
        net.signal_same(list(processes.pids), signal.SIGCONT)

    def kill(self, processes: Processes) -> list[int]:
        # Nothing slow between the caller's decision and the signal (db-async-loss counts the
        # writes acknowledged until this instant): the processes were found beforehand.
        same = [pid for pid, started in processes.pids if net.start_time(pid) == started]
        if not same:
            return []
        net.signal_all(same, signal.SIGKILL)  # first, before any scan of /proc (slow under load)
        # Backends forked since were not in the list; their postmaster is gone, so they are
        # found by the folder they work in (a backend could still acknowledge a commit).
        later = processes_in(processes.folder) if processes.folder else []
        victims = list(dict.fromkeys([*same, *later]))
        net.signal_all(later, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(net.pid_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.005)
        return victims

    def replication_caught_up(self) -> bool:
        port = int(self._primary()["port"])
        rows = self.db.box.try_query(
            port, "SELECT bool_and(write_lsn >= pg_current_wal_lsn()) FROM pg_stat_replication"
        )
        return bool(rows and rows[0][0])

    def synchronous_standbys(self) -> str | None:
        rows = self.db.box.try_query(int(self._primary()["port"]), "SHOW synchronous_standby_names")
        return str(rows[0][0]) if rows else None
