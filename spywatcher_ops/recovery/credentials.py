"""Rotate the database password through Secrets Manager, with no lock-out.

Two ways, chosen from the secret itself:
- the secret has rotation configured (a rotation Lambda): start it (`rotate_secret`), wait
  until a new version is AWSCURRENT, verify a login with it;
- otherwise: a new random password is stored as a new secret version staged AWSPENDING,
  set on the database (`modify_db_instance` for the instance's master user, `ALTER ROLE`
  over TLS for an application role, as that role), a login with it is verified, and only
  then is the new version moved to AWSCURRENT (the old one becomes AWSPREVIOUS).

If the new password does not log in (or the run is interrupted after the database took it),
the old password is set on the database again, the new version loses AWSPENDING, and a login
with the old one is checked: the old password stays current, so nothing is locked out.
Passwords never reach the plan, the journal or the output.
"""

from __future__ import annotations

import json
import secrets as _random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..core.errors import NotReady, OperationFailed, RolledBack, VerificationFailed
from ..core.plan import Plan, Step
from ..core.ports import ConnectionInfo, Progress, no_progress
from ..core.waiting import wait_for

if TYPE_CHECKING:
    from ..core.environment import Environment

MASK = "****"
# RDS refuses / @ " and spaces in master passwords; letters and digits are safe everywhere
ALPHABET = string.ascii_letters + string.digits
Approve = Callable[[Plan], bool]


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


def _clients(environment: Environment) -> Any:
    return environment.parts.clients  # type: ignore[attr-defined]


def _current(sm: Any, secret_id: str) -> tuple[dict[str, Any], str]:
    from botocore.exceptions import ClientError

    try:
        reply = sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise NotReady(
            f"cannot read secret {secret_id}: {code or exc}",
            hint="check environments.<env>.resources.db-credentials and your permissions",
        ) from None
    try:
        data = json.loads(reply.get("SecretString") or "")
        str(data["username"]), str(data["password"])
    except (ValueError, KeyError, TypeError):
        raise NotReady(f"secret {secret_id} is not JSON with `username` and `password`") from None
    return data, str(reply["VersionId"])


def _restart_targets(environment: Environment) -> list[str]:
    # the backend reads the credentials secret when it starts; the frontend never talks to the database
    return ["backend"] if environment.kind == "aws" else []


def plan_rotation(environment: Environment) -> tuple[Plan, dict[str, Any]]:
    """The plan (passwords masked) and what applying it needs."""
    if environment.kind == "sandbox":
        from . import credentials_sandbox

        return credentials_sandbox.plan_rotation(environment)
    clients = _clients(environment)
    project = environment.settings.project
    secret_id = environment.env.resource(project, "db-credentials")
    sm = clients.client("secretsmanager")
    described = sm.describe_secret(SecretId=secret_id)
    data, old_version = _current(sm, secret_id)
    user = str(data["username"])
    instance = environment.database.instance_id()
    ctx: dict[str, Any] = {
        "secret": secret_id,
        "old_version": old_version,
        "data": data,
        "instance": instance,
        "user": user,
    }
    if described.get("RotationEnabled"):
        plan = Plan(f"rotate the database password of {user} with the secret's own rotation")
        plan.add(
            Step(
                "secretsmanager",
                "rotate_secret",
                {"SecretId": secret_id},
                why=f"runs the rotation Lambda {described.get('RotationLambdaARN', '?')}",
            )
        )
        plan.add(
            Step(
                "postgresql",
                "login",
                {"user": user, "password": "AWSCURRENT (new)"},
                mutating=False,
                why="a login with the new password, once it is AWSCURRENT",
            )
        )
        ctx["method"] = "secrets-manager-rotation"
        return plan, ctx
    raw = clients.client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    master = user == raw.get("MasterUsername")
    token = str(uuid.uuid4())
    ctx.update(method="modify_db_instance" if master else "alter-role", token=token)
    plan = Plan(f"rotate the database password of {user} (no rotation configured on {secret_id})")
    plan.add(
        Step(
            "secretsmanager",
            "put_secret_value",
            {
                "SecretId": secret_id,
                "ClientRequestToken": token,
                "SecretString": {**data, "password": MASK},
                "VersionStages": ["AWSPENDING"],
            },
            why="the new password, staged AWSPENDING (not used yet)",
        )
    )
    if master:
        plan.add(
            Step(
                "rds",
                "modify_db_instance",
                {"DBInstanceIdentifier": instance, "MasterUserPassword": MASK, "ApplyImmediately": True},
                why=f"{user} is the instance's master user",
            )
        )
    else:
        plan.add(
            Step(
                "postgresql",
                "ALTER ROLE",
                {"role": user, "password": MASK, "as": user},
                why=f"{user} is an application role: it changes its own password over TLS",
            )
        )
    plan.add(
        Step(
            "postgresql",
            "login",
            {"user": user, "password": "AWSPENDING"},
            mutating=False,
            why="must succeed before the new version becomes current",
        )
    )
    plan.add(
        Step(
            "secretsmanager",
            "update_secret_version_stage",
            {
                "SecretId": secret_id,
                "VersionStage": "AWSCURRENT",
                "MoveToVersionId": token,
                "RemoveFromVersionId": old_version,
            },
            why="the old version becomes AWSPREVIOUS",
        )
    )
    plan.add(
        Step(
            "secretsmanager",
            "update_secret_version_stage",
            {"SecretId": secret_id, "VersionStage": "AWSPENDING", "RemoveFromVersionId": token},
            why="nothing is pending any more (a later rotation starts clean)",
        )
    )
    plan.notes.append("if the login fails, the old password is set again and stays AWSCURRENT (no lock-out)")
    return plan, ctx


