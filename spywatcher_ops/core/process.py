"""Which process a pid is, from /proc/PID/stat (Linux).

A pid alone does not name a process: after it exits the kernel hands the number
to a later one. The start time (field 22, clock ticks since boot) tells them
apart, so a record of (pid, start time) is checked against both.
"""

from __future__ import annotations

import os


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and
    parentheses): [0] is field 3 (state), [19] is field 22 (start time). None: no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_state(pid: int) -> str | None:
    """R, S, T (stopped), Z (zombie) ...; None when there is no such process."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot): tells a process from a later
    one that got the same pid, so a signal recorded for one never reaches the other."""
    fields = stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def same_process(pid: object, started: object) -> bool:
    """Is the process recorded as (pid, started) still running? A pid that is gone, a zombie,
    or now another process (a different start time) is not. `started` None (a record made
    before start times were kept): the pid alone decides."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if not os.path.exists("/proc/self/stat"):  # no /proc (not Linux): the pid alone, by signal 0
        return _signal0(pid)
    if process_state(pid) in (None, "Z", "X"):
        return False
    if started is None:
        return True
    return start_time(pid) == started


def _signal0(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, someone else's
        return True
    return True


def boot_id() -> str:
    """This boot of this host (Linux); '' where there is none. A start time in clock ticks
    since boot names a process only within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def pid_namespace() -> str:
    """The pid namespace of this process ('' where unknown): two containers may share a host
    name and a boot, but a pid means something only in its own namespace."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
