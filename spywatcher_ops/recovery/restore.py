"""Restore into a NEW instance: to a point in time, to the latest restorable
time, or from a snapshot. Every argument is checked before any mutating call:
the time against the restorable window, the snapshot against the listing, the
new name against RDS rules and the instances that exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.errors import BadInput
from ..core.plan import Plan
from ..core.ports import Instance, Progress, RestoreWindow
from ..core.timeparse import check_db_identifier, parse_restore_time
from .common import Approver, free_name
from .snapshots import newest_first
from .window import check_inside, describe

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class RestoreRequest:
    to: str | None = None
    from_snapshot: str | None = None
    name: str | None = None
    keep_failed: bool = False  # keep a failed restore (marked failed) instead of rolling it back


@dataclass(frozen=True)
class Checked:
    """A request that passed the checks that need no provider call."""

    to_time: datetime | None  # None: latest (or the snapshot's own time)
    snapshot_id: str | None
    name: str | None


@dataclass(frozen=True)
class RestoreOutcome:
    plan: Plan
    applied: bool
    new_id: str
    restore_point: datetime | None
    snapshot_id: str | None
    instance: Instance | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        inst = self.instance
        return {
            "applied": self.applied,
            "new_instance": self.new_id,
            "restore_point": iso(self.restore_point) or ("snapshot" if self.snapshot_id else "latest"),
            "from_snapshot": self.snapshot_id,
            "endpoint": None if inst is None else f"{inst.host}:{inst.port}",
            "status": None if inst is None else inst.status,
            "duration_s": self.duration_s,
            "plan": self.plan.to_dict(),
        }


def check_request(
    request: RestoreRequest, *, now: datetime, window: Callable[[], RestoreWindow] | None = None
) -> Checked:
    """The checks that need no provider: presence, exclusivity, time syntax, name syntax.

    With `window`, a time in the future is refused showing the restorable window, like
    every other time outside it (the window is read only for that refusal).
    """
    if request.to and request.from_snapshot:
        raise BadInput(
            f"--to {request.to} with --from-snapshot {request.from_snapshot}: choose one; "
            "a snapshot restores to the snapshot's own time"
        )
    if not request.to and not request.from_snapshot:
        raise BadInput(
            "give --to TIME (ISO 8601 with a zone, e.g. 2026-11-25T14:03:00Z, or 'latest') "
            "or --from-snapshot ID"
        )
    to_time = parse_restore_time(request.to, flag="--to", now=now, future_ok=True) if request.to else None
    if to_time is not None and to_time > now:
        future = f"--to {request.to}: the time is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ})"
        known = None
        if window is not None:
            try:
                known = window()
            except Exception:  # noqa: BLE001 - window unknown (nothing provisioned, no access): the plain refusal
                known = None
        raise BadInput(f"{future}; outside the restorable window {describe(known)}" if known else future)
    name = check_db_identifier(request.name) if request.name else None
    return Checked(to_time=to_time, snapshot_id=request.from_snapshot, name=name)


def restore(
    environment: Environment, request: RestoreRequest, *, approve: Approver, progress: Progress
) -> RestoreOutcome:
    clock = environment.clock
    # the window is read (lazily) only to show it when --to is in the future
    checked = check_request(request, now=clock.now(), window=lambda: environment.database.restorable_window())
    database = environment.database
    source = database.instance_id()
    existing = {i.id.lower() for i in database.instances()}
    new_id = checked.name or free_name(source, "restored", clock.now(), existing)
    if new_id in existing:
        raise BadInput(f"--name {new_id}: an instance with that name already exists; choose a new name")
    if checked.snapshot_id:
        snaps = newest_first(database.list_snapshots())
        match = [s for s in snaps if s.id == checked.snapshot_id]
        if not match:
            newest = ", ".join(s.id for s in snaps[:3]) or "none"
            raise BadInput(
                f"--from-snapshot {checked.snapshot_id}: no such snapshot of {source}; "
                f"newest: {newest} (inv db.snapshots --env {environment.name})"
            )
        if match[0].status != "available":
            raise BadInput(
                f"--from-snapshot {checked.snapshot_id}: the snapshot is {match[0].status}, not available yet"
            )
    else:
        window = database.restorable_window()
        if checked.to_time is not None:
            check_inside(checked.to_time, window)
    plan = database.plan_restore(new_id, to_time=checked.to_time, snapshot_id=checked.snapshot_id)
    outcome = RestoreOutcome(plan, False, new_id, checked.to_time, checked.snapshot_id)
    if not approve(plan):
        return outcome
    args = {"to": request.to, "from_snapshot": checked.snapshot_id, "name": new_id, "source": source}
    with environment.operation("db.restore", args) as op:
        started = clock.monotonic()
        op.step("restore", "started", new_instance=new_id)
        instance = database.restore(plan, progress=progress, keep_failed=request.keep_failed)
        duration = round(clock.monotonic() - started, 1)
        op.step("restore", "available", endpoint=f"{instance.host}:{instance.port}")
        op.result = {
            "new_instance": instance.id,
            "endpoint": f"{instance.host}:{instance.port}",
            "duration_s": duration,
        }
    return RestoreOutcome(plan, True, new_id, checked.to_time, checked.snapshot_id, instance, duration)