def _connect(info: ConnectionInfo, user: str, password: str) -> Any:
    import psycopg

    return psycopg.connect(
        **replace(info, user=user, password=password).kwargs(), connect_timeout=10, autocommit=True
    )


def _login(info: ConnectionInfo, user: str, password: str) -> str | None:
    """None when `user` logs in with `password` and runs a query; else why not."""
    import psycopg

    try:
        with _connect(info, user, password) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split())[:200]


def _set_password(
    environment: Environment,
    ctx: dict[str, Any],
    info: ConnectionInfo,
    *,
    old: str,
    new: str,
    progress: Progress,
) -> None:
    if ctx["method"] == "modify_db_instance":
        rds = _clients(environment).client("rds")
        rds.modify_db_instance(
            DBInstanceIdentifier=ctx["instance"], MasterUserPassword=new, ApplyImmediately=True
        )
        interval = float(environment.settings.section("aws").get("poll_seconds", 3))

        def applied() -> tuple[bool, None, str]:
            raw = rds.describe_db_instances(DBInstanceIdentifier=ctx["instance"])["DBInstances"][0]
            pending = raw.get("PendingModifiedValues") or {}
            status = str(raw.get("DBInstanceStatus"))
            return status == "available" and "MasterUserPassword" not in pending, None, status

        wait_for(
            applied,
            clock=environment.clock,
            timeout=900,
            interval=interval,
            what=f"{ctx['instance']} to take the new master password",
            progress=progress,
        )
        return
    from psycopg import sql

    with _connect(info, ctx["user"], old) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ctx["user"]), sql.Literal(new))
        )


def rotate(
    environment: Environment,
    *,
    approve: Approve,
    progress: Progress = no_progress,
    password: Callable[[], str] = new_password,
    login: Callable[[ConnectionInfo, str, str], str | None] | None = None,
) -> RotationOutcome:
    """`login(info, user, password)` -> None or why not: the check before a password becomes
    current (a real login by default; a test may refuse one to exercise the undo)."""
    login = login or _login
    plan, ctx = plan_rotation(environment)
    outcome = RotationOutcome(
        False, plan, ctx["method"], ctx["secret"], ctx["user"], restart=_restart_targets(environment)
    )
    if not approve(plan):
        return outcome
    started = environment.clock.monotonic()
    if environment.kind == "sandbox":
        from . import credentials_sandbox

        with environment.operation(
            "db.rotate-credentials", {"secret": ctx["secret"], "user": ctx["user"]}
        ) as op:
            credentials_sandbox.rotate(environment, ctx, op, progress, password(), login)
            outcome.applied = outcome.verified = True
            outcome.duration_s = environment.clock.monotonic() - started
            op.result = {"method": ctx["method"], "verified": True}
        return outcome
    sm = _clients(environment).client("secretsmanager")
    info = environment.database.connection()
    with environment.operation(
        "db.rotate-credentials", {"secret": ctx["secret"], "method": ctx["method"], "user": ctx["user"]}
    ) as op:
        if ctx["method"] == "secrets-manager-rotation":
            _rotate_with_lambda(environment, sm, ctx, info, op, progress)
        else:
            _rotate_by_hand(environment, sm, ctx, info, op, progress, password())
        outcome.applied = outcome.verified = True
        outcome.new_version = ctx.get("token") or ctx.get("new_version")
        outcome.duration_s = environment.clock.monotonic() - started
        op.result = {"new_version": outcome.new_version, "method": ctx["method"], "verified": True}
    return outcome


