"""The integration tier: real processes (PostgreSQL, Redis, sshd, terraform:
the Debian packages `./dev test` installs; terraform on PATH), or fakes that
take real time (a fake server's clock, a lock's TTL, a probe that polls), driven
from Python, not through `inv`. Fixtures only this tier uses live here; shared
ones are in tests/support.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.cache import make_environment
from support.kube import ENV_NAME


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this tier carries the real marker (-m real / -m "not real" keep working)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.real)


@pytest.fixture
def sandbox_cache_env(redis_sandbox: Any, cache_state_dir: Path) -> Any:
    """A sandbox Environment whose cache is the module's running Redis."""
    return make_environment(cache_state_dir)


@pytest.fixture
def kube_env(kube_config: Any, kube_aws: None) -> Any:
    """An Environment (`kubetest`, kind aws) whose cluster is the fake API server."""
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    return build(load(kube_config), ENV_NAME)
