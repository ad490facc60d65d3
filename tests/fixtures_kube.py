"""Kubernetes fixtures: the in-test API server (tests/kube_api_server.py), a
kubeconfig pointing at it, and an aws environment (`kubetest`) whose cluster
is that server. AWS calls the environment makes (the lock table, STS for the
journal's identity) go to moto: in-process `mock_aws` for in-process tests, a
loopback moto server for `inv` subprocesses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ENV_NAME = "kubetest"
TOKEN = "fake-kube-token"
LOCK_TABLE = "spywatcher-ops-locks"
ROOT = Path(__file__).resolve().parents[1]


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
    from kube_api_server import FakeKube, standard_cluster, wait_ready

    fake = standard_cluster(FakeKube(ready_after=0.0), env=ENV_NAME)  # the starting pods are ready at once
    fake.serve()
    wait_ready(fake)
    fake.ready_after = 0.15  # pods created from here on take a moment to pass their readiness probe
    yield fake
    fake.close()


@pytest.fixture
def health(fake_kube: Any) -> Iterator[Any]:
    """The API's health URL: 200 while a backend pod of the fake cluster is ready, else 503."""
    from kube_api_server import HealthServer

    server = HealthServer(fake_kube)
    server.serve()
    yield server
    server.close()


@pytest.fixture
def iam_sim() -> Iterator[Any]:
    """IAM policy simulation on loopback (moto lacks it), for `inv` subprocesses."""
    from iam_sim_server import IamSimulation

    sim = IamSimulation()
    sim.serve()
    yield sim
    sim.close()


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


@pytest.fixture
def kube_env(kube_config: Any, kube_aws: None) -> Any:
    """An Environment (`kubetest`, kind aws) whose cluster is the fake API server."""
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    return build(load(kube_config), ENV_NAME)


@pytest.fixture(scope="session")
def kube_moto_server() -> Iterator[str]:
    """A loopback moto server (for `inv` subprocesses) with the lock table."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    ddb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    _create_lock_table(ddb)
    yield url
    server.stop()


class InvRunner:
    """Runs `inv` from the repo root against the `kubetest` environment."""

    def __init__(self, state_dir: Path, config_file: Path, moto_url: str) -> None:
        self.state_dir, self.config_file, self.moto_url = state_dir, config_file, moto_url

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "INVOKE_OPS_STATE_DIR": str(self.state_dir),
            "AWS_ENDPOINT_URL": self.moto_url,
            "COLUMNS": "250",
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "-m", "invoke", "-f", str(self.config_file), *args],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def inv_kube(fake_kube: Any, kube_moto_server: str, state_dir: Path, tmp_path: Path) -> InvRunner:
    import boto3

    # moto servers in one process share one state: another fixture's /moto-api/reset
    # removes the table created at session start, so make sure it is there now.
    _create_lock_table(
        boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=kube_moto_server,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    )
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url)
    config_file = tmp_path / "kubetest.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "ops": {
                    "environments": {ENV_NAME: kube_env_spec(kubeconfig)},
                    "aws": {"poll_seconds": 0.05},
                }
            }
        )
    )
    return InvRunner(state_dir, config_file, kube_moto_server)
