"""The maintenance window: when the Sunday job may run, and until when a step may start.

The window is local wall time in `timezone` (Sunday 02:00-04:00 UTC by
default, from `ops.maintenance`); a plan may override it per environment, or
say `always` (a laptop sandbox). The cutoff is the window's end minus
`cutoff_minutes`: no step starts whose expected duration would cross it.
Pure functions over a `now` that the caller passes in (tests freeze it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.clock import iso
from ..core.errors import BadInput

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_CUTOFF_MINUTES = 15
ALWAYS = "always"


@dataclass(frozen=True)
class WindowSpec:
    day: str
    start: time
    end: time
    timezone: str
    notice_days: int
    cutoff_minutes: int
    always: bool = False

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        if self.always:
            return "always open (no window, no notice needed)"
        return (
            f"{self.day.capitalize()} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}, "
            f"cutoff {self.cutoff_minutes} min before the end, notice {self.notice_days} days"
        )


@dataclass(frozen=True)
class Window:
    """One concrete window. `cutoff`: the latest moment a step may still be running."""

    start: datetime  # aware, UTC
    end: datetime
    cutoff: datetime
    timezone: str
    always: bool = False

    def inside(self, now: datetime) -> bool:
        return self.always or self.start <= now < self.end

    def before_cutoff(self, now: datetime) -> bool:
        return self.always or self.start <= now < self.cutoff

    def remaining_s(self, now: datetime) -> float | None:
        """Seconds from now to the cutoff (None: always open)."""
        if self.always:
            return None
        return (self.cutoff - now).total_seconds()

    def key(self) -> str:
        """Names this window in the journal (the notice for it, the runs in it)."""
        return ALWAYS if self.always else str(iso(self.start))

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        if self.always:
            out: dict[str, Any] = {"always": True, "timezone": self.timezone}
        else:
            zone = ZoneInfo(self.timezone)
            out = {
                "always": False,
                "timezone": self.timezone,
                "start": iso(self.start),
                "end": iso(self.end),
                "cutoff": iso(self.cutoff),
                "start_local": self.start.astimezone(zone).isoformat(),
                "end_local": self.end.astimezone(zone).isoformat(),
                "cutoff_local": self.cutoff.astimezone(zone).isoformat(),
            }
        if now is not None:
            out["now"] = iso(now)
            out["inside_now"] = self.inside(now)
        return out


def _clock_time(value: Any, key: str) -> time:
    text = str(value).strip()
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise BadInput(f"maintenance.{key} {text!r}: not a time of day; use HH:MM, e.g. 02:00") from None


def spec_from(raw: dict[str, Any], override: Any = None) -> WindowSpec:
    """`ops.maintenance`, with a plan's per-environment `window:` override (a mapping or 'always')."""
    merged = dict(raw or {})
    always = False
    if isinstance(override, str):
        if override.strip().lower() != ALWAYS:
            raise BadInput(f"window {override!r}: use '{ALWAYS}' or a mapping of day/start/end/timezone")
        always = True
    elif isinstance(override, dict):
        merged.update(override)
    elif override is not None:
        raise BadInput(f"window {override!r}: use '{ALWAYS}' or a mapping of day/start/end/timezone")
    day = str(merged.get("day", "sunday")).strip().lower()
    if day not in DAYS:
        raise BadInput(f"maintenance.day {day!r}: not a weekday; accepted: {', '.join(DAYS)}")
    start = _clock_time(merged.get("start", "02:00"), "start")
    end = _clock_time(merged.get("end", "04:00"), "end")
    if end == start:
        raise BadInput(f"maintenance.end {end:%H:%M}: the same as start; the window would be empty")
    tz = str(merged.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(
            f"maintenance.timezone {tz!r}: unknown time zone; use an IANA name, e.g. UTC or Europe/Berlin"
        ) from None
    notice = merged.get("notice_days", 7)
    cutoff = merged.get("cutoff_minutes", DEFAULT_CUTOFF_MINUTES)
    for key, value in (("notice_days", notice), ("cutoff_minutes", cutoff)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadInput(f"maintenance.{key} {value!r}: use a whole number >= 0, e.g. 7")
    spec = WindowSpec(day, start, end, tz, int(notice), int(cutoff), always)
    if not always and cutoff * 60 >= _length_s(spec):
        raise BadInput(
            f"maintenance.cutoff_minutes {cutoff}: leaves no time in a "
            f"{_length_s(spec) / 60:.0f}-minute window"
        )
    return spec


def _length_s(spec: WindowSpec) -> float:
    a = datetime.combine(date(2026, 1, 4), spec.start)
    b = datetime.combine(date(2026, 1, 4), spec.end)
    if b <= a:
        b += timedelta(days=1)  # a window across midnight
    return (b - a).total_seconds()


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """Local wall time -> UTC. A time skipped by a DST change (02:30 on a spring-forward
    night) resolves with the offset before the change, i.e. the same instant as the
    wall clock after it (03:30): the window keeps its length in real time."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def window_on(spec: WindowSpec, day: date) -> Window:
    """The window that starts on local date `day` (which must be spec.day)."""
    zone = spec.zone()
    start = _at(day, spec.start, zone)
    end_day = day if spec.end > spec.start else day + timedelta(days=1)
    end = _at(end_day, spec.end, zone)
    return Window(start, end, end - timedelta(minutes=spec.cutoff_minutes), spec.timezone)


def current_or_next(spec: WindowSpec, now: datetime) -> Window:
    """The window we are in, or else the next one to start."""
    if spec.always:
        return Window(now, now, now, spec.timezone, always=True)
    zone = spec.zone()
    local_today = now.astimezone(zone).date()
    weekday = DAYS.index(spec.day)
    # yesterday too: a window across midnight may still be open
    for offset in range(-1, 8):
        day = local_today + timedelta(days=offset)
        if day.weekday() != weekday:
            continue
        win = window_on(spec, day)
        if now < win.end:
            return win
    raise AssertionError("a weekly window always has a next occurrence")


def next_after(spec: WindowSpec, now: datetime) -> Window:
    """The next window that has not started yet (what a refusal names)."""
    win = current_or_next(spec, now)
    if win.always or now < win.start:
        return win
    return current_or_next(spec, win.end + timedelta(seconds=1))


def parse_window_arg(spec: WindowSpec, value: str | None, now: datetime) -> Window:
    """--window NEXT (default: the current or next one) or a local date YYYY-MM-DD of a window day."""
    if value is None or value.strip().upper() in ("", "NEXT"):
        return current_or_next(spec, now)
    if spec.always:
        raise BadInput(f"--window {value}: this environment's window is 'always'; use NEXT")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"--window {value}: not NEXT or a date; use e.g. NEXT or 2026-12-06") from None
    if day.weekday() != DAYS.index(spec.day):
        raise BadInput(
            f"--window {value}: a {DAYS[day.weekday()]}; windows are on {spec.day}s, e.g. "
            f"{current_or_next(spec, now).start.astimezone(spec.zone()).date()}"
        )
    win = window_on(spec, day)
    if win.end <= now:
        raise BadInput(f"--window {value}: that window ended at {iso(win.end)}; give a future one or NEXT")
    return win
