"""Sealed tests: fake AWS credentials, a private HOME and KUBECONFIG, a private
state folder, and no network except loopback (moto servers, the in-test
Kubernetes API, local PostgreSQL/Redis/sshd).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import freezegun
import pytest
from support.paths import ROOT

# freezegun patches datetime in every loaded module when a freeze starts; a
# pydantic model module (pulled in by moto or kubernetes) raises there, and an
# exception inside start() leaves time frozen for the rest of the session.
# Our tests freeze our own code's clock only.
freezegun.configure(
    extend_ignore_list=[
        "pydantic",
        "pydantic_core",
        "moto",
        "botocore",
        "boto3",
        "kubernetes",
        "urllib3",
        "redis",
        "psycopg",
        "rich",
        "werkzeug",
        "flask",
    ]
)

# Fixtures used by more than one tier (tests/README.md); a fixture only one tier
# uses lives in that tier's conftest.py. pytest honours pytest_plugins only here.
pytest_plugins = [
    "support.aws",
    "support.pg_tls",
    "support.sandbox",
    "support.cache",
    "support.kube",
    "support.infra",
    "support.hosts",
    "support.var_tmp",
]


def pytest_configure(config: pytest.Config) -> None:
    """Tests live in a tier (unit, integration, e2e); one left directly in tests/ would not run."""
    stray = sorted(p.name for p in Path(__file__).parent.glob("test_*.py"))
    if stray:
        raise pytest.UsageError(
            f"tests/{stray[0]}: put it in tests/unit, tests/integration or tests/e2e (tests/README.md)"
        )


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(address: object) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host in ("localhost",):
            return
        try:
            if ipaddress.ip_address(host.split("%")[0]).is_loopback:
                return
        except ValueError:
            pass
        raise ConnectionRefusedError(f"test tried to reach {address!r}: tests may only use loopback")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _loopback_only(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _loopback_only(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def sealed(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / "kubeconfig"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("SPYWATCHER_OPS_CONFIRM", raising=False)
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    return home


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private state folder for one test (journals, locks, reports)."""
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def ops_config(state_dir: Path):
    """invoke Config with the project's invoke.yaml and a private state folder."""
    from invoke import Config

    config = Config(project_location=str(ROOT))
    config.load_project()
    config.ops.state_dir = str(state_dir)
    return config
