"""Append-only audit journal: one JSON line per event, fsync'd, never rewritten.

Every mutation writes a `start` record, optional `step` records, and an `end`
record with the outcome. An operation interrupted by SIGKILL leaves a `start`
without an `end`: `unfinished()` finds those so the next run can clean up.
Secrets never reach the journal: argument names that look secret are masked.

A crash (or a full disk) in the middle of a write leaves a torn last line. The
writer never appends onto it (that would glue the new record to the fragment and
lose both): under an flock it checks the file ends with a newline, and if not it
terminates the fragment (append-only: nothing is rewritten or removed), appends a
`journal-repaired` record saying how many bytes were torn, and says so on stderr.
Readers skip lines that are not JSON and count them (`read(...).corrupt`). A
journal deleted or replaced while an operation writes to it is said on stderr and
in a `journal-restarted` record in the new file.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import Clock, iso
from .errors import OpsError

SECRET_WORDS = ("password", "secret", "token", "passwd", "credential", "auth")


def redact(value: Any, key: str = "") -> Any:
    if any(word in key.lower() for word in SECRET_WORDS):
        return "***"
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers; uid is still true
        return f"uid:{os.getuid()}"


@dataclass
class Operation:
    """Handle given to the code inside `Journal.operation()`."""

    journal: Journal
    id: str
    name: str
    env: str
    request_ids: list[str] = field(default_factory=list)
    outcome: str | None = None  # set to override "ok" (e.g. "dry-run", "target-missed")
    result: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str, status: str, **data: Any) -> None:
        self.journal.write(
            {
                "event": "step",
                "op_id": self.id,
                "op": self.name,
                "env": self.env,
                "step": name,
                "status": status,
                **redact(data),
            }
        )

    def request_id(self, rid: str) -> None:
        if rid and rid not in self.request_ids:
            self.request_ids.append(rid)


class Journal:
    def __init__(self, path: Path, clock: Clock, who: dict[str, str] | None = None) -> None:
        self.path = path
        self.clock = clock
        self.who = who or {"os_user": os_user()}
        self.current: Operation | None = None
        # (device, inode, size after our last write): a file that is another one now, or
        # shorter than we left it, was deleted, replaced or cut while we used it.
        self._file: tuple[int, int, int] | None = None

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"at": iso(self.clock.now()), **record}
        line = json.dumps(record, default=str, sort_keys=False) + "\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the tail check and the append, as one step
            st = os.fstat(fd)
            notes = self._restarted(st) + self._repair_tail(fd, st.st_size)
            os.write(fd, b"".join(self._line(n) for n in notes) + line.encode())
            os.fsync(fd)
            self._file = (st.st_dev, st.st_ino, os.fstat(fd).st_size)
        finally:
            os.close(fd)  # releases the flock

    def _line(self, record: dict[str, Any]) -> bytes:
        return (json.dumps({"at": iso(self.clock.now()), **record}, default=str) + "\n").encode()

    def _restarted(self, st: os.stat_result) -> list[dict[str, Any]]:
        if self._file is None or (self._file[:2] == (st.st_dev, st.st_ino) and st.st_size >= self._file[2]):
            return []
        _say(
            f"journal {self.path} was deleted or replaced while this process wrote to it; "
            "records from now on start a new file (the earlier ones are in the old one, if kept)"
        )
        return [
            {
                "event": "journal-restarted",
                "op_id": self.current.id if self.current else None,
                "op": self.current.name if self.current else None,
                "detail": "the journal file was deleted or replaced during the operation",
            }
        ]

    def _repair_tail(self, fd: int, size: int) -> list[dict[str, Any]]:
        torn = terminate_torn_tail(fd, size, self.path)
        if torn is None:
            return []
        return [
            {
                "event": "journal-repaired",
                "torn_bytes": torn,
                "detail": "the previous line was torn by an interrupted write; terminated, not parsed",
            }
        ]

    @contextmanager
    def operation(self, name: str, env: str, args: dict[str, Any]) -> Iterator[Operation]:
        # 12 random hex digits, as uuid4().hex[:12] gave (its version digit is the 13th);
        # uuid imports platform: ~4 ms of every task's start-up
        op = Operation(self, os.urandom(6).hex(), name, env)
        started = self.clock.monotonic()
        self.write(
            {"event": "start", "op_id": op.id, "op": name, "env": env, "who": self.who, "args": redact(args)}
        )
        previous, self.current = self.current, op
        outcome, error = "ok", None
        try:
            yield op
        except OpsError as exc:
            outcome, error = type(exc).__name__, str(exc)
            raise
        except KeyboardInterrupt:
            outcome, error = "interrupted", "KeyboardInterrupt"
            raise
        except BaseException as exc:
            outcome, error = "crashed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.current = previous
            self.write(
                {
                    "event": "end",
                    "op_id": op.id,
                    "op": name,
                    "env": env,
                    "outcome": op.outcome if outcome == "ok" and op.outcome else outcome,
                    "error": error,
                    "duration_s": round(self.clock.monotonic() - started, 3),
                    "request_ids": op.request_ids,
                    "result": redact(op.result),
                }
            )

    def note_request_id(self, rid: str) -> None:
        """Called by provider hooks (boto3 after-call) with each response's request id."""
        if self.current is not None:
            self.current.request_id(rid)


def terminate_torn_tail(fd: int, size: int, path: Path) -> int | None:
    """Terminate a torn last line (a write cut short) of an append-only JSON-lines file open
    on `fd` (O_APPEND, flock'd by the caller), so the next line is not glued onto it. Returns
    the torn line's length, or None when the file ends cleanly. Said on stderr."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return None
    start = max(0, size - 65536)
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n")
    torn = len(tail) - (cut + 1) if cut >= 0 else size
    os.write(fd, b"\n")
    _say(
        f"{path}: the last line was torn ({torn} bytes, an interrupted write); "
        "terminated it (kept, skipped by readers) before appending"
    )
    return torn


def _say(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")
    sys.stderr.flush()


class Records(list[dict[str, Any]]):
    """The records of a journal, with the line numbers of lines that were not records."""

    corrupt: list[int]

    def __init__(self, records: list[dict[str, Any]] = (), corrupt: list[int] | None = None) -> None:  # type: ignore[assignment]
        super().__init__(records)
        self.corrupt = corrupt or []

    def damage(self, path: Path) -> str | None:
        """One line for the user when lines were skipped, else None."""
        if not self.corrupt:
            return None
        lines = ", ".join(str(n) for n in self.corrupt[:5]) + (" ..." if len(self.corrupt) > 5 else "")
        return f"journal {path}: skipped {len(self.corrupt)} line(s) that are not records (line {lines})"


def read(path: Path) -> Records:
    """Every record; lines that are not JSON objects (a torn write) are skipped and counted."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return Records()
    records: list[dict[str, Any]] = []
    corrupt: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            corrupt.append(number)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            corrupt.append(number)
    return Records(records, corrupt)


def unfinished(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`start` records with no matching `end`: operations that were killed."""
    ended = {r["op_id"] for r in records if r.get("event") in ("end", "cleaned")}
    return [r for r in records if r.get("event") == "start" and r["op_id"] not in ended]
