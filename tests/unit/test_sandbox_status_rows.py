"""sandbox.status rows: a node's own `alive` (answering) is what the row says, whatever its details hold."""

from __future__ import annotations

from support.sandbox import sandbox_environment

from spywatcher_ops.backends.sandbox.lifecycle import report
from spywatcher_ops.backends.sandbox.postgres.provision import NodeReport
from spywatcher_ops.core.ports import CacheNode


def test_a_stopped_sentinel_is_not_alive_in_the_status_rows(tmp_path):
    # what a SIGSTOPped sentinel reports: its process exists (details' alive) but it answers nothing
    frozen = CacheNode(
        "sentinel-1",
        "sentinel",
        "127.0.0.1",
        26379,
        False,
        {"pid": 4242, "alive": True, "process": "stopped by SIGSTOP", "error": "Timeout reading from socket"},
    )
    rep = report(sandbox_environment(tmp_path / "state"), db_rows=[], cache_nodes=[frozen])
    (row,) = rep.cache
    assert row["alive"] is False
    assert row["pid"] == 4242 and row["process"] == "stopped by SIGSTOP"


def test_a_database_row_keeps_the_node_alive_over_its_details():
    node = NodeReport("n1", "primary", 5432, 99, False, "", {"alive": True, "process": "stopped by SIGSTOP"})
    assert node.to_dict()["alive"] is False
