"""A journal as a crash leaves it (the torn-journal tests of the unit and e2e tiers)."""

from __future__ import annotations

from pathlib import Path


def tear(path: Path, keep: int = 40) -> bytes:
    """Cut the last line short, as a crash in the middle of its write leaves it."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    torn = data[: start + keep]
    path.write_bytes(torn)
    return torn
