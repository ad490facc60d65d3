"""One mutating operation per environment at a time.

The sandbox uses an flock'd file (released by the kernel if the holder dies);
AWS environments use a DynamoDB conditional write (backends/aws/lock.py).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from .errors import Locked


class Lock(Protocol):
    # take_over=False: a read-only check (dr.preflight) reports a dead holder instead of replacing it.
    def hold(self, owner: str, operation: str, *, take_over: bool = True) -> AbstractContextManager[None]: ...

    @property
    def resource(self) -> str: ...  # what holds the lock: a file, a DynamoDB table (for IAM checks, output)


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def resource(self) -> str:
        return str(self.path)

    @contextmanager
    def hold(self, owner: str, operation: str, *, take_over: bool = True) -> Iterator[None]:
        # take_over is moot here: the kernel drops a dead process's flock, so no holder is ever dead.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.path.read_text(errors="replace").strip() or "{}"
                try:
                    info = json.loads(holder)
                except json.JSONDecodeError:
                    info = {}
                raise Locked(
                    f"environment is locked by {info.get('owner', '?')} running "
                    f"{info.get('operation', '?')} (pid {info.get('pid', '?')})",
                    hint="wait for it to finish; the lock frees itself when that process ends",
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"owner": owner, "operation": operation, "pid": os.getpid()}).encode())
            yield
        finally:
            os.close(fd)  # closing releases the flock
