"""Rotate the database password with no lock-out: one sequence for every backend.

Where the password lives and how the database takes a new one is the Credentials port's
(Secrets Manager and RDS or ALTER ROLE on aws, the sandbox's 0600 file and ALTER ROLE on the
sandbox). The order, the check and the undo are here, once:

1. stage: the new password is stored as pending, not used yet (AWSPENDING; `app_pending`);
2. set it on the database;
3. verify: a login with it must work;
4. promote: only then does it become current (the old one previous), and nothing stays pending.

If the new password does not log in, or anything fails or is interrupted before the promotion,
the old password is set on the database again, the pending one is dropped, and a login with the
old one is checked: the old password stays current, so nothing is locked out. A secret with the
provider's own rotation (a rotation Lambda) is rotated by the provider, then checked with a login.
Passwords never reach the plan, the journal or the output.
"""

from __future__ import annotations

import secrets as _random
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..core.errors import OperationFailed, RolledBack, VerificationFailed
from ..core.plan import Plan
from ..core.ports import ConnectionInfo, Credentials, Progress, Rotation, no_progress

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.journal import Operation

# RDS refuses / @ " and spaces in master passwords; letters and digits are safe everywhere
ALPHABET = string.ascii_letters + string.digits
Approve = Callable[[Plan], bool]
Login = Callable[[ConnectionInfo, str, str], "str | None"]


def new_password(length: int = 32) -> str:
    return "".join(_random.choice(ALPHABET) for _ in range(length))


@dataclass
class RotationOutcome:
    applied: bool
    plan: Plan
    method: str  # "secrets-manager-rotation" | "modify_db_instance" | "alter-role"
    secret: str
    username: str
    new_version: str | None = None
    verified: bool = False
    restart: list[str] = field(default_factory=list)  # deployments that read the secret at start
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "method": self.method,
            "secret": self.secret,
            "username": self.username,
            "new_version": self.new_version,
            "verified": self.verified,
            "restart": self.restart,
            "duration_s": round(self.duration_s, 3),
            "plan": self.plan.to_dict(),
        }


def _restart_targets(environment: Environment) -> list[str]:
    # the backend reads the credentials secret when it starts; the frontend never talks to the database
    return ["backend"] if environment.kind == "aws" else []


def plan_rotation(environment: Environment) -> tuple[Plan, Rotation]:
    """The plan (passwords masked) and the rotation it describes."""
    return environment.credentials.plan_rotation()


def try_login(info: ConnectionInfo, user: str, password: str) -> str | None:
    """None when `user` logs in with `password` and runs a query; else why not."""
    import psycopg

    try:
        with psycopg.connect(
            **replace(info, user=user, password=password).kwargs(), connect_timeout=10, autocommit=True
        ) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split())[:200]


def rotate(
    environment: Environment,
    *,
    approve: Approve,
    progress: Progress = no_progress,
    password: Callable[[], str] = new_password,
    login: Login | None = None,
) -> RotationOutcome:
    """`login(info, user, password)` -> None or why not: the check before a password becomes
    current (a real login by default; a test may refuse one to exercise the undo)."""
    check = login or try_login
    store = environment.credentials
    plan, rotation = store.plan_rotation()
    outcome = RotationOutcome(
        False,
        plan,
        rotation.method,
        rotation.secret,
        rotation.user,
        restart=_restart_targets(environment),
    )
    if not approve(plan):
        return outcome
    started = environment.clock.monotonic()
    info = environment.database.connection()
    args = {"secret": rotation.secret, "method": rotation.method, "user": rotation.user}
    with environment.operation("db.rotate-credentials", args) as op:
        if rotation.method == "secrets-manager-rotation":
            _rotate_by_provider(store, rotation, info, op, progress, check)
        else:
            _rotate(store, rotation, info, op, progress, password(), check)
        outcome.applied = outcome.verified = True
        outcome.new_version = rotation.new_version
        outcome.duration_s = environment.clock.monotonic() - started
        result: dict[str, Any] = {"method": rotation.method, "verified": True}
        if rotation.new_version:
            result["new_version"] = rotation.new_version
        op.result = result
    return outcome


