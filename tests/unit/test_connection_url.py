"""One way to print a database's address: db.verify, the drill preflight and sandbox.status agree."""

from __future__ import annotations

from spywatcher_ops.backends.sandbox import lifecycle
from spywatcher_ops.core.ports import ConnectionInfo

TWO_HOSTS = (
    "postgresql://spywatcher@127.0.0.1:31443,127.0.0.1:20409/spywatcher?target_session_attrs=read-write"
)


def test_a_two_host_connection_pairs_each_host_with_its_port():
    info = ConnectionInfo(
        "127.0.0.1,127.0.0.1",
        "31443,20409",
        "spywatcher",
        "spywatcher",
        password="s3cret",
        target_session_attrs="read-write",
    )
    assert info.redacted() == TWO_HOSTS
    assert "s3cret" not in info.redacted()


def test_one_host_one_port():
    info = ConnectionInfo("db.example.org", "5432", "app", "spywatcher")
    assert info.redacted() == "postgresql://spywatcher@db.example.org:5432/app"


def test_sandbox_status_prints_the_same_address():
    state = {
        "main": "db-1",
        "instances": {"db-1": {"primary": "n1", "standby": "n2"}},
        "nodes": {"n1": {"port": 31443}, "n2": {"port": 20409}},
    }
    assert lifecycle.database_url(state, "spywatcher", "spywatcher") == TWO_HOSTS
