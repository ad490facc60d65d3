"""Shared AWS fixtures (loaded from conftest.py via pytest_plugins).

- `staging_aws`: in-process moto (`mock_aws`) holding a staging environment
  like the real one: VPC, two subnets, a DB subnet group, security groups, a
  parameter group, KMS keys (home region and us-west-2), the credentials
  secret, the RDS PostgreSQL 15 instance (Multi-AZ, encrypted, monitoring on)
  and the DynamoDB lock table.
- `moto_server` / `moto_staging`: the same environment inside a moto server on
  127.0.0.1 (a fresh state per test), reached through AWS_ENDPOINT_URL; for
  end-to-end tests that run the real `inv` command.
- `tls_postgres`: a real local PostgreSQL 15 with ssl=on (self-signed
  certificate) that only accepts TLS connections over TCP.
- `FakeClock`: wall time fixed, monotonic time advancing by what is slept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
COPY_REGION = "us-west-2"
STAGING_DB = "spywatcher-staging-db"
SECRET = "spywatcher-staging-db-credentials"
LOCK_TABLE = "spywatcher-ops-locks"
MONITORING_ROLE = "arn:aws:iam::123456789012:role/rds-monitoring"
APP_USER = "spywatcher"
APP_PASSWORD = "app-Secret-42"
PG_BIN = "/usr/lib/postgresql/15/bin"


class FakeClock:
    """Wall time fixed at `at`; `sleep` advances both clocks, so waits cost nothing."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime.now(UTC)
        self.t = 1000.0
        self.slept = 0.0

    def now(self) -> datetime:
        from datetime import timedelta

        return self.at + timedelta(seconds=self.slept)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.slept += seconds


_LOADER: Any = None


def _session() -> Any:
    """A boto3 session sharing one service-model loader across tests: moto resets
    boto3's default session per test, and re-reading the models costs ~0.3 s each time."""
    global _LOADER
    import boto3
    import botocore.loaders
    import botocore.session

    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, region_name=REGION)


def build_staging(*, password: str = APP_PASSWORD, dbname: str = "spywatcher") -> dict[str, Any]:
    """Create the staging resources with plain boto3 (moto in-process or server)."""
    boto3 = _session()
    ec2 = boto3.client("ec2", region_name=REGION)
    rds = boto3.client("rds", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    groups = [
        ec2.create_security_group(GroupName=f"spywatcher-staging-{n}", Description=n, VpcId=vpc)["GroupId"]
        for n in ("db", "db-admin")
    ]
    rds.create_db_subnet_group(
        DBSubnetGroupName="spywatcher-staging-db-subnets",
        DBSubnetGroupDescription="database subnets",
        SubnetIds=subnets,
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="spywatcher-staging-pg15",
        DBParameterGroupFamily="postgres15",
        Description="staging",
    )
    key = kms.create_key(Description="staging rds")["KeyMetadata"]["Arn"]
    west_key = boto3.client("kms", region_name=COPY_REGION).create_key(Description="dr copies")[
        "KeyMetadata"
    ]["Arn"]
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=SECRET, SecretString=json.dumps({"username": APP_USER, "password": password, "dbname": dbname})
    )["ARN"]
    rds.create_db_instance(
        DBInstanceIdentifier=STAGING_DB,
        Engine="postgres",
        EngineVersion="15.3",
        DBInstanceClass="db.t3.medium",
        AllocatedStorage=50,
        StorageType="gp3",
        MultiAZ=True,
        StorageEncrypted=True,
        KmsKeyId=key,
        DBSubnetGroupName="spywatcher-staging-db-subnets",
        VpcSecurityGroupIds=groups,
        DBParameterGroupName="spywatcher-staging-pg15",
        BackupRetentionPeriod=7,
        MasterUsername="postgres",
        MasterUserPassword="master-Secret-1",
        DBName=dbname,
        DeletionProtection=True,
        CopyTagsToSnapshot=True,
        Tags=[
            {"Key": "Environment", "Value": "staging"},
            {"Key": "Project", "Value": "spywatcher"},
            {"Key": "ManagedBy", "Value": "terraform"},
            {"Key": "CostCenter", "Value": "engineering"},
        ],
    )
    # moto drops monitoring settings given at creation; set them the way terraform's modify would.
    rds.modify_db_instance(
        DBInstanceIdentifier=STAGING_DB,
        MonitoringInterval=60,
        MonitoringRoleArn=MONITORING_ROLE,
        ApplyImmediately=True,
    )
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {
        "vpc": vpc,
        "subnets": subnets,
        "security_groups": groups,
        "kms_key": key,
        "west_key": west_key,
        "secret": secret,
        "instance": STAGING_DB,
        "subnet_group": "spywatcher-staging-db-subnets",
        "parameter_group": "spywatcher-staging-pg15",
    }


@pytest.fixture
def staging_aws(ops_config: Any) -> Any:
    """In-process moto with the staging environment; kms_keys[us-west-2] configured."""
    from moto import mock_aws

    with mock_aws():
        info = build_staging()
        ops_config.ops.environments.staging.kms_keys = {COPY_REGION: info["west_key"]}
        yield info


