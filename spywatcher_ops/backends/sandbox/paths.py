"""Where the sandbox lives: `<ops.state_dir>/sandbox` unless the sandbox
environment sets its own `state_dir` (relative paths are under the project)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...core.config import PROJECT_ROOT

if TYPE_CHECKING:
    from ...core.environment import Environment


def sandbox_root(environment: Environment) -> Path:
    own = environment.env.raw.get("state_dir")
    if own:
        path = Path(str(own)).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path
    return environment.settings.state_dir / "sandbox"


# Every folder the sandbox creates carries this file; purge deletes only folders that do,
# so a folder someone else made (or filled) at the same path is never deleted.
MARKER = ".created-by-spywatcher-ops"


def mark(folder: Path) -> None:
    (folder / MARKER).write_text("created by spywatcher-ops (inv sandbox.up); `inv sandbox.down --purge` deletes it\n")


def is_ours(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def not_ours_note(folder: Path) -> str:
    return (f"kept {folder}: not created by spywatcher-ops (no {MARKER} file in it); "
            "delete it yourself if it is not needed")
