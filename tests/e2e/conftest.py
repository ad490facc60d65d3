"""The e2e tier: the `inv` command end to end, run as a subprocess from the
repository root (it may also use real PostgreSQL, Redis, sshd or terraform).
Fixtures only this tier uses live here; shared ones are in tests/support.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.aws import build_staging
from support.kube import ENV_NAME, _create_lock_table, kube_env_spec, write_kubeconfig
from support.paths import ROOT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this tier carries the e2e marker (-m e2e / -m "not e2e" keep working)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def moto_staging(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh moto server state with the staging environment; AWS_ENDPOINT_URL points at it."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    info = build_staging()
    info["endpoint"] = moto_server
    return info


@pytest.fixture
def iam_sim() -> Iterator[Any]:
    """IAM policy simulation on loopback (moto lacks it), for `inv` subprocesses."""
    from support.iam_sim_server import IamSimulation

    sim = IamSimulation()
    sim.serve()
    yield sim
    sim.close()


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
