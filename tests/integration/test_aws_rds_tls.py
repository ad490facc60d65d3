"""RDS connections verify the server certificate when the CA bundle is configured
(ops.database.ssl_root_cert): verify-full on the endpoint, verify-ca through a
tunnel. Against the real TLS PostgreSQL (its self-signed certificate plays the
RDS CA) and moto for the instance and the secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from support.aws import STAGING_DB, aws_env


@pytest.fixture
def server_ca(tls_postgres, tmp_path) -> Path:
    """The TLS server's certificate, readable by this user."""
    path = tmp_path / "rds-ca.pem"
    shutil.copy(tls_postgres.root / "data" / "server.crt", path)
    return path


@pytest.fixture
def other_ca(tmp_path) -> Path:
    key, cert = tmp_path / "other.key", tmp_path / "other.pem"
    subprocess.run(
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
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=not-rds",
        ],
        check=True,
        capture_output=True,
    )
    return cert


def tunnelled(ops_config, tls_postgres, ca):
    ops_config.ops.environments.staging.db_tunnels = {STAGING_DB: f"127.0.0.1:{tls_postgres.port}"}
    if ca is not None:
        ops_config.ops.database.ssl_root_cert = str(ca)
    return aws_env(ops_config).database.connection()


def test_without_a_ca_bundle_tls_is_required_but_not_verified(staging_aws, ops_config, tls_postgres):
    info = tunnelled(ops_config, tls_postgres, None)
    assert info.sslmode == "require" and "sslrootcert" not in info.kwargs()


def test_through_a_tunnel_the_certificate_is_verified_against_the_bundle(
    staging_aws, ops_config, tls_postgres, server_ca
):
    info = tunnelled(ops_config, tls_postgres, server_ca)
    assert info.sslmode == "verify-ca" and info.kwargs()["sslrootcert"] == str(server_ca.resolve())
    with psycopg.connect(**info.kwargs(), connect_timeout=5) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0] is True


def test_a_server_signed_by_another_ca_is_refused(staging_aws, ops_config, tls_postgres, other_ca):
    info = tunnelled(ops_config, tls_postgres, other_ca)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**info.kwargs(), connect_timeout=5)


def test_on_the_endpoint_itself_the_host_name_is_verified_too(staging_aws, ops_config, server_ca):
    ops_config.ops.database.ssl_root_cert = str(server_ca)
    info = aws_env(ops_config).database.connection()
    assert info.sslmode == "verify-full" and info.host.endswith(".rds.amazonaws.com")
