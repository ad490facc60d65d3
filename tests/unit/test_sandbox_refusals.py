"""The sandbox database's refusals that need no server: an unprovisioned sandbox and an
unknown instance each give one line naming what is wrong and what to do (the same line
from every method that reads them)."""

from __future__ import annotations

import pytest
from support.sandbox import sandbox_environment

from spywatcher_ops.backends.sandbox.state import VERSION
from spywatcher_ops.core.errors import BadInput, NotReady


def test_an_unprovisioned_sandbox_says_so_whether_the_window_is_read_or_refreshed(tmp_path):
    db = sandbox_environment(tmp_path).database
    for fresh in (False, True):
        with pytest.raises(NotReady) as raised:
            db.restorable_window(fresh=fresh)
        assert raised.value.message == f"the sandbox is not provisioned (no state in {db.box.root})"
        assert raised.value.hint == "run `inv sandbox.up` first"
    assert not db.box.statefile.load()  # nothing was written


def test_an_unknown_instance_is_named_with_the_known_ones(tmp_path):
    db = sandbox_environment(tmp_path).database
    node = {"port": 1, "pid": None, "data": str(tmp_path / "none")}
    with db.box.statefile.editing() as state:
        state.update(
            version=VERSION,
            main="main-db",
            instances={"main-db": {"primary": "a"}, "copy": {"primary": "b"}},
            nodes={"a": node, "b": node},
        )
    expected = "instance nope: no such instance; known: copy, main-db"
    for call in (
        lambda: db.describe("nope"),
        lambda: db.connection("nope"),
        lambda: db.plan_delete_instance("nope"),
    ):
        with pytest.raises(BadInput) as raised:
            call()
        assert raised.value.message == expected
