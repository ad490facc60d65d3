"""Cache test support (fixtures registered from tests/conftest.py): a real Redis
sandbox (primary, replica, three sentinels) shared by a test module, and the
helpers that build a sandbox Environment on a state folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.paths import ROOT


def make_config(state_dir: Path) -> Any:
    from invoke import Config

    config = Config(project_location=str(ROOT))
    config.load_project()
    config.ops.state_dir = str(state_dir)
    return config


def make_environment(state_dir: Path, name: str = "sandbox", clock: Any = None) -> Any:
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    return build(load(make_config(state_dir)), name, clock=clock)


def redis_root(state_dir: Path) -> Path:
    """Where SandboxCache looks for the sandbox's Redis under a state folder."""
    return state_dir / "sandbox" / "redis"


@pytest.fixture(scope="module")
def cache_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache-state")


@pytest.fixture(scope="module")
def redis_sandbox_module(cache_state_dir: Path) -> Iterator[Any]:
    """One real Redis sandbox per test module; purged (and checked gone) at the end."""
    from spywatcher_ops.backends.sandbox.redis.servers import RedisSandbox, pid_alive

    sandbox = RedisSandbox(redis_root(cache_state_dir), master_name="spywatcher")
    sandbox.up()
    try:
        yield sandbox
    finally:
        specs = [sandbox.node_spec(n) for n in sandbox.ports()]
        sandbox.purge()
        stray = [s for s in specs if s and pid_alive(s.get("pid"), s["port"])]
        assert not stray, f"processes left running: {stray}"


@pytest.fixture
def redis_sandbox(redis_sandbox_module: Any) -> Any:
    """The module's sandbox, repaired to full health before each test."""
    redis_sandbox_module.up()
    return redis_sandbox_module
