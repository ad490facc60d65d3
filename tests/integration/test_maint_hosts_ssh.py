"""backends/ssh.py against real sshd hosts: host keys verified against known_hosts
(unknown or changed keys refused, never added), a jump host, unreachable hosts."""

from __future__ import annotations

import time

import pytest
from support.hosts import hosts_env
from support.sshd_host import check_is_fake

from spywatcher_ops.core.ports import SshError


def test_connects_with_the_key_and_runs_on_the_test_host(ops_config, fleet):
    host = fleet.add("web-1")
    check_is_fake(host)
    env = hosts_env(ops_config, fleet.ssh_config())
    shell = env.parts.hosts().connect("web-1")
    try:
        res = shell.run("grep ^ID= /etc/os-release; test -f /var/run/reboot-required; echo $?", timeout=10)
    finally:
        shell.close()
    assert res.exit_code == 0 and res.stdout.split() == ["ID=debian", "1"]


def test_an_unknown_host_key_is_refused_and_not_added(ops_config, fleet):
    fleet.add("web-1", trust=False)
    before = fleet.known_hosts.read_text()
    env = hosts_env(ops_config, fleet.ssh_config())
    with pytest.raises(
        SshError, match=r"unknown host key for \[127.0.0.1\]:\d+ \(ssh-ed25519 SHA256:.*refused"
    ) as exc:
        env.parts.hosts().connect("web-1")
    assert exc.value.reason == "host-key" and "ssh-keyscan" in str(exc.value)
    assert fleet.known_hosts.read_text() == before


def test_a_changed_host_key_is_refused_naming_both_fingerprints(ops_config, fleet):
    host = fleet.add("web-1")
    host.new_host_key()
    env = hosts_env(ops_config, fleet.ssh_config())
    with pytest.raises(
        SshError,
        match=r"host key of \[127.0.0.1\]:\d+ CHANGED: it sent ssh-ed25519 SHA256:\S+, "
        r"known_hosts has ssh-ed25519 SHA256:\S+; refused",
    ) as exc:
        env.parts.hosts().connect("web-1")
    assert exc.value.reason == "host-key" and "ssh-keygen -R" in str(exc.value)


def test_a_host_that_does_not_answer_is_unreachable_quickly(ops_config, fleet):
    host = fleet.add("web-1", start=False)  # nothing listens on its port
    env = hosts_env(ops_config, fleet.ssh_config())
    started = time.monotonic()
    with pytest.raises(SshError, match=rf"host web-1: \[127.0.0.1\]:{host.port} cannot be reached") as exc:
        env.parts.hosts().connect("web-1", timeout=2)
    assert exc.value.reason == "unreachable" and time.monotonic() - started < 3


def test_through_a_jump_host(ops_config, fleet):
    fleet.add("bastion")
    fleet.add("inner")
    env = hosts_env(ops_config, fleet.ssh_config(inner={"jump_host": "bastion"}))
    shell = env.parts.hosts().connect("inner")
    try:
        assert shell.run("cat /proc/sys/kernel/random/boot_id", timeout=10).stdout.strip() == (
            (fleet.hosts["inner"].root / "boot_id").read_text().strip()
        )
    finally:
        shell.close()


def test_a_missing_known_hosts_file_is_said_not_only_that_the_key_is_not_in_it(ops_config, fleet):
    fleet.add("web-1")
    fleet.known_hosts.unlink()
    env = hosts_env(ops_config, fleet.ssh_config())
    with pytest.raises(SshError, match=r"\(that file does not exist: ssh.known_hosts\); refused") as exc:
        env.parts.hosts().connect("web-1")
    assert exc.value.reason == "host-key" and str(fleet.known_hosts) in str(exc.value)
    assert not fleet.known_hosts.exists()  # never created, never written
