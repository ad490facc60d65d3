"""The WAL archive's continuity, and where a recovery really ended.

A restore replays the archive from a base backup's start segment onward and stops,
without an error, at the first segment that is missing. So the newest restorable
point is bounded by the first gap after the base backup, and a restore must compare
where recovery really ended with what it was asked for (the server's own log says).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

SEGMENT_BYTES = 1 << 20  # initdb --wal-segsize=1 (postgres.initdb)
PER_ID = 0x100000000 // SEGMENT_BYTES  # segments per "xlogid" in a segment file name
SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def segno(name: str) -> int | None:
    """The segment number of a WAL file name (timeline ignored), or None for other files."""
    match = SEGMENT.match(name)
    if not match:
        return None
    return int(match.group(2), 16) * PER_ID + int(match.group(3), 16)


def segment_name(timeline: int, number: int) -> str:
    return f"{timeline:08X}{number // PER_ID:08X}{number % PER_ID:08X}"


def _segments(folder: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            number = segno(path.name)
            if number is not None:
                out.setdefault(number, path.name)
    return out


def backup_start(backup_data: Path) -> str | None:
    """The WAL file a base backup starts from (its backup_label)."""
    try:
        text = (backup_data / "backup_label").read_text()
    except (FileNotFoundError, PermissionError):
        return None
    match = re.search(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", text, re.M)
    return match.group(1) if match else None


def first_gap(archive: Path, backup_data: Path) -> str | None:
    """The first WAL segment missing between the backup's start and the newest archived one,
    or None when the archive is continuous from that backup."""
    start = backup_start(backup_data)
    if start is None:
        return None
    present = _segments(archive)
    present.update(_segments(backup_data / "pg_wal"))
    first = segno(start)
    assert first is not None
    newest = max(present, default=first)
    timeline = int(start[:8], 16)
    for number in range(first, newest + 1):
        if number in present:
            timeline = int(present[number][:8], 16)
        else:
            return segment_name(timeline, number)
    return None


def reachable(heartbeat: dict[str, Any], gap: str | None) -> bool:
    """A heartbeat commit is reachable when its segment comes before the first gap."""
    if gap is None:
        return True
    mine, missing = segno(heartbeat["wal"]), segno(gap)
    return mine is not None and missing is not None and mine < missing


# -- where recovery ended (the server log) ------------------------------------
_TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d(?::?\d\d)?)"
LAST_COMMIT = re.compile(r"last completed transaction was at log time " + _TIME)
STOPPED_AT = re.compile(
    r"recovery stopping (before|after) (?:commit|abort) of transaction \d+, time " + _TIME
)
REDO_DONE = re.compile(r"redo done at ([0-9A-F]+/[0-9A-F]+)")
NOT_REACHED = "recovery ended before configured recovery target was reached"


def _parse_time(text: str) -> datetime:
    text = text.replace(" ", "T", 1)
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    return datetime.fromisoformat(text)


def recovery_end(log_text: str) -> dict[str, Any]:
    """What the server log says about the end of recovery: the newest replayed commit, the
    LSN where redo ended, and whether a configured target was never reached."""
    out: dict[str, Any] = {
        "last_commit": None,
        "end_lsn": None,
        "target_not_reached": NOT_REACHED in log_text,
        "stopped_by_target": None,
    }
    for match in LAST_COMMIT.finditer(log_text):
        out["last_commit"] = _parse_time(match.group(1))
    for match in STOPPED_AT.finditer(log_text):
        out["stopped_by_target"] = f"{match.group(1)} the commit at {match.group(2)}"
        out["stop_time"] = _parse_time(match.group(2))
    for match in REDO_DONE.finditer(log_text):
        out["end_lsn"] = match.group(1)
    return out
