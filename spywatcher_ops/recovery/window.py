"""The restorable window, and the check that a restore time lies inside it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..core.clock import iso
from ..core.errors import BadInput
from ..core.ports import RestoreWindow

if TYPE_CHECKING:
    from ..core.environment import Environment


def restorable_window(environment: Environment) -> RestoreWindow:
    return environment.database.restorable_window()


def describe(window: RestoreWindow) -> str:
    gap = f"; bounded by WAL segment {window.gap}, missing from the archive" if window.gap else ""
    return (
        f"{iso(window.earliest)} .. {iso(window.latest)} (backup retention {window.retention_days} days{gap})"
    )


def check_inside(moment: datetime, window: RestoreWindow, *, flag: str = "--to") -> datetime:
    if not window.earliest <= moment <= window.latest:
        raise BadInput(f"{flag} {iso(moment)}: outside the restorable window {describe(window)}")
    return moment
