"""What rich would write, without importing rich (~25 ms of CPU), for output it would not style.

When the stream is not a terminal (so no colours) and the text is plain ASCII with nothing
rich would read as markup or an emoji code, rich writes the text as it is, and a table in
its default box at its natural width. Each function returns None when that does not hold:
the caller then uses rich. tests/unit/test_core_plain.py holds the output equal to rich's.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import IO

_EMOJI_LIKE = re.compile(r":\S*?:")  # rich's emoji codes (:name:); a false alarm only costs rich


def usable(file: IO[str]) -> bool:
    """rich would write to `file` without colours or control codes (its is_terminal is False)."""
    if "ipykernel" in sys.modules or (getattr(sys.stdin, "__module__", "") or "").startswith("idlelib"):
        return False
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        if tty_compatible == "1":
            return False
    elif os.environ.get("FORCE_COLOR") is not None:
        if os.environ["FORCE_COLOR"] != "":
            return False
    else:
        try:
            if file.isatty():
                return False
        except ValueError:
            pass
    return (getattr(file, "encoding", "utf-8") or "utf-8").lower().startswith("utf")


def safe(text: str, *, markup: bool) -> bool:
    """Printed by rich exactly as it is (`markup`: rich parses [tags] in it)."""
    return (
        text.isascii()
        and text.isprintable()
        and not (markup and "[" in text)
        and _EMOJI_LIKE.search(text) is None
    )


def width() -> int:
    """rich's console width: the first standard stream that is a terminal, COLUMNS, or 80."""
    found = None
    for fd in _std_fds():
        try:
            found = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            pass
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        found = int(columns)
    return found or 80


def _std_fds() -> list[int]:
    fds = []
    for stream, default in ((sys.__stdin__, 0), (sys.__stdout__, 1), (sys.__stderr__, 2)):
        try:
            fds.append(stream.fileno())  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # None, closed, or no descriptor: rich's default
            fds.append(default)
    return fds


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, whole: bool) -> str | None:
    """rich's Table(show_lines=False) of these cells, in its default box (HEAVY_HEAD), when it
    fits the console's width (`whole`: the width grows to fit, as Console.table does)."""
    cells = [list(columns), *[list(r) for r in rows]]
    if not rows or any(len(r) != len(columns) for r in cells):
        return None
    if not all(c == c.strip() and "  " not in c and safe(c, markup=True) for r in cells for c in r):
        return None
    sizes = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    needed = sum(s + 3 for s in sizes) + 1
    if needed > width() and not whole:
        return None

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (s + 2) for s in sizes) + right + "\n"

    def row(edge: str, values: list[str]) -> str:
        return edge + edge.join(f" {v.ljust(s)} " for v, s in zip(values, sizes, strict=True)) + edge + "\n"

    return (
        line("┏", "━", "┳", "┓")
        + row("┃", cells[0])
        + line("┡", "━", "╇", "┩")
        + "".join(row("│", r) for r in cells[1:])
        + line("└", "─", "┴", "┘")
    )
