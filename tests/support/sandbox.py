"""Shared pytest fixtures (loaded from conftest.py via pytest_plugins).

Sandbox fixtures, with real processes:
- `sandbox_env` (module): the whole sandbox (PostgreSQL pair + Redis) in a private
  state folder; yields the core Environment; teardown purges it and fails if any
  process it started is still alive.
- `pg_pair` (session): only the PostgreSQL primary + synchronous standby (faster);
  yields a `PgPair` (environment, database port, the PgSandbox). Shared: a test
  may fail it over or restart it, but must leave it up (primary + streaming standby).
- `pg_pair_factory`: build more pairs in a test, e.g. asynchronous ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.paths import ROOT


def sandbox_environment(state_dir: Path, *, replication: str = "synchronous", **extra: Any) -> Any:
    """A core Environment for the `sandbox` environment, with its state under `state_dir`."""
    from invoke import Config

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    config = Config(project_location=str(ROOT))
    config.load_project()
    config.ops.state_dir = str(state_dir)
    config.ops.environments.sandbox.replication = replication
    for key, value in extra.items():
        config.ops.environments.sandbox[key] = value
    return build(load(config), "sandbox")


def tracked_pids(state_dir: Path) -> list[int]:
    """Every pid the sandbox state files record (PostgreSQL and Redis)."""
    import json

    pids = []
    for path in (state_dir / "sandbox" / "state.json", state_dir / "sandbox" / "redis" / "state.json"):
        if path.exists():
            nodes = json.loads(path.read_text()).get("nodes", {})
            pids += [int(n["pid"]) for n in nodes.values() if n.get("pid")]
    return pids


def server_pids_under(folder: Path) -> list[int]:
    """postgres/redis processes whose command line or working folder is under `folder`."""
    found = []
    needle = str(folder)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] == "Z":
            continue
        if needle in cmd or cwd.startswith(needle):
            found.append(int(entry))
    return found


@dataclass
class PgPair:
    environment: Any
    state_dir: Path

    @property
    def database(self) -> Any:
        return self.environment.database

    @property
    def box(self) -> Any:
        return self.database.box

    def state(self) -> dict[str, Any]:
        return dict(self.box.statefile.load())

    def pg_base(self) -> Path:
        return Path(self.state()["pg_base"])

    def connect(self, instance: str | None = None, **kwargs: Any) -> Any:
        import psycopg

        info = self.database.connection(instance)
        return psycopg.connect(**info.kwargs(), connect_timeout=3, **kwargs)


@contextmanager
def started_pg_pair(state_dir: Path, *, replication: str = "synchronous") -> Iterator[PgPair]:
    env = sandbox_environment(state_dir, replication=replication)
    pair = PgPair(env, state_dir)
    try:
        pair.box.up()
        yield pair
    finally:
        base = None
        try:
            base = pair.pg_base()
        except Exception:  # noqa: BLE001 - the state may be what the test broke; purge anyway
            pass
        pair.box.purge()
        stray = server_pids_under(base) if base else []
        assert not stray, f"PostgreSQL processes left running: {stray}"


@pytest.fixture(scope="session")
def pg_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgPair]:
    with started_pg_pair(tmp_path_factory.mktemp("pg-pair")) as pair:
        yield pair


@pytest.fixture
def pg_pair_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Call with replication=... to get a started pair; all are purged after the test."""
    stack: list[Any] = []

    def make(replication: str = "synchronous") -> PgPair:
        cm = started_pg_pair(tmp_path_factory.mktemp("pg-pair"), replication=replication)
        pair = cm.__enter__()
        stack.append(cm)
        return pair

    try:
        yield make
    finally:
        for cm in reversed(stack):
            cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def sandbox_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The whole sandbox (PostgreSQL pair + Redis with sentinels), up; purged afterwards."""
    from spywatcher_ops.backends.sandbox import lifecycle

    state_dir = tmp_path_factory.mktemp("sandbox-state")
    env = sandbox_environment(state_dir)
    lifecycle.up(env)
    base = Path(env.database.box.statefile.load()["pg_base"])
    try:
        yield env
    finally:
        pids = tracked_pids(state_dir)
        lifecycle.down(env, purge=True)
        from spywatcher_ops.backends.sandbox.net import pid_alive

        stray = [p for p in pids if pid_alive(p)] + server_pids_under(base) + server_pids_under(state_dir)
        assert not stray, f"sandbox processes left running: {stray}"
