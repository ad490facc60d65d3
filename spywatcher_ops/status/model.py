"""Status lines and how the parts are read: all at once, each with its own deadline.

A part is a function returning its lines. One that raises, or does not answer
within the timeout, becomes a FAILED line saying why (marked unreadable), and
the other parts still show. Parts run on daemon threads so a part stuck in a
network call cannot keep the process from exiting.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LEVELS = ("OK", "WARN", "FAILED", "SKIPPED")


@dataclass(frozen=True)
class Line:
    part: str
    level: str  # OK | WARN | FAILED | SKIPPED
    text: str
    hint: str | None = None
    unreadable: bool = False  # the part could not be read at all (error, timeout)

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "level": self.level,
            "text": self.text,
            "hint": self.hint,
            "unreadable": self.unreadable,
        }


def ok(part: str, text: str) -> Line:
    return Line(part, "OK", text)


def warn(part: str, text: str, hint: str | None = None) -> Line:
    return Line(part, "WARN", text, hint)


def failed(part: str, text: str, hint: str | None = None) -> Line:
    return Line(part, "FAILED", text, hint)


def skipped(part: str, text: str) -> Line:
    return Line(part, "SKIPPED", text)


def level(value: float, warn_at: float, fail_at: float, *, higher_is_worse: bool = True) -> str:
    if not higher_is_worse:
        value, warn_at, fail_at = -value, -warn_at, -fail_at
    if value >= fail_at:
        return "FAILED"
    if value >= warn_at:
        return "WARN"
    return "OK"


Part = Callable[[], list[Line]]


@dataclass(frozen=True)
class PartResult:
    name: str
    lines: list[Line]
    duration_s: float


def gather(
    parts: dict[str, Part], timeout: float, *, clock: Callable[[], float] = time.monotonic
) -> list[PartResult]:
    """Run every part in parallel; in the order given, each part's lines (or why it has none)."""
    done: queue.Queue[tuple[str, list[Line], float]] = queue.Queue()
    started = clock()

    def run(name: str, part: Part) -> None:
        t0 = clock()
        try:
            lines = part()
        except Exception as exc:  # noqa: BLE001 - any failure of one part is that part's FAILED line
            lines = [Line(name, "FAILED", f"could not be read: {_why(exc)}", _hint(exc), unreadable=True)]
        done.put((name, lines, clock() - t0))

    for name, part in parts.items():
        threading.Thread(target=run, args=(name, part), name=f"status-{name}", daemon=True).start()
    results: dict[str, PartResult] = {}
    deadline = started + timeout
    while len(results) < len(parts):
        left = deadline - clock()
        if left <= 0:
            break
        try:
            name, lines, took = done.get(timeout=left)
        except queue.Empty:
            break
        results[name] = PartResult(name, lines, took)
    for name in parts:
        if name not in results:
            results[name] = PartResult(
                name,
                [
                    Line(
                        name,
                        "FAILED",
                        f"did not answer within {timeout:g} s",
                        "check it alone, or raise --timeout",
                        unreadable=True,
                    )
                ],
                timeout,
            )
    return [results[name] for name in parts]


def exit_code(lines: list[Line]) -> int:
    """0 nothing FAILED (WARN allowed); 1 a part is unhealthy; 3 only unreadable parts failed."""
    if any(line.level == "FAILED" and not line.unreadable for line in lines):
        return 1
    if any(line.unreadable for line in lines):
        return 3
    return 0


def _why(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def _hint(exc: BaseException) -> str | None:
    return getattr(exc, "hint", None)
