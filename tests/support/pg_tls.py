"""A real local PostgreSQL 15 with ssl=on (self-signed certificate) that only
accepts TLS connections over TCP: what the RDS tests connect to (fixtures
registered from tests/conftest.py; integration and e2e tiers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.aws import APP_PASSWORD, APP_USER

PG_BIN = "/usr/lib/postgresql/15/bin"


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
