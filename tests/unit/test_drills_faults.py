"""The FaultInjector port: the sandbox's implementation on real processes (freeze, thaw,
end, kill only the same process, never a later one with the pid), and aws saying it has none."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from support.aws import aws_env

from spywatcher_ops.backends.sandbox import net
from spywatcher_ops.backends.sandbox.faults import SandboxFaults
from spywatcher_ops.backends.table import build
from spywatcher_ops.core.config import load
from spywatcher_ops.core.errors import Unsupported
from spywatcher_ops.core.ports import Processes


@pytest.fixture
def faults(ops_config):
    return SandboxFaults(build(load(ops_config), "sandbox"))


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def wait_state(pid: int, wanted: set[str | None], timeout: float = 5.0) -> str | None:
    end = time.monotonic() + timeout
    while (state := net.process_state(pid)) not in wanted and time.monotonic() < end:
        time.sleep(0.01)
    return state


def test_freeze_and_thaw_reach_the_same_process(faults, sleeper):
    target = Processes("sleeper", ((sleeper.pid, net.start_time(sleeper.pid)),))
    faults.freeze(target)
    assert wait_state(sleeper.pid, {"T"}) == "T"
    resumed, gone = faults.thaw(target)
    assert (resumed, gone) == ([sleeper.pid], [])
    assert wait_state(sleeper.pid, {"S", "R"}) in ("S", "R")


def test_a_reused_pid_is_never_signalled(faults, sleeper):
    """The journal keeps (pid, start time): a record of an earlier process with this pid is 'gone'."""
    started = net.start_time(sleeper.pid)
    assert started is not None
    other = Processes("an earlier process", ((sleeper.pid, started - 1),))
    faults.freeze(other)
    time.sleep(0.1)
    assert net.process_state(sleeper.pid) != "T"
    assert faults.thaw(other) == ([], [sleeper.pid])
    assert faults.kill(other) == [] and net.pid_alive(sleeper.pid)


def test_end_frozen_terminates_before_the_process_runs_again(faults, sleeper):
    target = Processes("sleeper", ((sleeper.pid, net.start_time(sleeper.pid)),))
    faults.freeze(target)
    assert wait_state(sleeper.pid, {"T"}) == "T"
    faults.end_frozen(target)
    assert sleeper.wait(timeout=5) == -signal.SIGTERM


def test_kill_takes_the_processes_at_once_then_what_works_in_their_folder(faults, tmp_path):
    """Like a postmaster: the listed process first, then the workers it forked since
    (not listed, re-parented once it is dead) found by the folder they work in."""
    folder = tmp_path.resolve()
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], cwd=folder)
    try:
        deadline = time.monotonic() + 5
        while len(net.children(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        kids = net.children(parent.pid)
        assert len(kids) == 2
        victims = faults.kill(Processes("tree", ((parent.pid, net.start_time(parent.pid)),), str(folder)))
        assert set(victims) == {parent.pid, *kids}
        assert parent.wait(timeout=5) == -signal.SIGKILL
        assert not any(net.pid_alive(k) for k in kids)
    finally:
        parent.kill()
        parent.wait()


def test_an_aws_environment_has_no_fault_injector(ops_config):
    env = aws_env(ops_config, name="staging")
    with pytest.raises(Unsupported, match="such drills run on sandbox environments"):
        _ = env.faults


def test_processes_round_trip_through_the_journal_form():
    p = Processes("x", ((10, 123), (11, None)))
    assert Processes.from_record("x", p.record()) == p and p.pid_list == [10, 11]
