"""Base backups (the sandbox's snapshots): take, verify, list, delete.

Each backup is `<pg_base>/backups/<id>/` holding `data/` (plain-format
pg_basebackup with its manifest, self-contained WAL from `-X stream`) and
`ops.json` (our manifest: ours, kind, start/end times, size, tags, lineage).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....core.clock import iso
from ....core.errors import BadInput, CommandFailed, NotReady, OperationFailed, VerificationFailed
from ....core.ports import Progress, no_progress
from ..state import node_alive
from . import server as pg

if TYPE_CHECKING:
    from .provision import PgSandbox

BACKUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def backups_dir(state: dict[str, Any]) -> Path:
    return Path(state["pg_base"]) / "backups"


def check_backup_id(value: str) -> str:
    if not BACKUP_ID.match(value):
        raise BadInput(
            f"snapshot id {value}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return value


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "ops.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    data["path"] = str(folder / "data")
    return dict(data)


def all_backups(state: dict[str, Any]) -> list[dict[str, Any]]:
    folder = backups_dir(state)
    if not folder.is_dir():
        return []
    found = [read_manifest(sub) for sub in sorted(folder.iterdir()) if sub.is_dir()]
    return sorted((b for b in found if b), key=lambda b: b["end"])


def backups_of(state: dict[str, Any], lineage: str | None) -> list[dict[str, Any]]:
    return [b for b in all_backups(state) if lineage and b.get("lineage") == lineage]


def find_backup(state: dict[str, Any], backup_id: str) -> dict[str, Any] | None:
    return read_manifest(backups_dir(state) / backup_id) if BACKUP_ID.match(backup_id) else None


def _label_start(data: Path) -> datetime | None:
    try:
        text = (data / "backup_label").read_text()
    except FileNotFoundError:
        return None
    match = re.search(r"^START TIME: (.+)$", text, re.M)
    if not match:
        return None
    return datetime.strptime(match.group(1).strip(), "%Y-%m-%d %H:%M:%S %Z").replace(tzinfo=UTC)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def take_automated_backup(box: PgSandbox, state: dict[str, Any], progress: Progress = no_progress) -> None:
    """A base backup the sandbox takes itself (first one of a pair, after a swap), named by its time."""
    take_backup(
        box,
        state,
        backup_id=f"auto-{box.now():%Y%m%dT%H%M%S%fZ}",
        kind="automated",
        tags={},
        progress=progress,
    )


def take_backup(
    box: PgSandbox,
    state: dict[str, Any],
    *,
    backup_id: str,
    kind: str,
    tags: dict[str, str],
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """`pg_basebackup -c fast` of the main primary, then `pg_verifybackup`; returns our manifest."""
    check_backup_id(backup_id)
    main = state["instances"][state["main"]]
    primary = state["nodes"][main["primary"]]
    if not node_alive(primary):
        raise NotReady(f"the primary {main['primary']} is not running", hint="run `inv sandbox.up` first")
    user = box.user(state)
    dest = backups_dir(state) / backup_id
    if dest.exists():
        raise BadInput(f"snapshot id {backup_id}: a snapshot with this id exists already")
    user.mkdir(dest)
    data = dest / "data"
    started = box.now()
    try:
        progress(f"pg_basebackup -> {dest}")
        user.pg(
            "pg_basebackup",
            "-h",
            pg.HOST,
            "-p",
            primary["port"],
            "-U",
            pg.SUPERUSER,
            "-D",
            data,
            "-X",
            "stream",
            "-c",
            "fast",
            "-l",
            backup_id,
            timeout=3600,
        )
        ended = box.now()
        progress("pg_verifybackup")
        try:
            user.pg("pg_verifybackup", "-q", data, timeout=3600)
        except CommandFailed as exc:
            raise VerificationFailed(
                f"base backup {backup_id} failed pg_verifybackup ({exc}); the backup was removed"
            ) from exc
    except CommandFailed as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if "No space left on device" in exc.output:
            raise OperationFailed(
                f"disk full while writing base backup {backup_id} to {dest}; the partial backup was removed",
                hint=f"free space where {backups_dir(state)} lives",
            ) from exc
        raise OperationFailed(
            f"base backup {backup_id} failed: {exc}; the partial backup was removed"
        ) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    label_start = _label_start(data) or started
    manifest = {
        "id": backup_id,
        "ours": kind == "manual",  # automated backups are the sandbox's own, like RDS automated snapshots
        "kind": kind,
        "source": state["main"],
        "lineage": main["lineage"],
        "created": iso(started),  # ms precision; backup_label START TIME has whole seconds
        "start": iso(min(label_start, started)),
        "end": iso(ended),  # a restore target must be after this: the backup is consistent only here
        "size_bytes": _size(data),
        "tags": dict(tags),
    }
    (dest / "ops.json").write_text(json.dumps(manifest, indent=2))
    box.event(
        "backup", f"base backup {backup_id} ({kind}) of {main['primary']}, {manifest['size_bytes']} bytes"
    )
    manifest["path"] = str(data)
    return manifest


def delete_backup(state: dict[str, Any], backup_id: str) -> None:
    manifest = find_backup(state, backup_id)
    if manifest is None:
        raise BadInput(f"snapshot {backup_id}: no such snapshot")
    if not manifest.get("ours"):
        raise BadInput(
            f"snapshot {backup_id}: not made by spywatcher-ops ({manifest.get('kind')}); it is never deleted"
        )
    shutil.rmtree(backups_dir(state) / backup_id)
