"""The integration tier: real PostgreSQL, Redis, sshd and terraform processes
(the Debian packages `./dev test` installs; terraform on PATH), driven from
Python, not through `inv`. Fixtures only this tier uses live here; shared ones
are in tests/support.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.cache import make_environment


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
