"""Wait on provider state, not on time: poll with a deadline and say what we wait for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from . import stop
from .clock import Clock
from .errors import TimedOut
from .ports import Progress, no_progress

T = TypeVar("T")


def wait_for(
    probe: Callable[[], tuple[bool, T, str]],
    *,
    what: str,
    clock: Clock,
    timeout: float,
    interval: float = 3.0,
    progress: Progress = no_progress,
) -> T:
    """Call `probe()` until it returns (done, value, status); return value.

    `status` is shown as progress. Raises TimedOut naming `what` and the last status.
    """
    deadline = clock.monotonic() + timeout
    status = "starting"
    while True:
        stop.check()  # a safe point: e.g. the environment lock was lost (core/stop.py)
        done, value, status = probe()
        progress(status)
        if done:
            return value
        if clock.monotonic() >= deadline:
            raise TimedOut(f"gave up waiting for {what} after {timeout:.0f} s; last status: {status}")
        clock.sleep(interval)