def _rotate(
    store: Credentials,
    rotation: Rotation,
    info: ConnectionInfo,
    op: Operation,
    progress: Progress,
    new: str,
    check: Login,
) -> None:
    user, old = rotation.user, rotation.old_password
    progress("storing the new password as pending")
    store.stage(rotation, new)
    op.step(rotation.stage_step, "ok", version=rotation.new_version, stage="pending")
    changed = False
    try:
        progress(f"setting it on the database ({rotation.method})")
        op.step("set_password", "started", method=rotation.method)
        changed = True  # from here the database may hold the new password: undo on any failure
        store.set_password(rotation, old=old, new=new, progress=progress)
        op.step("set_password", "ok", method=rotation.method)
        progress("logging in with the new password")
        why = check(info, user, new)
        if why is not None:
            op.step("login", "failed", error=why)
            raise VerificationFailed(f"the new password of {user} did not log in: {why}")
        op.step("login", "ok")
        store.promote(rotation)
        op.step("promote", "ok", version=rotation.new_version, previous=rotation.old_version)
    except BaseException as exc:  # noqa: BLE001 - Ctrl-C too: the database may hold the new password, undo
        if store.promoted(rotation):  # the promotion went through before the error: keep it
            op.step("promote", "ok", version=rotation.new_version, note=f"done, then: {exc}")
            return
        _undo(store, rotation, info, op, progress, check, changed=changed, new=new)
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        raise RolledBack(f"{what}; the old password is set again and stays {rotation.current}") from None
    # the new password is current and works: a failure from here on must not undo it
    if store.unstage(rotation):
        op.step("unstage_pending", "ok", version=rotation.new_version)


def _undo(
    store: Credentials,
    rotation: Rotation,
    info: ConnectionInfo,
    op: Operation,
    progress: Progress,
    check: Login,
    *,
    changed: bool,
    new: str,
) -> None:
    old, user = rotation.old_password, rotation.user
    problems = []
    if changed and check(info, user, old) is not None:
        progress("setting the old password again")
        try:
            store.set_password(rotation, old=new, new=old, progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported below with what to do
            problems.append(f"setting the old password again failed: {exc}")
    try:
        store.unstage(rotation)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"removing the pending password failed: {exc}")
    why = check(info, user, old)
    op.step(
        "rollback",
        "ok" if why is None and not problems else "failed",
        login_with_old=why is None,
        problems=problems,
    )
    if why is not None or problems:
        raise OperationFailed(
            f"rotation failed and could not be undone: {'; '.join(problems) or why}. {rotation.if_stuck}"
        )


def _rotate_by_provider(
    store: Credentials,
    rotation: Rotation,
    info: ConnectionInfo,
    op: Operation,
    progress: Progress,
    check: Login,
) -> None:
    store.start_provider_rotation(rotation)
    op.step("rotate_secret", "ok")
    version, user, password = store.provider_rotated(rotation, progress)
    rotation.new_version = version
    why = check(info, user, password)
    if why is not None:
        op.step("login", "failed", error=why)
        raise VerificationFailed(
            f"the rotated password of {user} does not log in: {why}",
            hint=f"the rotation Lambda moved AWSCURRENT; move it back to {rotation.old_version} "
            "(aws secretsmanager update-secret-version-stage) and read the Lambda's log",
        )
    op.step("login", "ok", version=version)


def restart_readers(
    environment: Environment,
    outcome: RotationOutcome,
    *,
    approve: Approve,
    progress: Progress = no_progress,
    timeout: float = 300,
) -> list[dict[str, Any]]:
    """After a rotation: a rolling restart of each deployment that reads the secret at start
    (app.restart's own domain function: plan, guard, journal, wait for the rollout)."""
    from ..cluster.deployments import restart

    interval = float(environment.settings.section("aws").get("poll_seconds", 3))
    return [
        restart(environment, short, approve=approve, timeout=timeout, interval=interval, progress=progress)
        for short in outcome.restart
    ]
