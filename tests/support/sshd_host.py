"""Real SSH hosts for tests: /usr/sbin/sshd on a free loopback port, each in a
private mount namespace that makes it look like its own machine, built with
the same code as the sandbox's own host (spywatcher_ops/backends/sandbox/sshhost.py:
make_host, start, stop; its package manager is sshhost_pm.py).

Inside the namespace (`unshare -m`, so nothing of this machine changes):
- /usr/local/sbin (first on root's PATH) holds this host's package manager
  (`apt-get`, `dnf`, `needs-restarting`) and `reboot`, scripts the test drives
  through the host's packages.json (pending updates, `calls`, `fail_apply`);
- /etc/os-release says which OS it is (Debian -> apt, Amazon Linux -> dnf);
- /run (hence /var/run/reboot-required) and the boot id are the host's own;
- `reboot` drops every session and the sshd, stays down `down_s` seconds,
  then starts the sshd again with a new boot id (unless told never to come back).

The fleet's user key is made by the test (ssh-keygen); the client trusts the
host keys through a known_hosts file the test writes. Runs as root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from spywatcher_ops.backends.sandbox import sshhost
from spywatcher_ops.backends.sandbox.net import pick_port


def default_updates() -> list[dict[str, Any]]:
    """What a new test host has pending: the sandbox host's seed (a security fix, a kernel that
    needs a reboot, an ordinary update)."""
    return [dict(p) for p in sshhost.SEED]


class SshdHost:
    """One test host. `user_key` is the private key the client logs in with."""

    def __init__(
        self,
        root: Path,
        name: str,
        user_key: Path,
        *,
        os_id: str = "debian",
        updates: list[dict[str, Any]] | None = None,
        down_s: float = 0.5,
        port: int | None = None,
    ) -> None:
        self.root, self.name, self.user_key, self.os_id = root, name, user_key, os_id
        self.port = port or pick_port(set())
        self.host_key = root / "ssh_host_ed25519_key"
        authorized = Path(str(user_key) + ".pub").read_text()
        sshhost.make_host(root, port=self.port, authorized_key=authorized, os_id=os_id, down_s=down_s)
        self.set_updates(default_updates() if updates is None else updates)

    # state the test drives ---------------------------------------------------------

    def set_updates(self, updates: list[dict[str, Any]]) -> None:
        sshhost.set_packages(self.root, updates)

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "packages.json").read_text()))

    def set(self, key: str, value: Any) -> None:
        st = self.state()
        st[key] = value
        (self.root / "packages.json").write_text(json.dumps(st))

    def boots(self) -> int:
        path = self.root / "boots"
        return len(path.read_text().split()) if path.exists() else 0

    def reboot_required(self) -> bool:
        return (self.root / "run" / "reboot-required").exists()

    def never_come_back(self) -> None:
        (self.root / "never_back").write_text("1\n")

    def known_hosts_line(self) -> str:
        return sshhost.known_hosts_line(self.root, self.port)

    def new_host_key(self) -> None:
        """As if the host were rebuilt: a new key (the sshd re-reads it per connection)."""
        for suffix in ("", ".pub"):
            Path(str(self.host_key) + suffix).unlink()
        sshhost.keygen(self.host_key, comment="test")

    def spec(self, **extra: Any) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "key_file": str(self.user_key),
            **extra,
        }

    # process -------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> SshdHost:
        sshhost.start(self.root)
        sshhost.wait_answering(self.root, self.port, timeout, name=f"sshd of {self.name}")
        return self

    def stop(self) -> None:
        sshhost.stop(self.root)


def check_is_fake(host: SshdHost) -> None:
    """Before any test patches it: the host's package manager and reboot are the fakes (never this machine's)."""
    out = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(host.user_key),
            "-p",
            str(host.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
            "command -v apt-get; command -v reboot; command -v dnf",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    lines = out.stdout.split()
    assert lines == ["/usr/local/sbin/apt-get", "/usr/local/sbin/reboot", "/usr/local/sbin/dnf"], (
        out.stdout,
        out.stderr,
    )


class Fleet:
    """Several test hosts sharing one user key and one known_hosts file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.user_key = sshhost.keygen(root / "id_ed25519", comment="test")
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text("")
        self.hosts: dict[str, SshdHost] = {}

    def add(self, name: str, *, trust: bool = True, start: bool = True, **kwargs: Any) -> SshdHost:
        host = SshdHost(self.root / name, name, self.user_key, **kwargs)
        self.hosts[name] = host
        if trust:
            with self.known_hosts.open("a") as f:
                f.write(host.known_hosts_line())
        if start:
            host.start()
        return host

    def ssh_config(self, *extra_hosts: dict[str, Any], **host_extra: dict[str, Any]) -> dict[str, Any]:
        hosts = [h.spec(**host_extra.get(n, {})) for n, h in self.hosts.items()]
        return {
            "known_hosts": str(self.known_hosts),
            "connect_timeout_seconds": 5,
            "hosts": hosts + list(extra_hosts),
        }

    def stop(self) -> None:
        for h in self.hosts.values():
            h.stop()
        shutil.rmtree(self.root / "never-used", ignore_errors=True)
