"""The data-tier steps on aws. moto 5.2 lacks RDS describe_pending_maintenance_actions,
apply_pending_maintenance_action and describe_db_engine_versions, so the RDS client
answers through botocore's Stubber, which checks every request and reply against the
real service model, in the exact order the step makes the calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from support.aws import aws_env
from support.clock import FakeClock

from spywatcher_ops.maintenance.steps import StepContext

ARN = "arn:aws:rds:us-east-1:123456789012:db:spywatcher-staging-db"
AT = datetime(2026, 12, 6, 2, 5, tzinfo=UTC)


def _instance(
    status: str = "available", version: str = "15.3", pending: dict | None = None
) -> dict[str, Any]:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "spywatcher-staging-db",
                "DBInstanceArn": ARN,
                "Engine": "postgres",
                "EngineVersion": version,
                "DBInstanceStatus": status,
                "MultiAZ": True,
                "PendingModifiedValues": pending or {},
            }
        ]
    }


def _actions(*names: str) -> dict[str, Any]:
    return {
        "PendingMaintenanceActions": [
            {
                "ResourceIdentifier": ARN,
                "PendingMaintenanceActionDetails": [
                    {"Action": n, "Description": f"{n} available", "OptInStatus": "next-maintenance"}
                    for n in names
                ],
            }
        ]
        if names
        else []
    }


VERSIONS = {
    "DBEngineVersions": [
        {
            "Engine": "postgres",
            "EngineVersion": "15.3",
            "ValidUpgradeTarget": [
                {"Engine": "postgres", "EngineVersion": "15.4", "IsMajorVersionUpgrade": False},
                {"Engine": "postgres", "EngineVersion": "15.8", "IsMajorVersionUpgrade": False},
                {"Engine": "postgres", "EngineVersion": "16.4", "IsMajorVersionUpgrade": True},
            ],
        }
    ]
}


@pytest.fixture
def staging(ops_config: Any) -> Any:
    env = aws_env(ops_config, FakeClock(AT))
    rds = env.parts.clients.client("rds")
    with Stubber(rds) as stub:
        yield env, stub
        stub.assert_no_pending_responses()


def test_rds_pending_actions_and_the_newest_minor_upgrade(staging: Any) -> None:
    env, stub = staging
    port = env.parts.maintenance()
    ident = {"DBInstanceIdentifier": "spywatcher-staging-db"}
    # plan
    stub.add_response("describe_db_instances", _instance(), ident)
    stub.add_response(
        "describe_pending_maintenance_actions", _actions("system-update"), {"ResourceIdentifier": ARN}
    )
    stub.add_response(
        "describe_db_engine_versions", VERSIONS, {"Engine": "postgres", "EngineVersion": "15.3"}
    )
    plan = port.plan_database_maintenance()
    assert [(s.action, s.params.get("ApplyAction") or s.params.get("EngineVersion")) for s in plan.steps] == [
        ("apply_pending_maintenance_action", "system-update"),
        ("modify_db_instance", "15.8"),
    ]  # never 16.x
    assert plan.steps[1].params["AllowMajorVersionUpgrade"] is False
    # apply, then wait on the instance
    stub.add_response(
        "apply_pending_maintenance_action",
        {"ResourcePendingMaintenanceActions": {"ResourceIdentifier": ARN}},
        {"ResourceIdentifier": ARN, "ApplyAction": "system-update", "OptInType": "immediate"},
    )
    stub.add_response(
        "modify_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": "spywatcher-staging-db"}},
        {**ident, "EngineVersion": "15.8", "ApplyImmediately": True, "AllowMajorVersionUpgrade": False},
    )
    stub.add_response(
        "describe_db_instances", _instance("upgrading", "15.3", {"EngineVersion": "15.8"}), ident
    )
    stub.add_response("describe_db_instances", _instance("available", "15.8"), ident)
    stub.add_response("describe_pending_maintenance_actions", _actions(), {"ResourceIdentifier": ARN})
    stub.add_response(
        "describe_events",
        {
            "Events": [
                {
                    "SourceIdentifier": "spywatcher-staging-db",
                    "SourceType": "db-instance",
                    "Date": AT + timedelta(minutes=3),
                    "Message": "Database instance patched",
                },
                {
                    "SourceIdentifier": "spywatcher-staging-db",
                    "SourceType": "db-instance",
                    "Date": AT + timedelta(minutes=4),
                    "Message": "Multi-AZ instance failover completed",
                },
            ]
        },
        {"SourceIdentifier": "spywatcher-staging-db", "SourceType": "db-instance", "StartTime": AT},
    )
    seen: list[str] = []
    result = port.database_maintenance(plan, progress=seen.append)
    assert result.details["engine_version"] == "15.8"
    assert [e.message for e in result.events] == [
        "Database instance patched",
        "Multi-AZ instance failover completed",
    ]
    assert any("upgrading" in s for s in seen)
    # afterwards nothing is pending: the step's post-check reads this
    stub.add_response("describe_db_instances", _instance("available", "15.8"), ident)
    stub.add_response("describe_pending_maintenance_actions", _actions(), {"ResourceIdentifier": ARN})
    stub.add_response(
        "describe_db_engine_versions",
        {
            "DBEngineVersions": [
                {
                    "Engine": "postgres",
                    "EngineVersion": "15.8",
                    "ValidUpgradeTarget": [
                        {"Engine": "postgres", "EngineVersion": "16.4", "IsMajorVersionUpgrade": True}
                    ],
                }
            ]
        },
        {"Engine": "postgres", "EngineVersion": "15.8"},
    )
    assert port.pending_changes() == []


def test_the_db_engine_step_precheck_lists_what_is_pending(staging: Any) -> None:
    from spywatcher_ops.maintenance.data_tier import DB_ENGINE

    env, stub = staging
    ident = {"DBInstanceIdentifier": "spywatcher-staging-db"}
    for _ in range(2):  # pending_changes(), then the plan
        stub.add_response("describe_db_instances", _instance(), ident)
        stub.add_response("describe_pending_maintenance_actions", _actions(), {"ResourceIdentifier": ARN})
        stub.add_response(
            "describe_db_engine_versions", VERSIONS, {"Engine": "postgres", "EngineVersion": "15.3"}
        )
    ctx = StepContext(
        env=env, settings={"max_write_pause_s": 5.0}, progress=lambda _s: None, note=lambda *_a: None
    )
    checks = DB_ENGINE.precheck(ctx)
    assert [c.status for c in checks] == ["ok", "ok"]
    assert checks[1].detail == "engine-version 15.3 -> 15.8"


def test_elasticache_service_updates_applied_and_waited_on(ops_config: Any) -> None:
    env = aws_env(ops_config, FakeClock(AT))
    client = env.parts.clients.client("elasticache")
    group = {"ReplicationGroupIds": ["spywatcher-staging-redis"]}
    open_ = {**group, "UpdateActionStatus": ["not-applied", "waiting-to-start", "stopped", "scheduled"]}

    def action(status: str) -> dict[str, Any]:
        return {
            "UpdateActions": [
                {
                    "ReplicationGroupId": "spywatcher-staging-redis",
                    "ServiceUpdateName": "elasticache-20261101-002",
                    "ServiceUpdateSeverity": "important",
                    "ServiceUpdateType": "security-update",
                    "UpdateActionStatus": status,
                }
            ]
        }

    with Stubber(client) as stub:
        stub.add_response("describe_update_actions", action("not-applied"), open_)
        plan = env.parts.maintenance().plan_cache_maintenance()
        assert [s.params["ServiceUpdateName"] for s in plan.steps] == ["elasticache-20261101-002"]
        stub.add_response(
            "batch_apply_update_action",
            {
                "ProcessedUpdateActions": [
                    {
                        "ReplicationGroupId": "spywatcher-staging-redis",
                        "ServiceUpdateName": "elasticache-20261101-002",
                        "UpdateActionStatus": "in-progress",
                    }
                ],
                "UnprocessedUpdateActions": [],
            },
            {**group, "ServiceUpdateName": "elasticache-20261101-002"},
        )
        stub.add_response("describe_update_actions", action("in-progress"), group)
        stub.add_response("describe_update_actions", action("complete"), group)
        stub.add_response(
            "describe_replication_groups",
            {
                "ReplicationGroups": [
                    {
                        "ReplicationGroupId": "spywatcher-staging-redis",
                        "MemberClusters": ["spywatcher-staging-redis-001"],
                    }
                ]
            },
            {"ReplicationGroupId": "spywatcher-staging-redis"},
        )
        stub.add_response(
            "describe_events",
            {
                "Events": [
                    {
                        "SourceIdentifier": "spywatcher-staging-redis-001",
                        "SourceType": "cache-cluster",
                        "Message": "Finished applying service update",
                        "Date": AT + timedelta(minutes=2),
                    }
                ]
            },
            {"StartTime": AT},
        )
        seen: list[str] = []
        result = env.parts.maintenance().cache_maintenance(plan, progress=seen.append)
        stub.assert_no_pending_responses()
    assert result.details == {"applied": ["elasticache-20261101-002"]}
    assert [e.message for e in result.events] == ["Finished applying service update"]
    assert "elasticache-20261101-002 in-progress" in seen


def _ca_and_cert(days: int) -> tuple[bytes, bytes, bytes]:
    """(CA cert PEM, server cert PEM, server key PEM) for 127.0.0.1, valid `days`."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca.public_bytes(pem),
        cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def test_acm_certificates_by_tag_and_the_api_endpoint_over_tls(
    ops_config: Any, staging_aws: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    import boto3
    from support.loopback_http import QuietHandler, serve, stop

    from spywatcher_ops.maintenance.data_tier import TLS_RENEW

    acm = boto3.client("acm", region_name="us-east-1")
    _ca, soon, soon_key = _ca_and_cert(10)
    imported = acm.import_certificate(
        Certificate=soon, PrivateKey=soon_key, Tags=[{"Key": "Environment", "Value": "staging"}]
    )["CertificateArn"]
    _ca2, other, other_key = _ca_and_cert(10)
    acm.import_certificate(
        Certificate=other, PrivateKey=other_key, Tags=[{"Key": "Environment", "Value": "production"}]
    )
    # the API endpoint: HTTPS on loopback with a certificate from a CA the handshake is told to trust
    ca, api_cert, api_key = _ca_and_cert(200)
    (tmp_path / "ca.pem").write_bytes(ca)
    (tmp_path / "api.pem").write_bytes(api_cert + api_key)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "api.pem")

    class Health(QuietHandler):
        def do_GET(self) -> None:
            self.reply(200, b"{}")

    server, url = serve(Health, "api", context)
    try:
        ops_config.ops.environments.staging.health_url = url + "/health"
        env = aws_env(ops_config, FakeClock(datetime.now(UTC)))
        certs = {c.source: c for c in env.parts.maintenance().certificates()}
        assert set(certs) == {"imported", "endpoint"}  # the production one is not this environment's
        assert certs["imported"].id == imported
        assert 199 <= (certs["endpoint"].not_after - datetime.now(UTC)).days <= 200
        ctx = StepContext(
            env=env,
            settings={"renew_within_days": 30, "force": False, "valid_days": 90},
            progress=lambda _s: None,
            note=lambda *_a: None,
        )
        checks = TLS_RENEW.precheck(ctx)
        bad = [c for c in checks if c.status == "failed"]
        assert len(bad) == 1 and imported in bad[0].detail and "expires in 9 days" in bad[0].detail
        assert f"aws acm import-certificate --certificate-arn {imported}" in (bad[0].hint or "")
        assert [c.status for c in checks if c.detail.startswith("endpoint ")] == ["ok"]
        # a certificate the handshake cannot verify is a failed check, not a pass
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))
        failed = TLS_RENEW.precheck(ctx)
        assert failed[0].status == "failed" and "TLS handshake with 127.0.0.1" in failed[0].detail
    finally:
        stop(server)
