"""What a user reads from db.verify and db.swap on the sandbox: the two-host address as
sandbox.status prints it, the reverse command once, and the truth about old connections."""

from __future__ import annotations

import json

import pytest
from support.sandbox_cli import inv

pytestmark = pytest.mark.real


def test_verify_names_both_hosts_and_swap_says_reverse_once(tmp_path):
    state_dir = tmp_path / "state"
    try:
        up = inv(state_dir, "sandbox.up")
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(inv(state_dir, "sandbox.status", "--json").stdout)
        url = status["database_url"].split("?")[
            0
        ]  # postgresql://spywatcher@127.0.0.1:P1,127.0.0.1:P2/spywatcher

        restored = inv(state_dir, "db.restore", "--to", "latest", "--name", "fix-once", "--yes")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        verified = inv(state_dir, "db.verify", "--instance", "fix-once")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        main = json.loads((state_dir / "sandbox" / "state.json").read_text())["main"]
        served = inv(state_dir, "db.verify", "--instance", main)  # the serving pair: both nodes
        # (its checks may fail: the sandbox's database has no tables yet; the address is the point)
        assert url in served.stdout, (url, served.stdout)

        swapped = inv(state_dir, "db.swap", "--instance", "fix-once", "--yes")
        assert swapped.returncode == 0, swapped.stdout + swapped.stderr
        both = swapped.stdout + swapped.stderr
        reverse = next(ln for ln in swapped.stdout.splitlines() if ln.startswith("to reverse: "))
        command = reverse.removeprefix("to reverse: ")
        assert both.count(command) == 1, both
        assert "keep talking to the old instance" not in both
        assert "the old pair is stopped" in both and "connections opened before the swap are closed" in both
    finally:
        inv(state_dir, "sandbox.down", "--purge", "--yes")
