"""The snapshot listing: manual and automated, newest first, with age and ownership."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.ports import Snapshot

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class SnapshotRow:
    snapshot: Snapshot
    age_s: float | None

    def to_dict(self) -> dict[str, Any]:
        s = self.snapshot
        return {
            "id": s.id,
            "type": s.kind,
            "created": iso(s.created),
            "age_s": self.age_s,
            "size_bytes": s.size_bytes,
            "status": s.status,
            "ours": s.ours,
            "source": s.source,
            "region": s.region,
        }


def newest_first(snapshots: list[Snapshot]) -> list[Snapshot]:
    return sorted(
        snapshots, key=lambda s: s.created.timestamp() if s.created else float("-inf"), reverse=True
    )


def rows(snapshots: list[Snapshot], now: datetime) -> list[SnapshotRow]:
    return [
        SnapshotRow(s, None if s.created is None else round((now - s.created).total_seconds(), 1))
        for s in newest_first(snapshots)
    ]


def list_snapshots(environment: Environment) -> list[SnapshotRow]:
    return rows(environment.database.list_snapshots(), environment.clock.now())


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def human_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    gib = size_bytes / 2**30
    return f"{gib:.0f} GiB" if gib >= 1 else f"{size_bytes / 2**20:.1f} MiB"
