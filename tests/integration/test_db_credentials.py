"""`db.rotate-credentials` on AWS: Secrets Manager versions and staging labels (moto), the password
really changed and logged in with on a real TLS PostgreSQL behind the instance's tunnel; a new
password that does not log in leaves the old one current."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from support.aws import SECRET, STAGING_DB, aws_env

from spywatcher_ops.core.errors import RolledBack


def _secret_as(user: str, password: str) -> None:
    import boto3

    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=SECRET,
        SecretString=json.dumps({"username": user, "password": password, "dbname": "postgres"}),
    )


def _stages() -> dict[str, list[str]]:
    import boto3

    return boto3.client("secretsmanager", region_name="us-east-1").describe_secret(SecretId=SECRET)[
        "VersionIdsToStages"
    ]


def _value(stage: str) -> dict[str, Any]:
    import boto3

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    return json.loads(sm.get_secret_value(SecretId=SECRET, VersionStage=stage)["SecretString"])


def _logs_in(pg: Any, user: str, password: str) -> bool:
    try:
        psycopg.connect(
            host=pg.host,
            port=pg.port,
            dbname="postgres",
            user=user,
            password=password,
            sslmode="require",
            connect_timeout=5,
        ).close()
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture
def env(staging_aws: Any, ops_config: Any, tls_postgres: Any) -> Any:
    ops_config.ops.environments.staging.db_tunnels = {STAGING_DB: f"127.0.0.1:{tls_postgres.port}"}
    ops_config.ops.aws.poll_seconds = 0.01
    return aws_env(ops_config)


@pytest.fixture
def app_role(tls_postgres: Any) -> Any:
    role = f"rot_{uuid.uuid4().hex[:8]}"
    tls_postgres.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'old-Secret-1'")
    _secret_as(role, "old-Secret-1")
    yield role
    tls_postgres.execute(f"DROP ROLE {role}")


def test_dry_run_shows_masked_calls_and_changes_nothing(env: Any, app_role: str, tls_postgres: Any):
    from spywatcher_ops.recovery.credentials import rotate

    before = _stages()
    outcome = rotate(env, approve=lambda plan: False)
    assert not outcome.applied and outcome.method == "alter-role"
    rendered = [s.render() for s in outcome.plan.steps]
    assert rendered[0].startswith(
        "secretsmanager.put_secret_value(SecretId='spywatcher-staging-db-credentials'"
    )
    assert "'password': '****'" in rendered[0] and "VersionStages=['AWSPENDING']" in rendered[0]
    assert (
        rendered[1].startswith("postgresql.ALTER ROLE(role=")
        and rendered[3].startswith("secretsmanager.update_secret_version_stage(")
        and len(rendered) == 5
    )
    assert "old-Secret-1" not in json.dumps(outcome.to_dict())
    assert _stages() == before and _logs_in(tls_postgres, app_role, "old-Secret-1")


def test_rotation_of_an_application_role(env: Any, app_role: str, tls_postgres: Any):
    from spywatcher_ops.core.journal import read
    from spywatcher_ops.recovery.credentials import rotate

    old_version = next(v for v, s in _stages().items() if "AWSCURRENT" in s)
    outcome = rotate(env, approve=lambda plan: True, password=lambda: "new-Secret-2")
    assert outcome.applied and outcome.verified and outcome.restart == ["backend"]
    assert _value("AWSCURRENT")["password"] == "new-Secret-2"
    assert _value("AWSPREVIOUS")["password"] == "old-Secret-1"
    stages = _stages()
    assert stages[outcome.new_version] == ["AWSCURRENT"] and "AWSPREVIOUS" in stages[old_version]
    assert _logs_in(tls_postgres, app_role, "new-Secret-2") and not _logs_in(
        tls_postgres, app_role, "old-Secret-1"
    )
    journal = env.settings.state_dir / "journal" / "staging.jsonl"
    text = journal.read_text()
    assert "new-Secret-2" not in text and "old-Secret-1" not in text
    steps = [r["step"] for r in read(journal) if r.get("event") == "step" and r.get("status") == "ok"]
    assert steps == ["put_secret_value", "set_password", "login", "promote", "unstage_pending"]


def test_a_new_password_that_does_not_log_in_keeps_the_old_one_current(env: Any, tls_postgres: Any):
    """The secret holds the master user: modify_db_instance goes to RDS (moto), but the server behind
    the tunnel never takes the password, so the login with it fails for real."""
    from spywatcher_ops.core.journal import read
    from spywatcher_ops.recovery.credentials import rotate

    _secret_as("postgres", tls_postgres.superuser_password)
    current = next(v for v, s in _stages().items() if "AWSCURRENT" in s)
    with pytest.raises(RolledBack) as caught:
        rotate(env, approve=lambda plan: True, password=lambda: "never-Works-3")
    assert caught.value.exit_code == 4
    assert "the new password of postgres did not log in" in str(caught.value)
    assert "the old password is set again and stays AWSCURRENT" in str(caught.value)
    stages = _stages()
    assert stages[current] == ["AWSCURRENT"]
    assert not any("AWSPENDING" in s for s in stages.values())
    assert _value("AWSCURRENT")["password"] == tls_postgres.superuser_password
    assert _logs_in(tls_postgres, "postgres", tls_postgres.superuser_password)
    records = read(env.settings.state_dir / "journal" / "staging.jsonl")
    rollback = next(r for r in records if r.get("step") == "rollback")
    assert rollback["status"] == "ok" and rollback["login_with_old"] is True
    assert [r["outcome"] for r in records if r.get("event") == "end"] == ["RolledBack"]


def test_rotation_then_the_backend_restarts_on_the_cluster(
    kube_config: Any, kube_aws: None, fake_kube: Any, tls_postgres: Any
):
    """Against the in-test Kubernetes API: after the rotation, app.restart's own domain function
    rolls the backend (every pod replaced)."""
    import boto3

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load
    from spywatcher_ops.recovery.credentials import restart_readers, rotate

    role = f"rot_{uuid.uuid4().hex[:8]}"
    tls_postgres.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'old-Secret-1'")
    try:
        boto3.client("rds", region_name="us-east-1").create_db_instance(
            DBInstanceIdentifier="spywatcher-kubetest-db",
            Engine="postgres",
            DBInstanceClass="db.t3.medium",
            AllocatedStorage=20,
            MasterUsername="postgres",
            MasterUserPassword="master-Secret-1",
        )
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="spywatcher-kubetest-db-credentials",
            SecretString=json.dumps({"username": role, "password": "old-Secret-1", "dbname": "postgres"}),
        )
        kube_config.ops.environments.kubetest.db_tunnels = {
            "spywatcher-kubetest-db": f"127.0.0.1:{tls_postgres.port}"
        }
        env = build(load(kube_config), "kubetest")
        backend = "spywatcher-kubetest-backend"
        pods_before = {name for (_ns, name) in fake_kube.store["pods"] if name.startswith(backend)}
        outcome = rotate(env, approve=lambda plan: True, password=lambda: "new-Secret-5")
        assert outcome.restart == ["backend"]
        done = restart_readers(env, outcome, approve=lambda plan: True, timeout=30)
        assert [d["name"] for d in done] == [backend]
        pods_after = {name for (_ns, name) in fake_kube.store["pods"] if name.startswith(backend)}
        assert pods_after and not (pods_after & pods_before)  # every pod replaced
        assert _logs_in(tls_postgres, role, "new-Secret-5")
    finally:
        tls_postgres.execute(f"DROP ROLE {role}")
