"""The database password in Secrets Manager, set on RDS: the Credentials port of an aws environment.

The new password is staged as a new secret version AWSPENDING, set on the database
(`modify_db_instance` for the instance's master user, `ALTER ROLE` over TLS for an application
role, as that role), and promoted by moving AWSCURRENT to it (the old version becomes
AWSPREVIOUS). A secret with a rotation Lambda is rotated by Secrets Manager itself. The order,
the login check and the undo are recovery/credentials.py's. Passwords never reach a plan.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...core.errors import NotReady
from ...core.plan import Plan, Step
from ...core.ports import Progress, Rotation
from ...core.waiting import wait_for

if TYPE_CHECKING:
    from ...core.environment import Environment

MASK = "****"


class AwsCredentials:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.clients = clients

    @property
    def _sm(self) -> Any:
        return self.clients.client("secretsmanager")

    def _interval(self) -> float:
        return float(self.environment.settings.section("aws").get("poll_seconds", 3))

    def _current(self, secret_id: str) -> tuple[dict[str, Any], str]:
        from botocore.exceptions import ClientError

        try:
            reply = self._sm.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
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

    def plan_rotation(self) -> tuple[Plan, Rotation]:
        secret_id = self.environment.env.resource(self.environment.settings.project, "db-credentials")
        described = self._sm.describe_secret(SecretId=secret_id)
        data, old_version = self._current(secret_id)
        user = str(data["username"])
        instance = self.environment.database.instance_id()
        rotation = Rotation(
            secret=secret_id,
            user=user,
            method="secrets-manager-rotation",
            old_password=str(data["password"]),
            current=f"AWSCURRENT (version {old_version})",
            stage_step="put_secret_value",
            old_version=old_version,
            details={"data": data, "instance": instance},
        )
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
            return plan, rotation
        raw = self.clients.client("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][
            0
        ]
        master = user == raw.get("MasterUsername")
        token = str(uuid.uuid4())
        rotation.method = "modify_db_instance" if master else "alter-role"
        rotation.new_version = token
        rotation.current += f"; the new version {token} lost AWSPENDING"
        rotation.if_stuck = (
            f"AWSCURRENT still holds the old password; if it does not log in, the password on the database "
            f"is the AWSPENDING version {token}: move AWSCURRENT to it (aws secretsmanager "
            "update-secret-version-stage)"
        )
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
        plan.notes.append(
            "if the login fails, the old password is set again and stays AWSCURRENT (no lock-out)"
        )
        return plan, rotation

    def stage(self, rotation: Rotation, new: str) -> None:
        self._sm.put_secret_value(
            SecretId=rotation.secret,
            ClientRequestToken=rotation.new_version,
            SecretString=json.dumps({**rotation.details["data"], "password": new}),
            VersionStages=["AWSPENDING"],
        )

    def set_password(self, rotation: Rotation, *, old: str, new: str, progress: Progress) -> None:
        if rotation.method == "modify_db_instance":
            self._set_master(rotation.details["instance"], new, progress)
            return
        import psycopg
        from psycopg import sql

        info = replace(self.environment.database.connection(), user=rotation.user, password=old)
        with psycopg.connect(**info.kwargs(), connect_timeout=10, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(rotation.user), sql.Literal(new))
            )

    def _set_master(self, instance: str, new: str, progress: Progress) -> None:
        rds = self.clients.client("rds")
        rds.modify_db_instance(DBInstanceIdentifier=instance, MasterUserPassword=new, ApplyImmediately=True)

        def applied() -> tuple[bool, None, str]:
            raw = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
            pending = raw.get("PendingModifiedValues") or {}
            status = str(raw.get("DBInstanceStatus"))
            return status == "available" and "MasterUserPassword" not in pending, None, status

        wait_for(
            applied,
            clock=self.environment.clock,
            timeout=900,
            interval=self._interval(),
            what=f"{instance} to take the new master password",
            progress=progress,
        )

    def promote(self, rotation: Rotation) -> None:
        self._sm.update_secret_version_stage(
            SecretId=rotation.secret,
            VersionStage="AWSCURRENT",
            MoveToVersionId=rotation.new_version,
            RemoveFromVersionId=rotation.old_version,
        )

    def promoted(self, rotation: Rotation) -> bool:
        try:
            stages = self._sm.describe_secret(SecretId=rotation.secret).get("VersionIdsToStages") or {}
        except Exception:  # noqa: BLE001 - cannot tell: the caller undoes, which checks logins itself
            return False
        return "AWSCURRENT" in stages.get(rotation.new_version or "", [])

    def unstage(self, rotation: Rotation) -> bool:
        self._sm.update_secret_version_stage(
            SecretId=rotation.secret, VersionStage="AWSPENDING", RemoveFromVersionId=rotation.new_version
        )
        return True

    def start_provider_rotation(self, rotation: Rotation) -> None:
        self._sm.rotate_secret(SecretId=rotation.secret)

    def provider_rotated(self, rotation: Rotation, progress: Progress) -> tuple[str, str, str]:
        def rotated() -> tuple[bool, str | None, str]:
            stages = self._sm.describe_secret(SecretId=rotation.secret).get("VersionIdsToStages") or {}
            current = next((v for v, s in stages.items() if "AWSCURRENT" in s), None)
            return current not in (None, rotation.old_version), current, "waiting for the rotation Lambda"

        version = wait_for(
            rotated,
            clock=self.environment.clock,
            timeout=900,
            interval=self._interval(),
            what=f"the rotation of {rotation.secret}",
            progress=progress,
        )
        data, _ = self._current(rotation.secret)
        return str(version), str(data["username"]), str(data["password"])
