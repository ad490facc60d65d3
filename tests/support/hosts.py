"""SSH host fixtures: a fleet of real sshd test hosts (support/sshd_host.py) and an
environment (`hosttest`, kind aws) whose `ssh` section names them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOST_ENV = "hosttest"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Any]:
    from support.sshd_host import Fleet

    f = Fleet(tmp_path / "hosts")
    yield f
    f.stop()


def hosts_env(ops_config: Any, ssh: dict[str, Any], name: str = HOST_ENV, **extra: Any) -> Any:
    """An Environment named `name` with this `ssh` section (kind aws: no sandbox servers needed)."""
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    ops_config.ops.environments[name] = {
        "kind": "aws",
        "region": "us-east-1",
        "production": False,
        "ssh": ssh,
        **extra,
    }
    return build(load(ops_config), name)
