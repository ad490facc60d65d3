"""`db.rotate-credentials` on the sandbox, for real: the application role's password changes on the
primary (and through replication on the standby), the 0600 secrets file follows, and a password
that does not pass the login check is undone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from support.paths import ROOT

from spywatcher_ops.core.errors import RolledBack


def _logs_in(pair: Any, password: str) -> bool:
    info = pair.database.connection()
    try:
        psycopg.connect(**{**info.kwargs(), "password": password}, connect_timeout=5).close()
        return True
    except psycopg.OperationalError:
        return False


def _secrets(pair: Any) -> dict[str, Any]:
    import json

    return json.loads((pair.database.box.secrets.path).read_text())


@pytest.fixture(autouse=True)
def restore_password(pg_pair: Any) -> Any:
    """pg_pair is shared by the session: put the original password back, on the server and in the file."""
    from spywatcher_ops.backends.sandbox.postgres.credentials import alter_role, write_secrets

    box = pg_pair.database.box
    original = _secrets(pg_pair)
    yield
    alter_role(pg_pair.database.admin_connection(), box.db_user, original["postgres"]["app"])
    write_secrets(box.secrets.path, original)
    box._passwords = None
    assert _logs_in(pg_pair, original["postgres"]["app"])


def test_rotation_through_inv_on_the_sandbox(pg_pair: Any):
    old = _secrets(pair=pg_pair)["postgres"]["app"]
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(pg_pair.state_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "db.rotate-credentials", "--yes"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spywatcher: new password set (alter-role), logged in with, and current in" in done.stdout
    assert old not in done.stdout + done.stderr
    data = _secrets(pg_pair)
    new = data["postgres"]["app"]
    assert new != old and "app_pending" not in data["postgres"]
    assert stat.S_IMODE(pg_pair.database.box.secrets.path.stat().st_mode) == 0o600
    assert _logs_in(pg_pair, new) and not _logs_in(pg_pair, old)
    journal = (pg_pair.state_dir / "journal" / "sandbox.jsonl").read_text()
    assert new not in journal and old not in journal and '"step": "promote"' in journal


def test_a_password_that_fails_the_login_check_is_undone(pg_pair: Any):
    from spywatcher_ops.recovery.credentials import rotate

    old = _secrets(pg_pair)["postgres"]["app"]
    env = pg_pair.environment
    env.database.box._passwords = None

    def refuse_new(info: Any, user: str, password: str) -> str | None:
        if password == "refused-New-9":
            return "a connection pooler in front refuses it (simulated)"
        try:
            psycopg.connect(
                **{**info.kwargs(), "user": user, "password": password}, connect_timeout=5
            ).close()
            return None
        except psycopg.OperationalError as exc:
            return str(exc)

    with pytest.raises(RolledBack) as caught:
        rotate(env, approve=lambda plan: True, password=lambda: "refused-New-9", login=refuse_new)
    assert caught.value.exit_code == 4 and "stays current" in str(caught.value)
    data = _secrets(pg_pair)
    assert data["postgres"]["app"] == old and "app_pending" not in data["postgres"]
    assert _logs_in(pg_pair, old) and not _logs_in(pg_pair, "refused-New-9")
