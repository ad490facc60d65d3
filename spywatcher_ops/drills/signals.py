"""SIGTERM becomes an exception in the main thread, so `finally` blocks (the
rollback) run exactly as they do for Ctrl-C. A second signal while the
rollback runs is noted and ignored: the rollback must finish."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM (or SIGHUP) during a drill."""


@contextmanager
def terminate_as_exception() -> Iterator[list[int]]:
    """Inside the block, SIGTERM/SIGHUP raise Terminated once; later ones are recorded only.
    Yields the list of signals received. No-op outside the main thread."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Terminated(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_deferred = threading.Event()  # set while a shielded block holds back a signal


def deferred_signal() -> bool:
    """True when a signal arrived during the current rollback: long waits in it (a re-check
    polling for minutes) stop early instead of holding the operator's Ctrl-C for that long."""
    return _deferred.is_set()


@contextmanager
def shielded() -> Iterator[list[int]]:
    """Defer SIGTERM/SIGHUP/SIGINT while the block (a rollback) runs. Yields the
    signals that arrived meanwhile: the caller must act on them afterwards (stop
    the suite), not forget them."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    sigs = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def hold(signum: int, _frame: Any) -> None:
        pending.append(signum)
        _deferred.set()

    previous = {sig: signal.signal(sig, hold) for sig in sigs}
    try:
        yield pending
    finally:
        _deferred.clear()
        for sig, old in previous.items():
            signal.signal(sig, old)
