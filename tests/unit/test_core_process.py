"""core/process.py: a recorded (pid, start time) names one process, not whichever holds the pid now."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from spywatcher_ops.core.process import process_state, same_process, start_time


def test_this_process_is_itself_only_with_its_own_start_time():
    me, started = os.getpid(), start_time(os.getpid())
    assert isinstance(started, int) and same_process(me, started) and same_process(me, None)
    assert not same_process(me, started + 1)  # the pid reused by a later process


def test_no_such_pid_and_values_that_are_no_pid():
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process can have it
    assert start_time(dead) is None and process_state(dead) is None
    for pid in (dead, 0, -1, True, "123", None, 1.5):
        assert not same_process(pid, None), pid


def test_a_zombie_is_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(child.pid)
    try:
        deadline = time.monotonic() + 30
        while process_state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)  # exited, not yet reaped: still in /proc
        assert process_state(child.pid) == "Z" and not same_process(child.pid, started)
    finally:
        child.wait()
