"""The maintenance window: every boundary, under a frozen clock, in UTC and across a DST change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from spywatcher_ops.core.errors import BadInput
from spywatcher_ops.maintenance.window import current_or_next, next_after, parse_window_arg, spec_from

DEFAULTS = {
    "day": "sunday",
    "start": "02:00",
    "end": "04:00",
    "timezone": "UTC",
    "notice_days": 7,
    "cutoff_minutes": 15,
}


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("frozen", "inside", "before_cutoff", "start"),
    [
        ("2026-12-05T23:59:00Z", False, False, "2026-12-06T02:00:00+00:00"),  # Saturday 23:59
        ("2026-12-06T01:59:59Z", False, False, "2026-12-06T02:00:00+00:00"),
        ("2026-12-06T02:00:00Z", True, True, "2026-12-06T02:00:00+00:00"),
        ("2026-12-06T03:44:59Z", True, True, "2026-12-06T02:00:00+00:00"),
        ("2026-12-06T03:45:00Z", True, False, "2026-12-06T02:00:00+00:00"),  # the cutoff second
        ("2026-12-06T03:59:59Z", True, False, "2026-12-06T02:00:00+00:00"),
        ("2026-12-06T04:00:00Z", False, False, "2026-12-13T02:00:00+00:00"),  # closed: next Sunday
    ],
)
def test_window_boundaries(frozen: str, inside: bool, before_cutoff: bool, start: str) -> None:
    spec = spec_from(DEFAULTS)
    with freeze_time(frozen):
        now = _now()
        win = current_or_next(spec, now)
        assert win.inside(now) is inside
        assert win.before_cutoff(now) is before_cutoff
        assert win.start.isoformat() == start
        assert (win.end - win.start).total_seconds() == 7200
        assert (win.end - win.cutoff).total_seconds() == 900


def test_next_after_inside_a_window_names_the_following_one() -> None:
    spec = spec_from(DEFAULTS)
    with freeze_time("2026-12-06T02:30:00Z"):
        assert next_after(spec, _now()).start.isoformat() == "2026-12-13T02:00:00+00:00"


def test_window_in_a_zone_across_the_spring_dst_change() -> None:
    # Europe/Berlin goes from CET (+1) to CEST (+2) at 02:00 on Sunday 2027-03-28: 02:00 local
    # does not exist that night; the window starts at the instant that is 03:00 CEST.
    spec = spec_from({**DEFAULTS, "timezone": "Europe/Berlin"})
    with freeze_time("2027-03-21T12:00:00Z"):
        before = next_after(spec, _now())
    assert before.start.isoformat() == "2027-03-28T01:00:00+00:00"
    with freeze_time("2027-03-28T12:00:00Z"):
        after = next_after(spec, _now())
    assert after.start.isoformat() == "2027-04-04T00:00:00+00:00"  # 02:00 CEST
    assert after.to_dict()["start_local"] == "2027-04-04T02:00:00+02:00"
    with freeze_time("2027-03-28T00:59:59Z"):
        assert not current_or_next(spec, _now()).inside(_now())
    with freeze_time("2027-03-28T01:00:00Z"):
        assert current_or_next(spec, _now()).inside(_now())


def test_window_in_a_zone_across_the_autumn_dst_change() -> None:
    # America/New_York: EDT (-4) -> EST (-5) on Sunday 2026-11-01 at 02:00 local
    spec = spec_from({**DEFAULTS, "timezone": "America/New_York"})
    with freeze_time("2026-10-30T12:00:00Z"):
        win = next_after(spec, _now())
    assert win.start.isoformat() == "2026-11-01T07:00:00+00:00"  # 02:00 EST, after the change
    with freeze_time("2026-11-02T12:00:00Z"):
        assert next_after(spec, _now()).start.isoformat() == "2026-11-08T07:00:00+00:00"


def test_window_across_midnight() -> None:
    spec = spec_from({**DEFAULTS, "day": "saturday", "start": "23:00", "end": "01:00", "cutoff_minutes": 10})
    with freeze_time("2026-12-06T00:30:00Z"):  # Sunday 00:30: inside Saturday's window
        win = current_or_next(spec, _now())
        assert win.inside(_now())
        assert win.start.isoformat() == "2026-12-05T23:00:00+00:00"


def test_always() -> None:
    spec = spec_from(DEFAULTS, "always")
    with freeze_time("2026-12-02T12:00:00Z"):
        win = current_or_next(spec, _now())
        assert win.inside(_now()) and win.before_cutoff(_now()) and win.key() == "always"


@pytest.mark.parametrize(
    ("raw", "override", "needle"),
    [
        ({"day": "sun"}, None, "maintenance.day 'sun': not a weekday"),
        ({"start": "2am"}, None, "maintenance.start '2am': not a time of day"),
        ({"timezone": "Mars/Base"}, None, "unknown time zone"),
        ({"cutoff_minutes": 120}, None, "leaves no time"),
        ({"notice_days": -1}, None, "maintenance.notice_days -1"),
        ({}, "sometimes", "window 'sometimes': use 'always'"),
    ],
)
def test_bad_window_settings(raw: dict, override: object, needle: str) -> None:
    with pytest.raises(BadInput, match=needle.replace("(", r"\(")):
        spec_from({**DEFAULTS, **raw}, override)


def test_window_argument() -> None:
    spec = spec_from(DEFAULTS)
    with freeze_time("2026-11-29T10:00:00Z"):
        assert parse_window_arg(spec, "NEXT", _now()).start.isoformat() == "2026-12-06T02:00:00+00:00"
        assert parse_window_arg(spec, "2026-12-13", _now()).start.isoformat() == "2026-12-13T02:00:00+00:00"
        with pytest.raises(BadInput, match="a tuesday; windows are on sundays"):
            parse_window_arg(spec, "2026-12-08", _now())
        with pytest.raises(BadInput, match="not NEXT or a date"):
            parse_window_arg(spec, "soon", _now())
        with pytest.raises(BadInput, match="that window ended"):
            parse_window_arg(spec, "2026-11-22", _now())
