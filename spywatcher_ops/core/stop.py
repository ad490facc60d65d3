"""A stop request from a background watcher, honoured by the operation at its next safe point.

The AWS lock's renewer runs on a thread; when it can no longer keep the lock (renewal
failed until the lock was about to expire, or another holder took it), the operation
must not go on as if it still had it. Raising in another thread is not possible, and
interrupting the main thread at an arbitrary instant would cut a provider call in
half, so the watcher files a request here and the operation raises it at its next
safe point: every poll of a wait on provider state (core/waiting.py), where long
operations spend their time and where stopping leaves nothing half-done. It is raised
once; a rollback that runs afterwards is not interrupted again.
"""

from __future__ import annotations

import threading

from .errors import OpsError

_guard = threading.Lock()
_pending: list[OpsError] = []


def request(error: OpsError) -> None:
    """Ask the operation to stop with `error` (from any thread); the first request wins."""
    with _guard:
        if not _pending:
            _pending.append(error)


def check() -> None:
    """A safe point: raise the pending request, once."""
    with _guard:
        if not _pending:
            return
        error = _pending.pop()
    raise error


def clear() -> None:
    with _guard:
        _pending.clear()
