"""backends/terraform.py's _wait: terraform's exit is seen when it happens (a pidfd), not at
Popen.wait(timeout)'s next look (it sleeps up to 50 ms between looks), and its timeout holds."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from spywatcher_ops.backends.terraform import _wait


def test_returns_the_exit_code_soon_after_the_exit():
    proc = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(3)"])
    started = time.perf_counter()
    assert _wait(proc, 30) == 3
    took = time.perf_counter() - started
    # Popen.wait(timeout) would look at 0.3 s plus up to 50 ms; the machine is shared, so a margin
    assert took < 0.3 + 0.2, took
    assert proc.returncode == 3


def test_times_out_and_leaves_the_process_running():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = time.perf_counter()
        with pytest.raises(subprocess.TimeoutExpired):
            _wait(proc, 0.3)
        assert 0.25 < time.perf_counter() - started < 5
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_an_already_reaped_process_gives_its_code_without_waiting():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    proc.wait()
    assert _wait(proc, 0.0) == 4
