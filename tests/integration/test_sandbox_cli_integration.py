"""End to end through the real `inv` command: sandbox.up/status/down and db.* on the sandbox."""

from __future__ import annotations

import pytest


@pytest.mark.real
def test_sandbox_env_fixture_brings_up_both_halves(sandbox_env):
    from spywatcher_ops.backends.sandbox import lifecycle

    rep = lifecycle.status(sandbox_env)
    assert rep.healthy
    assert len(rep.database) == 2 and len(rep.cache) == 5 and all(n["alive"] for n in rep.cache)
