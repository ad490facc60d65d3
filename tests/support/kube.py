"""Kubernetes fixtures: the in-test API server (support/kube_api_server.py), a
kubeconfig pointing at it, and an aws environment (`kubetest`) whose cluster
is that server. AWS calls the environment makes (the lock table, STS for the
journal's identity) go to moto: in-process `mock_aws` for in-process tests, a
loopback moto server for `inv` subprocesses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ENV_NAME = "kubetest"
TOKEN = "fake-kube-token"
LOCK_TABLE = "spywatcher-ops-locks"


def _create_lock_table(ddb: Any) -> None:
    if LOCK_TABLE in ddb.list_tables()["TableNames"]:
        return
    ddb.create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def fake_kube() -> Iterator[Any]:
    """Three nodes in three zones, backend (3) and frontend (2) with PDBs and HPAs, all ready."""
    from support.kube_api_server import FakeKube, standard_cluster, wait_ready

    fake = standard_cluster(FakeKube(ready_after=0.0), env=ENV_NAME)  # the starting pods are ready at once
    fake.serve()
    wait_ready(fake)
    fake.ready_after = 0.15  # pods created from here on take a moment to pass their readiness probe
    yield fake
    fake.close()


@pytest.fixture
def health(fake_kube: Any) -> Iterator[Any]:
    """The API's health URL: 200 while a backend pod of the fake cluster is ready, else 503."""
    from support.kube_api_server import HealthServer

    server = HealthServer(fake_kube)
    server.serve()
    yield server
    server.close()


def write_kubeconfig(path: Path, url: str, *, context: str = "fake", token: str = TOKEN) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "tester", "user": {"token": token}}],
                "contexts": [{"name": context, "context": {"cluster": "fake", "user": "tester"}}],
            }
        )
    )
    return path


def kube_env_spec(kubeconfig: Path) -> dict[str, Any]:
    return {
        "kind": "aws",
        "region": "us-east-1",
        "production": False,
        "allow_drills": True,
        "kube_context": "fake",
        "kubeconfig": str(kubeconfig),
    }


@pytest.fixture
def kube_config(ops_config: Any, fake_kube: Any, tmp_path: Path) -> Any:
    """The project's invoke Config plus the `kubetest` environment on the fake API server."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url)
    ops_config.ops.environments[ENV_NAME] = kube_env_spec(kubeconfig)
    ops_config.ops.aws.poll_seconds = 0.05
    return ops_config


@pytest.fixture
def kube_aws() -> Iterator[None]:
    """moto in-process, with the lock table the aws environment's lock needs."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        _create_lock_table(boto3.client("dynamodb", region_name="us-east-1"))
        yield


def cordoned(fake, name):
    return bool(fake.get("nodes", name)["spec"].get("unschedulable"))


def app_pods_on(fake, node):
    return [p for p in fake.pods() if p["spec"].get("nodeName") == node]
