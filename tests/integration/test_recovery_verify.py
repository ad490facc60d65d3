"""db.verify against a real PostgreSQL 15 that accepts only TLS.

Two ways in: a small Database-port implementation of our own (the domain code
needs nothing but the port, as with the sandbox), and the real RdsDatabase in
moto reaching the server through `db_tunnels` with credentials from Secrets Manager.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from support.aws import APP_PASSWORD, APP_USER, REGION, SECRET, STAGING_DB, aws_env
from support.clock import FakeClock

from spywatcher_ops.core import config as cfg
from spywatcher_ops.core.environment import Environment
from spywatcher_ops.core.errors import BadInput
from spywatcher_ops.core.ports import ConnectionInfo, Instance
from spywatcher_ops.recovery.verify import verify

pytestmark = pytest.mark.real
RESTORE_POINT = datetime(2026, 11, 25, 14, 1, tzinfo=UTC)


class PgPort:
    """The read side of the Database port over the test server: `restored` is the
    database `spywatcher`, the source is `spywatcher_source` (one row more)."""

    def __init__(
        self,
        pg: Any,
        *,
        engine: str = "15.4",
        password: str = APP_PASSWORD,
        sslmode: str = "require",
        source_port: int | None = None,
    ) -> None:
        self.pg, self.engine, self.password, self.sslmode = pg, engine, password, sslmode
        self.source_port = source_port or pg.port

    def instance_id(self) -> str:
        return "src"

    def instances(self) -> list[Instance]:
        return [
            Instance("src", "available", self.pg.host, self.pg.port, self.engine),
            Instance("restored", "available", self.pg.host, self.pg.port, self.engine),
        ]

    def describe(self, instance_id: str | None = None) -> Instance:
        return next(i for i in self.instances() if i.id == (instance_id or "src"))

    def connection(self, instance_id: str | None = None) -> ConnectionInfo:
        source = instance_id in (None, "src")
        return ConnectionInfo(
            host=self.pg.host,
            port=str(self.source_port if source else self.pg.port),
            dbname="spywatcher_source" if source else "spywatcher",
            user=APP_USER,
            password=self.password,
            sslmode=self.sslmode,
        )


class Parts:
    def __init__(self, database: PgPort) -> None:
        self._database = database

    def database(self) -> PgPort:
        return self._database


def _env(ops_config: Any, port: PgPort, freshness: list[dict[str, Any]] | None = None) -> Environment:
    ops_config.ops.database.freshness_tables = (
        freshness if freshness is not None else [{"table": "events", "column": "created_at"}]
    )
    settings = cfg.load(ops_config)
    return Environment(settings, settings.env("sandbox"), FakeClock(), _parts=Parts(port))  # type: ignore[arg-type]


def _by_name(report: Any) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def test_all_checks_pass_over_tls_and_counts_are_compared(tls_postgres, ops_config):
    report = verify(_env(ops_config, PgPort(tls_postgres)), "restored", as_of=RESTORE_POINT)
    checks = _by_name(report)
    assert report.ok, report.to_dict()
    assert checks["tls"].ok and checks["tls"].detail.startswith("TLSv1")
    assert checks["tls"].detail.endswith(
        "certificate NOT verified: set ops.database.ssl_root_cert to the RDS CA bundle"
    )
    assert checks["server version"].detail.startswith("PostgreSQL 15.")
    assert checks["tables"].detail == "2 table(s) in public"
    assert checks["freshness events.created_at"].detail.startswith(
        "newest row 2026-11-25T14:00:50.000Z (10 s before"
    )
    assert "1 differ (events 50 vs 51)" in checks["row counts vs src"].detail


def test_failures_say_what_and_hint_how(tls_postgres, ops_config):
    env = _env(
        ops_config,
        PgPort(tls_postgres, engine="14.9"),
        [{"table": "events", "column": "created_at", "max_age_s": 5}, {"table": "audit", "column": "at"}],
    )
    report = verify(env, "restored", as_of=RESTORE_POINT)
    checks = _by_name(report)
    assert not report.ok
    assert checks["server version"].ok is False and "14.9" in checks["server version"].detail
    assert (
        checks["freshness events.created_at"].ok is False
        and "max_age_s=5" in checks["freshness events.created_at"].hint
    )
    assert checks["freshness audit.at"].ok is False and "audit" in checks["freshness audit.at"].detail


def test_unreachable_source_only_skips_the_comparison(tls_postgres, ops_config):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    report = verify(
        _env(ops_config, PgPort(tls_postgres, source_port=closed)), "restored", as_of=RESTORE_POINT
    )
    assert report.ok
    assert _by_name(report)["row counts vs src"].ok is None
    assert "source not reachable" in _by_name(report)["row counts vs src"].detail


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"password": "wrong"}, "password authentication failed"),
        (
            {"sslmode": "disable"},
            "no encryption",
        ),  # the server only accepts TLS: the check proves TLS is real
    ],
)
def test_connect_failures_are_one_failed_check(tls_postgres, ops_config, kwargs, text):
    report = verify(_env(ops_config, PgPort(tls_postgres, **kwargs)), "restored")
    (check,) = report.checks
    assert check.name == "connect" and check.ok is False and text in check.detail
    assert "wrong" not in check.detail and check.hint


def test_unknown_instance_is_bad_input(tls_postgres, ops_config):
    with pytest.raises(BadInput, match="--instance nope: no such instance; instances: restored, src"):
        verify(_env(ops_config, PgPort(tls_postgres)), "nope")


def test_rds_verify_reads_the_secret_and_connects_with_tls(tls_postgres, staging_aws, ops_config):
    boto3.client("rds", region_name=REGION).restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier=STAGING_DB,
        TargetDBInstanceIdentifier="fix-1",
        UseLatestRestorableTime=True,
    )
    boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=SECRET)
    tunnel = f"{tls_postgres.host}:{tls_postgres.port}"
    ops_config.ops.environments.staging.db_tunnels = {STAGING_DB: tunnel, "fix-1": tunnel}
    ops_config.ops.database.freshness_tables = [{"table": "events", "column": "created_at"}]
    report = verify(aws_env(ops_config), "fix-1")
    checks = _by_name(report)
    assert report.ok, report.to_dict()
    assert report.target == f"postgresql://spywatcher@{tunnel}/spywatcher"
    assert (
        checks["tls"].ok
        and checks["row counts vs spywatcher-staging-db"].detail == "2 table(s), all counts equal"
    )
