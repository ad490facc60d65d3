"""`inv maint.hosts` through invoke, against real sshd test hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from support.paths import ROOT


def inv(state_dir: Path, config: dict, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = state_dir / "hosts.yaml"
    cfg.write_text(yaml.safe_dump({"ops": config}))
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "invoke", "-f", str(cfg), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_hosts_lists_each_host_and_exits_1_for_one_that_cannot_be_read(fleet, state_dir):
    fleet.add("web-1")
    fleet.add("al-1", os_id="amzn")
    down = fleet.add("gone", start=False)
    env = {"environments": {"hosttest": {"kind": "aws", "region": "us-east-1", "ssh": fleet.ssh_config()}}}
    res = inv(state_dir, env, "maint.hosts", "--env", "hosttest", "--json", "--timeout", "5")
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    rows = {h["name"]: h for h in data["hosts"]}
    assert (
        rows["web-1"]["os"],
        rows["web-1"]["package_manager"],
        rows["web-1"]["pending_security"],
        rows["web-1"]["pending_all"],
        rows["web-1"]["reboot_required"],
    ) == ("Debian GNU/Linux 12 (bookworm)", "apt", 2, 3, False)
    assert (rows["al-1"]["package_manager"], rows["al-1"]["pending_security"]) == ("dnf", 2)
    assert rows["gone"]["reachable"] is False and rows["gone"]["reason"] == "unreachable"
    assert (
        f"1 of 3 hosts could not be read: gone (unreachable: host gone: [127.0.0.1]:{down.port}" in res.stderr
    )
    assert fleet.hosts["web-1"].state()["installed"] == []  # read-only

    text = inv(state_dir, env, "maint.hosts", "--env", "hosttest")
    assert "Debian GNU/Linux 12 (bookworm)" in text.stdout and "gone" in text.stdout


def test_hosts_bad_timeout_is_exit_2(state_dir):
    res = inv(state_dir, {}, "maint.hosts", "--timeout", "0")
    assert res.returncode == 2 and "--timeout 0: must be a positive number" in res.stderr


def test_hosts_redirected_to_a_log_keeps_names_and_addresses_whole(fleet, state_dir):
    """As a scheduler keeps it (`inv maint.hosts > log`: no terminal, no COLUMNS): the names and
    addresses an on-call person copies are not cut to 'sandbox…' / '127.0.0…' at 80 columns."""
    host = fleet.add("worker-eu-west-1a-01")
    cfg = state_dir / "hosts.yaml"
    env_spec = {
        "environments": {"hosttest": {"kind": "aws", "region": "us-east-1", "ssh": fleet.ssh_config()}}
    }
    cfg.write_text(yaml.safe_dump({"ops": env_spec}))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    environ["INVOKE_OPS_STATE_DIR"] = str(state_dir)
    log = state_dir / "hosts.log"
    with open(log, "w") as out:
        res = subprocess.run(
            [sys.executable, "-m", "invoke", "-f", str(cfg), "maint.hosts", "--env", "hosttest"],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    text = log.read_text()
    assert res.returncode == 0, text
    assert "worker-eu-west-1a-01" in text and f"127.0.0.1:{host.port}" in text, text