def _rotate_by_hand(
    environment: Environment,
    sm: Any,
    ctx: dict[str, Any],
    info: ConnectionInfo,
    op: Any,
    progress: Progress,
    new: str,
) -> None:
    secret, token, user, old = ctx["secret"], ctx["token"], ctx["user"], str(ctx["data"]["password"])
    progress("storing the new password as AWSPENDING")
    sm.put_secret_value(
        SecretId=secret,
        ClientRequestToken=token,
        SecretString=json.dumps({**ctx["data"], "password": new}),
        VersionStages=["AWSPENDING"],
    )
    op.step("put_secret_value", "ok", version=token, stage="AWSPENDING")
    changed = False
    try:
        progress(f"setting it on the database ({ctx['method']})")
        op.step("set_password", "started", method=ctx["method"])
        changed = True  # from here the database may hold the new password: undo on any failure
        _set_password(environment, ctx, info, old=old, new=new, progress=progress)
        op.step("set_password", "ok", method=ctx["method"])
        progress("logging in with the new password")
        why = _login(info, user, new)
        if why is not None:
            op.step("login", "failed", error=why)
            raise VerificationFailed(f"the new password of {user} did not log in: {why}")
        op.step("login", "ok")
        sm.update_secret_version_stage(
            SecretId=secret,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=ctx["old_version"],
        )
        op.step("promote", "ok", version=token, stage="AWSCURRENT", previous=ctx["old_version"])
    except BaseException as exc:  # noqa: BLE001 - Ctrl-C too: the database may hold the new password, undo
        if _is_current(sm, secret, token):  # the promotion went through before the error: keep it
            op.step("promote", "ok", version=token, note=f"done, then: {exc}")
            return
        _undo(environment, sm, ctx, info, op, progress, changed=changed, new=new)
        if isinstance(exc, KeyboardInterrupt):
            raise RolledBack("interrupted: the old password is set again and stays AWSCURRENT") from None
        raise RolledBack(
            f"{exc}; the old password is set again and stays AWSCURRENT (version "
            f"{ctx['old_version']}); the new version {token} lost AWSPENDING"
        ) from None
    # the new password is current and works: a failure from here on must not undo it
    sm.update_secret_version_stage(SecretId=secret, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    op.step("unstage_pending", "ok", version=token)


def _is_current(sm: Any, secret: str, version: str) -> bool:
    try:
        stages = sm.describe_secret(SecretId=secret).get("VersionIdsToStages") or {}
    except Exception:  # noqa: BLE001 - cannot tell: undo, which checks logins itself
        return False
    return "AWSCURRENT" in stages.get(version, [])


def _undo(
    environment: Environment,
    sm: Any,
    ctx: dict[str, Any],
    info: ConnectionInfo,
    op: Any,
    progress: Progress,
    *,
    changed: bool,
    new: str,
) -> None:
    old, user = str(ctx["data"]["password"]), ctx["user"]
    problems = []
    if changed and _login(info, user, old) is not None:
        progress("setting the old password again")
        try:
            _set_password(environment, ctx, info, old=new, new=old, progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported below with what to do
            problems.append(f"setting the old password again failed: {exc}")
    try:
        sm.update_secret_version_stage(
            SecretId=ctx["secret"], VersionStage="AWSPENDING", RemoveFromVersionId=ctx["token"]
        )
    except Exception as exc:  # noqa: BLE001
        problems.append(f"removing AWSPENDING from {ctx['token']} failed: {exc}")
    why = _login(info, user, old)
    op.step(
        "rollback",
        "ok" if why is None and not problems else "failed",
        login_with_old=why is None,
        problems=problems,
    )
    if why is not None or problems:
        raise OperationFailed(
            f"rotation failed and could not be undone: {'; '.join(problems) or why}. AWSCURRENT still holds the "
            f"old password; if it does not log in, the password on the database is the AWSPENDING version "
            f"{ctx['token']}: move AWSCURRENT to it (aws secretsmanager update-secret-version-stage)"
        )


def _rotate_with_lambda(
    environment: Environment, sm: Any, ctx: dict[str, Any], info: ConnectionInfo, op: Any, progress: Progress
) -> None:
    secret, old_version = ctx["secret"], ctx["old_version"]
    sm.rotate_secret(SecretId=secret)
    op.step("rotate_secret", "ok")
    interval = float(environment.settings.section("aws").get("poll_seconds", 3))

    def rotated() -> tuple[bool, str | None, str]:
        stages = sm.describe_secret(SecretId=secret).get("VersionIdsToStages") or {}
        current = next((v for v, s in stages.items() if "AWSCURRENT" in s), None)
        return current not in (None, old_version), current, "waiting for the rotation Lambda"

    new_version = wait_for(
        rotated,
        clock=environment.clock,
        timeout=900,
        interval=interval,
        what=f"the rotation of {secret}",
        progress=progress,
    )
    ctx["new_version"] = new_version
    data, _ = _current(sm, secret)
    why = _login(info, str(data["username"]), str(data["password"]))
    if why is not None:
        op.step("login", "failed", error=why)
        raise VerificationFailed(
            f"the rotated password of {data['username']} does not log in: {why}",
            hint=f"the rotation Lambda moved AWSCURRENT; move it back to {old_version} "
            "(aws secretsmanager update-secret-version-stage) and read the Lambda's log",
        )
    op.step("login", "ok", version=new_version)


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
