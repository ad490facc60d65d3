"""Where the sandbox lives: `<ops.state_dir>/sandbox` unless the sandbox
environment sets its own `state_dir` (relative paths are under the project)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.config import PROJECT_ROOT
from ...core.errors import NotReady

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
    # never through a link: as root, a planted link here would overwrite (and chown) its target
    fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write("created by spywatcher-ops (inv sandbox.up); `inv sandbox.down --purge` deletes it\n")


def is_ours(folder: Path) -> bool:
    marker = folder / MARKER
    return not marker.is_symlink() and marker.is_file()


def claim_shared(folder: Path, server: tuple[int, int] | None) -> None:
    """Create `folder` in a place every local user can write to (/var/tmp), or accept it only if
    it is a real folder of this user or the server user that nobody else can write to.

    The name is predictable, so another local user could make it first, with links in it
    (the marker pointing at /etc/passwd, a node folder pointing at /etc) that root would
    then write and chown through. Such a folder is refused (exit 3), never used."""
    try:
        folder.mkdir(mode=0o700)  # atomic: if it did not exist, nobody else can have put anything in it
    except FileExistsError:
        pass
    else:
        if server is not None and os.geteuid() == 0:
            os.chown(folder, *server)  # the server user's, as the servers' own folders are
        return
    st = os.lstat(folder)
    owners = {os.geteuid()} | ({server[0]} if server is not None else set())
    why = (
        "is a symbolic link"
        if stat.S_ISLNK(st.st_mode)
        else "is not a folder"
        if not stat.S_ISDIR(st.st_mode)
        else f"belongs to uid {st.st_uid}, not to this user or the server user"
        if st.st_uid not in owners
        else f"can be written by other users (mode {stat.S_IMODE(st.st_mode):o})"
        if st.st_mode & 0o022
        else ""
    )
    if why:
        raise NotReady(
            f"{folder} exists and {why}: someone else may have made it; it is not used",
            hint=f"check it and remove it (`rm -rf {folder}`), or set ops.state_dir elsewhere",
        )


def not_ours_note(folder: Path) -> str:
    return (
        f"kept {folder}: not created by spywatcher-ops (no {MARKER} file in it); "
        "delete it yourself if it is not needed"
    )
