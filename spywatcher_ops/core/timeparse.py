"""Parsing of user-supplied times, durations and identifiers, with errors that teach."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .errors import BadInput

TIME_HELP = "use ISO 8601 with a zone, e.g. 2026-11-25T14:03:00Z, or 'latest'"


def parse_restore_time(value: str, *, flag: str, now: datetime, future_ok: bool = False) -> datetime | None:
    """'latest' -> None; otherwise an aware UTC datetime not in the future (unless `future_ok`:
    the caller refuses it itself, e.g. with the restorable window in the message)."""
    text = value.strip()
    if text.lower() == "latest":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInput(f"{flag} {value}: not a valid time; {TIME_HELP}") from None
    if moment.tzinfo is None:
        raise BadInput(f"{flag} {value}: the time has no zone; {TIME_HELP}")
    moment = moment.astimezone(UTC)
    if moment > now and not future_ok:
        raise BadInput(f"{flag} {value}: the time is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ})")
    return moment


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: str, *, flag: str) -> timedelta:
    """'90s', '10m', '2h', '1.5' (seconds)."""
    match = _DURATION.match(value.strip())
    if not match:
        raise BadInput(f"{flag} {value}: not a duration; use a number with ms, s, m, h or d, e.g. 10m")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


_RDS_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}$")


def check_db_identifier(value: str, *, flag: str = "--name") -> str:
    """RDS rules: 1-63 letters, digits, hyphens; starts with a letter; no '--', no trailing '-'."""
    if not _RDS_ID.match(value) or value.endswith("-"):
        raise BadInput(
            f"{flag} {value}: not a valid instance identifier; use 1-63 letters, digits "
            "and hyphens, starting with a letter, without '--' or a trailing '-'"
        )
    return value.lower()


_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")


def check_label(value: str, *, flag: str = "--label") -> str:
    if not _LABEL.match(value) or "--" in value:
        raise BadInput(
            f"{flag} {value}: not a valid label; use 1-32 lowercase letters, digits and single hyphens, e.g. pre-deploy"
        )
    return value
