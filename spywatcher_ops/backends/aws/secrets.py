"""Database credentials from Secrets Manager. The values never reach the journal or output."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ...core.errors import NotReady


@dataclass(frozen=True)
class DbCredentials:
    username: str
    password: str
    dbname: str | None = None

    def __repr__(self) -> str:  # keep the password out of tracebacks and logs
        return f"DbCredentials(username={self.username!r}, password='***', dbname={self.dbname!r})"


def db_credentials(clients: Any, secret_id: str) -> DbCredentials:
    """Read the JSON secret {"username", "password"[, "dbname"]} named `secret_id`."""
    from botocore.exceptions import ClientError

    try:
        reply = clients.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise NotReady(
            f"cannot read secret {secret_id}: {code or exc}",
            hint="the secret holds JSON with username and password; check its name and your permissions",
        ) from None
    try:
        data = json.loads(reply.get("SecretString") or "")
        return DbCredentials(str(data["username"]), str(data["password"]), data.get("dbname"))
    except (ValueError, KeyError, TypeError):
        raise NotReady(
            f"secret {secret_id} is not JSON with `username` and `password`",
            hint='store it as {"username": "...", "password": "..."}',
        ) from None
