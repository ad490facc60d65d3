"""The sandbox's application password: the Credentials port of the sandbox.

The sandbox keeps its passwords in its own 0600 file (`<sandbox>/secrets.json`), not in
Secrets Manager. Staging is the same as on AWS: the new password goes to the file as
`postgres.app_pending`, is set on the primary (`ALTER ROLE` as the superuser, replicated to the
standby), and replaces `postgres.app` once a login with it worked (recovery/credentials.py runs
that sequence and its undo). A run killed in between leaves `app_pending` in the file, and the
journal says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....core.errors import Unsupported
from ....core.plan import Plan, Step
from ....core.ports import ConnectionInfo, Progress, Rotation

if TYPE_CHECKING:
    from ....core.environment import Environment

MASK = "****"


def write_secrets(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically, 0600 from creation, fsynced (a reader sees the old or the new)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.rotate")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def alter_role(admin: ConnectionInfo, user: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**admin.kwargs(), connect_timeout=10, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))


class SandboxCredentials:
    def __init__(self, environment: Environment) -> None:
        from .database import SandboxDatabase

        self.db = SandboxDatabase(environment)
        self.box = self.db.box

    @property
    def path(self) -> Path:
        return Path(self.box.secrets.path)

    def plan_rotation(self) -> tuple[Plan, Rotation]:
        path, user = self.path, str(self.box.db_user)
        plan = Plan(f"rotate the sandbox password of {user}")
        plan.add(
            Step(
                "sandbox",
                "write_secrets",
                {"file": str(path), "postgres.app_pending": MASK},
                why="the new password, pending (not used yet)",
            )
        )
        plan.add(
            Step(
                "postgresql",
                "ALTER ROLE",
                {"role": user, "password": MASK, "as": "postgres (superuser)"},
                why="on the primary; the standby gets it through replication",
            )
        )
        plan.add(
            Step(
                "postgresql",
                "login",
                {"user": user, "password": "pending"},
                mutating=False,
                why="must succeed before the new password becomes current",
            )
        )
        plan.add(
            Step(
                "sandbox",
                "write_secrets",
                {"file": str(path), "postgres.app": "the pending password"},
                why="current from now on; app_pending removed",
            )
        )
        plan.notes.append("if the login fails, the old password is set again and stays current (no lock-out)")
        old = str(self.box.secrets.load()["postgres"]["app"])
        rotation = Rotation(
            secret=str(path),
            user=user,
            method="alter-role",
            old_password=old,
            current=f"current in {path}",
            stage_step="write_pending",
            if_stuck=f"set the password of {user} by hand (ALTER ROLE as postgres) to postgres.app of {path}",
        )
        return plan, rotation

    def stage(self, rotation: Rotation, new: str) -> None:
        data = self.box.secrets.load()
        data["postgres"]["app_pending"] = new
        write_secrets(self.path, data)

    def set_password(self, rotation: Rotation, *, old: str, new: str, progress: Progress) -> None:
        alter_role(self.db.admin_connection(), rotation.user, new)

    def promote(self, rotation: Rotation) -> None:
        data = self.box.secrets.load()
        data["postgres"]["app"] = data["postgres"].pop("app_pending")
        write_secrets(self.path, data)
        self.box._passwords = None  # drop this process's cached copy of the old one

    def promoted(self, rotation: Rotation) -> bool:
        postgres = self.box.secrets.load()["postgres"]
        return "app_pending" not in postgres and postgres.get("app") != rotation.old_password

    def unstage(self, rotation: Rotation) -> bool:
        data = self.box.secrets.load()
        if "app_pending" not in data["postgres"]:
            return False
        del data["postgres"]["app_pending"]
        write_secrets(self.path, data)
        return True

    def start_provider_rotation(self, rotation: Rotation) -> None:
        raise Unsupported("the sandbox has no rotation of its own; its passwords are rotated by the toolkit")

    def provider_rotated(self, rotation: Rotation, progress: Progress) -> tuple[str, str, str]:
        raise Unsupported("the sandbox has no rotation of its own; its passwords are rotated by the toolkit")
