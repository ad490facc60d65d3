"""Rotate the sandbox's application password, for real, the same way as on AWS.

The sandbox keeps its passwords in its own 0600 file (`<sandbox>/secrets.json`), not in
Secrets Manager. The staging is the same: the new password is written to the file as
`postgres.app_pending` first, set on the primary (`ALTER ROLE`, replicated to the
standby), logged in with, and only then does it replace `postgres.app`. If the login
fails (or the run is interrupted) the old password is set again and stays current; a run
killed between the two leaves `app_pending` in the file, and the journal says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import OperationFailed, RolledBack, VerificationFailed
from ..core.plan import Plan, Step
from ..core.ports import ConnectionInfo, Progress

if TYPE_CHECKING:
    from ..core.environment import Environment

MASK = "****"
Login = Callable[[ConnectionInfo, str, str], "str | None"]


def plan_rotation(environment: Environment) -> tuple[Plan, dict[str, Any]]:
    db: Any = environment.database
    box = db.box
    path = Path(box.secrets.path)
    user = str(box.db_user)
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
    return plan, {"secret": str(path), "user": user, "method": "alter-role", "path": path}


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


def _alter(admin: ConnectionInfo, user: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**admin.kwargs(), connect_timeout=10, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(password)))


def rotate(
    environment: Environment, ctx: dict[str, Any], op: Any, progress: Progress, new: str, login: Login
) -> None:
    db: Any = environment.database
    box, path, user = db.box, ctx["path"], ctx["user"]
    data = box.secrets.load()
    old = str(data["postgres"]["app"])
    info, admin = db.connection(), db.admin_connection()
    progress("writing the new password as pending")
    data["postgres"]["app_pending"] = new
    write_secrets(path, data)
    op.step("write_pending", "ok", file=str(path))
    try:
        progress("setting it on the primary")
        _alter(admin, user, new)
        op.step("set_password", "ok", method="alter-role")
        why = login(info, user, new)
        if why is not None:
            op.step("login", "failed", error=why)
            raise VerificationFailed(f"the new password of {user} did not log in: {why}")
        op.step("login", "ok")
    except BaseException as exc:  # noqa: BLE001 - Ctrl-C too: the server may hold the new password, undo
        problems = []
        try:
            _alter(admin, user, old)
        except Exception as undo:  # noqa: BLE001 - reported with what to do
            problems.append(f"setting the old password again failed: {undo}")
        data["postgres"].pop("app_pending", None)
        write_secrets(path, data)
        back = login(info, user, old)
        op.step("rollback", "ok" if back is None and not problems else "failed", login_with_old=back is None)
        if back is not None or problems:
            raise OperationFailed(
                f"rotation failed and could not be undone: {'; '.join(problems) or back}"
            ) from None
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        raise RolledBack(f"{what}; the old password is set again and stays current in {path}") from None
    data["postgres"]["app"] = new
    data["postgres"].pop("app_pending", None)
    write_secrets(path, data)
    op.step("promote", "ok", file=str(path))
    box._passwords = None  # drop this process's cached copy of the old one
