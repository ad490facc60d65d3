"""EKS authentication: the k8s-aws-v1 token (moto for STS/EKS), the endpoint and
CA from describe_cluster (the in-test API server over HTTPS with a test CA),
token renewal before expiry, and the kubeconfig-context alternative."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from support.clock import FakeClock
from support.kube import ENV_NAME, write_kubeconfig

from spywatcher_ops.backends.table import build
from spywatcher_ops.core.config import load
from spywatcher_ops.core.errors import BadInput, NotReady

CLUSTER = f"spywatcher-{ENV_NAME}-eks"


def _decode(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    body = token[len("k8s-aws-v1.") :]
    assert "=" not in body, "base64url without padding"
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "tls.crt").write_bytes(pem)
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return ctx, base64.b64encode(pem).decode()


def _create_cluster(endpoint: str | None = None, ca: str | None = None) -> None:
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.eks.models import eks_backends

    boto3.client("eks", region_name="us-east-1").create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    if endpoint:
        # moto invents an endpoint; make it the in-test API server (and its CA), as EKS would report it
        cluster = eks_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].clusters[CLUSTER]
        cluster.endpoint = endpoint
        cluster.certificate_authority = {"data": ca}


def test_token_is_a_presigned_get_caller_identity_url_bound_to_the_cluster():
    import boto3
    from moto import mock_aws

    from spywatcher_ops.backends.aws.eks import eks_token

    with mock_aws():
        token = eks_token(boto3.client("sts", region_name="us-east-1"), CLUSTER)
    url = urlparse(_decode(token))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.scheme == "https" and url.hostname and url.hostname.startswith("sts")
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    assert query["X-Amz-Credential"].endswith("/us-east-1/sts/aws4_request")  # signed for the regional STS
    assert url.hostname == "sts.us-east-1.amazonaws.com"
    assert CLUSTER not in url.query  # the cluster name travels as a signed header, not a parameter


def test_eks_endpoint_ca_and_token_reach_the_api_server_over_tls(kube_config, fake_kube, tmp_path):
    from moto import mock_aws
    from support.kube_api_server import FakeKube, standard_cluster, wait_ready

    ctx, ca = _self_signed(tmp_path)
    tls = standard_cluster(FakeKube(ready_after=0.05), env=ENV_NAME)
    tls.authorize = lambda header: bool(header) and header.startswith("Bearer k8s-aws-v1.")
    tls.serve(ssl_context=ctx)
    try:
        wait_ready(tls)
        del kube_config.ops.environments[ENV_NAME]["kube_context"]
        clock = FakeClock()
        with mock_aws():
            _create_cluster(tls.url, ca)
            env = build(load(kube_config), ENV_NAME, clock=clock)
            cluster = env.cluster
            assert cluster.describe_access().startswith(f"EKS cluster {CLUSTER}")
            names = [d["metadata"]["name"] for d in cluster.deployments()]
            assert names == [f"spywatcher-{ENV_NAME}-backend", f"spywatcher-{ENV_NAME}-frontend"]
            first = tls.auth_headers[-1]
            cluster.kube.nodes()
            assert tls.auth_headers[-1] == first, "a fresh token is reused"
            clock.t += 13 * 60 + 1  # past the renewal age: the next call carries a new token
            second = int(time.time())
            while int(time.time()) == second:  # SigV4 dates have 1 s resolution: same second, same token
                time.sleep(0.05)
            cluster.kube.nodes()
            renewed = tls.auth_headers[-1]
        assert renewed != first and renewed.startswith("Bearer k8s-aws-v1.")
        assert "x-k8s-aws-id" in _decode(renewed.split(" ", 1)[1])
    finally:
        tls.close()


def test_wrong_ca_is_refused(kube_config, tmp_path):
    from moto import mock_aws
    from support.kube_api_server import FakeKube

    ctx, _ = _self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    _, other_ca = _self_signed(tmp_path / "other")
    tls = FakeKube()
    tls.serve(ssl_context=ctx)
    try:
        del kube_config.ops.environments[ENV_NAME]["kube_context"]
        with mock_aws():
            _create_cluster(tls.url, other_ca)
            env = build(load(kube_config), ENV_NAME)
            with pytest.raises(
                NotReady, match="cannot reach the Kubernetes API: .*CERTIFICATE_VERIFY_FAILED"
            ):
                env.cluster.kube.nodes()
    finally:
        tls.close()


def test_missing_eks_cluster_is_not_ready(kube_config):
    from moto import mock_aws

    del kube_config.ops.environments[ENV_NAME]["kube_context"]
    with mock_aws():
        env = build(load(kube_config), ENV_NAME)
        with pytest.raises(NotReady, match=f"EKS cluster {CLUSTER} not found in us-east-1"):
            env.cluster.deployments()


def test_kube_context_uses_the_kubeconfig_token(kube_env, fake_kube):
    kube_env.cluster.kube.nodes()
    assert fake_kube.auth_headers[-1] == "Bearer fake-kube-token"
    assert kube_env.cluster.describe_access() == "kubeconfig context fake"


def test_unknown_kube_context_is_bad_input(kube_config, fake_kube, tmp_path):
    write_kubeconfig(tmp_path / "other", fake_kube.url, context="elsewhere")
    kube_config.ops.environments[ENV_NAME]["kubeconfig"] = str(tmp_path / "other")
    env = build(load(kube_config), ENV_NAME)
    with pytest.raises(BadInput, match="kube_context fake"):
        env.cluster.deployments()
