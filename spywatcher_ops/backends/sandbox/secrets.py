"""The sandbox's passwords: generated once, kept in one 0600 file in the sandbox state.

`<sandbox root>/secrets.json`, owned by the user running the toolkit, mode 0600:

    {"version": 1,
     "postgres": {"superuser": "...", "replication": "...", "app": "..."},
     "redis": {"default": "...", "sentinel": "..."}}

Every role and server needs its password (scram-sha-256 in pg_hba.conf, Redis
requirepass / masterauth, sentinel requirepass / auth-pass). The servers never
read this file: PostgreSQL keeps SCRAM verifiers in its catalog, the tools it
runs read a pgpass file owned by the server user (see `pgpass_text`), and Redis
gets its passwords in config files only its own user can read. The toolkit
hands the passwords out through the connection info of the Database and Cache
ports, so nothing else has to know where they are. They are never printed or
journalled: connection info has `redacted()`, and status shows this file's path.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from pathlib import Path
from typing import Any

from ...core.errors import NotReady

SECRETS_FILE = "secrets.json"
VERSION = 1
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"


def new_password() -> str:
    return _random.token_urlsafe(24)  # 32 URL-safe characters: no quoting needed in any config file


def fresh() -> dict[str, Any]:
    return {
        "version": VERSION,
        "postgres": {"superuser": new_password(), "replication": new_password(), "app": new_password()},
        "redis": {"default": new_password(), "sentinel": new_password()},
    }


class SandboxSecrets:
    """Read (and on first use create) `<root>/secrets.json`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / SECRETS_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, Any]:
        """The passwords; a clear error if the file is missing, damaged or readable by others."""
        try:
            info = self.path.stat()
            text = self.path.read_text()
        except FileNotFoundError:
            raise NotReady(
                f"the sandbox's password file {self.path} is missing",
                hint="`inv sandbox.reset --yes` rebuilds the sandbox with new passwords (its data is lost)",
            ) from None
        except PermissionError:
            raise NotReady(
                f"cannot read the sandbox's password file {self.path}: permission denied",
                hint="run as the user who created the sandbox",
            ) from None
        if info.st_mode & 0o077:
            raise NotReady(
                f"the sandbox's password file {self.path} is readable by other users "
                f"(mode {info.st_mode & 0o777:o})",
                hint=f"chmod 600 {self.path}",
            )
        try:
            data = json.loads(text)
            assert data["version"] == VERSION and data["postgres"]["superuser"] and data["redis"]["default"]
        except (json.JSONDecodeError, AssertionError, KeyError, TypeError):
            raise NotReady(
                f"the sandbox's password file {self.path} is damaged",
                hint="`inv sandbox.reset --yes` rebuilds the sandbox with new passwords",
            ) from None
        return dict(data)

    def ensure(self) -> dict[str, Any]:
        """The passwords, generating them all at once if there is no file yet.

        Written to a private temporary file (0600 from its creation) and linked into
        place: a reader never sees half a file, and of two first runs one wins.
        """
        if self.path.exists():
            return self.load()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{SECRETS_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(fresh(), fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another first run won: use its passwords
        finally:
            tmp.unlink(missing_ok=True)
        return self.load()

    def postgres(self, which: str) -> str:
        return str(self.load()["postgres"][which])

    def redis(self, which: str) -> str:
        return str(self.load()["redis"][which])

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def pgpass_text(passwords: dict[str, Any], host: str) -> str:
    """libpq password file lines for the tools the server user runs (pg_basebackup,
    pg_rewind) and for the standbys' primary_conninfo (passfile=)."""
    pw = passwords["postgres"]
    return f"{host}:*:*:{REPLICATION_USER}:{pw['replication']}\n{host}:*:*:{SUPERUSER}:{pw['superuser']}\n"
