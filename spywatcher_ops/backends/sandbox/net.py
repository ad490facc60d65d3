"""Ports and pids of the sandbox's servers, once.

provision.py (PostgreSQL) and redis/servers.py (Redis) each had their own
port_free / pick_port / pid_alive, and the copies had drifted (different port
ranges and random functions; one counted a dead 'X' process as alive). This
module is the one copy; both use it. Reading /proc/PID/stat is core/process.py's (the
drill run index checks its pid with it too).
"""

from __future__ import annotations

import os
import random
import signal
import socket

from ...core.errors import NotReady
from ...core.process import process_state, stat_fields
from ...core.process import start_time as start_time  # net.start_time: faults.py and the tests

HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999), where an outgoing connection can take a
# port between our check and the server's bind (docs/measured.md, "Ports").
PORT_RANGE = (20000, 32000)


def port_free(port: int, host: str = HOST) -> bool:
    """Nothing listens on `port`. SO_REUSEADDR like the servers themselves: TIME_WAIT
    leftovers of our own (or a killed server's) connections do not make a port busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(taken: set[int]) -> int:
    """A free loopback port in PORT_RANGE, not already given to another node."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*PORT_RANGE)
        if port not in taken and port_free(port):
            return port
    raise NotReady(f"no free loopback port found in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def pid_alive(pid: int | None) -> bool:
    """`pid` exists and is neither a zombie (Z) nor dead (X)."""
    if not pid:
        return False
    return process_state(pid) not in (None, "Z", "X")


def children(pid: int) -> list[int]:
    """Direct children of `pid` (a postmaster's backends and helpers)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields and int(fields[1]) == pid:
                out.append(int(entry))
    return out


def signal_all(pids: list[int], sig: int) -> list[int]:
    """Send `sig` to each pid still there; the pids it reached."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent.append(pid)
        except ProcessLookupError:
            pass
    return sent


def signal_same(pids: list[tuple[int, int | None]], sig: int = signal.SIGCONT) -> tuple[list[int], list[int]]:
    """Signal each (pid, start time) only if it is still that process: (sent, gone)."""
    sent, gone = [], []
    for pid, started in pids:
        if start_time(pid) != started or not signal_all([pid], sig):
            gone.append(pid)
        else:
            sent.append(pid)
    return sent, gone