def aws_env(ops_config: Any, clock: Any = None, name: str = "staging") -> Any:
    """An Environment for `name` built from the test config (and a FakeClock by default)."""
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core import config as cfg

    return build(cfg.load(ops_config), name, clock=clock or FakeClock())


@pytest.fixture(scope="session")
def moto_server() -> Any:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_staging(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh moto server state with the staging environment; AWS_ENDPOINT_URL points at it."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    info = build_staging()
    info["endpoint"] = moto_server
    return info


# --- a real PostgreSQL 15 with TLS -------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    superuser_password: str
    root: Path

    def dsn(
        self, dbname: str = "postgres", user: str = "postgres", password: str | None = None
    ) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": dbname,
            "user": user,
            "sslmode": "require",
            "password": password or self.superuser_password,
        }

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(**self.dsn(dbname), autocommit=True) as conn:
            conn.execute(sql)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def tls_postgres() -> Any:
    """PostgreSQL 15 on 127.0.0.1 that accepts only TLS (hostssl) with passwords.

    Databases: `spywatcher` (tables events, users) owned by the app user, and
    `spywatcher_source`, a copy with more rows, for source comparisons.
    """
    with _tls_postgres_server("ops-verify-pg-") as server:
        for db in ("spywatcher", "spywatcher_source"):
            server.execute(f"CREATE DATABASE {db} OWNER {APP_USER}")
            server.execute(
                f"SET ROLE {APP_USER};"
                "CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, body text);"
                "CREATE TABLE users (id bigserial PRIMARY KEY, name text);"
                "INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 5) g;"
                "INSERT INTO events (created_at, body) SELECT timestamptz '2026-11-25 14:00:00+00' "
                "+ g * interval '1 second', 'e' FROM generate_series(1, 50) g;",
                dbname=db,
            )
        # the source has moved on since the "restore point"
        server.execute(
            "SET ROLE spywatcher; INSERT INTO events (created_at, body) VALUES (now(), 'later')",
            dbname="spywatcher_source",
        )
        yield server


@pytest.fixture(scope="session")
def tls_postgres_restored() -> Any:
    """A second TLS PostgreSQL (only the app role): where tests put what an RDS
    restore would hold, behind the restored instance's tunnel."""
    with _tls_postgres_server("ops-restored-pg-") as server:
        yield server


@contextlib.contextmanager
def _tls_postgres_server(prefix: str) -> Iterator[PgServer]:
    from spywatcher_ops.core.commands import require_binary, run

    initdb = require_binary("initdb", search=[PG_BIN], package="postgresql-15")
    pg_ctl = require_binary("pg_ctl", search=[PG_BIN], package="postgresql-15")
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix=prefix))
    root.chmod(0o755)
    data = root / "data"
    password = "super-Secret-7"
    (root / "pw").write_text(password + "\n")
    if user:
        shutil.chown(root, user)
        shutil.chown(root / "pw", user)
    run(
        [
            initdb,
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={root / 'pw'}",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        user=user,
        cwd=str(root),
    )
    run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            data / "server.key",
            "-out",
            data / "server.crt",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ]
    )
    (data / "server.key").chmod(0o600)
    if user:
        shutil.chown(data / "server.key", user)
        shutil.chown(data / "server.crt", user)
    port = _free_port()
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\n"
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
    (data / "pg_hba.conf").write_text(
        "local all all scram-sha-256\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 127.0.0.1/32 reject\n"
    )
    run([pg_ctl, "-D", data, "-l", root / "server.log", "-w", "-t", "30", "start"], user=user, cwd=str(root))
    server = PgServer("127.0.0.1", port, password, root)
    try:
        server.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
        yield server
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            user=user,
            capture_output=True,
            cwd=str(root),
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


CALLER_ARN = "arn:aws:sts::123456789012:user/moto"  # what moto's STS says the caller is


def stub_iam_simulation(
    env: Any, scenario: Any, *, deny: tuple[str, ...] = (), caller: str = CALLER_ARN
) -> Any:
    """botocore Stubber for the drills' IAM policy simulation (moto lacks it): one call per
    service, with the resource ARNs the toolkit must send; `deny` answers implicitDeny."""
    from botocore.stub import Stubber

    from spywatcher_ops.drills import aws as drill_aws

    actions = drill_aws.required_actions(env, scenario)
    resources = drill_aws.resource_arns(env, caller)
    stub = Stubber(env.parts.clients.client("iam"))
    for service, acts in drill_aws._by_service(actions):
        expected: dict[str, Any] = {"PolicySourceArn": drill_aws._policy_source(caller), "ActionNames": acts}
        if service in resources:
            expected["ResourceArns"] = [resources[service]]
        stub.add_response(
            "simulate_principal_policy",
            {
                "EvaluationResults": [
                    {"EvalActionName": a, "EvalDecision": "implicitDeny" if a in deny else "allowed"}
                    for a in acts
                ]
            },
            expected,
        )
    stub.activate()
    return stub
