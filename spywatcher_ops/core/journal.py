"""Append-only audit journal: one JSON line per event, fsync'd, never rewritten.

Every mutation writes a `start` record, optional `step` records, and an `end`
record with the outcome. An operation interrupted by SIGKILL leaves a `start`
without an `end`: `unfinished()` finds those so the next run can clean up.
Secrets never reach the journal: argument names that look secret are masked.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
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
            {"event": "step", "op_id": self.id, "op": self.name, "env": self.env,
             "step": name, "status": status, **redact(data)}
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

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"at": iso(self.clock.now()), **record}
        line = json.dumps(record, default=str, sort_keys=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def operation(self, name: str, env: str, args: dict[str, Any]) -> Iterator[Operation]:
        op = Operation(self, uuid.uuid4().hex[:12], name, env)
        started = self.clock.monotonic()
        self.write({"event": "start", "op_id": op.id, "op": name, "env": env,
                    "who": self.who, "args": redact(args)})
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
            self.write({"event": "end", "op_id": op.id, "op": name, "env": env,
                        "outcome": op.outcome if outcome == "ok" and op.outcome else outcome,
                        "error": error, "duration_s": round(self.clock.monotonic() - started, 3),
                        "request_ids": op.request_ids, "result": redact(op.result)})

    def note_request_id(self, rid: str) -> None:
        """Called by provider hooks (boto3 after-call) with each response's request id."""
        if self.current is not None:
            self.current.request_id(rid)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash; the rest is still good
    return records


def unfinished(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`start` records with no matching `end`: operations that were killed."""
    ended = {r["op_id"] for r in records if r.get("event") in ("end", "cleaned")}
    return [r for r in records if r.get("event") == "start" and r["op_id"] not in ended]
