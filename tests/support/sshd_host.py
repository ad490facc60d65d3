"""A real SSH host for tests: /usr/sbin/sshd on a free loopback port, in a private
mount namespace that makes it look like its own machine.

Inside the namespace (`unshare -m`, so nothing of this machine changes):
- /usr/local/sbin (first on root's PATH) holds this host's package manager
  (`apt-get`, `dnf`, `needs-restarting`) and `reboot`, scripts the test drives
  through a JSON file of pending updates;
- /etc/os-release says which OS it is (Debian -> apt, Amazon Linux -> dnf);
- /run (hence /var/run/reboot-required) and the boot id are the host's own;
- `reboot` drops every session and the sshd, stays down `down_s` seconds,
  then starts the sshd again with a new boot id (unless told never to come back).

Host and user keys are made by the test (ssh-keygen); the client trusts the
host key through a known_hosts file the test writes. No ForceCommand: fabric
runs ordinary commands. Runs as root (UsePAM no, a private sshd_config).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

SSHD = "/usr/sbin/sshd"

OS_RELEASE = {
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "amzn": 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
    'PRETTY_NAME="Amazon Linux 2023.6.20241111"\n',
}

# The package manager of the test host: one Python script behind apt-get, dnf and needs-restarting.
PKG_SCRIPT = r"""
import json, os, sys
H = os.environ.get("TEST_HOST_DIR") or HOST_DIR
state_file = os.path.join(H, "pkgs.json")
flag = "/run/reboot-required"
with open(state_file) as f:
    st = json.load(f)
prog = os.path.basename(sys.argv[0]); args = sys.argv[1:]
st.setdefault("calls", []).append([prog] + args)
def save():
    with open(state_file + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(state_file + ".tmp", state_file)
def apply(pkgs):
    for p in pkgs:
        st["installed"].append(p)
        if p.get("reboot"):
            open(flag, "w").write("*** System restart required ***\n")
    names = {p["name"] for p in pkgs}
    st["pending"] = [p for p in st["pending"] if p["name"] not in names]
if st.get("fail_apply") and ("install" in args or ("upgrade" in args and "-s" not in args)):
    save(); print("E: Could not get lock /var/lib/dpkg/lock-frontend", file=sys.stderr); sys.exit(100)
if prog == "apt-get":
    if "update" in args:
        print("Reading package lists... Done"); save(); sys.exit(0)
    if "-s" in args and "upgrade" in args:
        for p in st["pending"]:
            origin = "Debian-Security:12/stable-security" if p["security"] else "Debian:12.9/stable"
            print(f"Inst {p['name']} [{p['from']}] ({p['to']} {origin} [amd64])")
        for p in st["pending"]:
            print(f"Conf {p['name']} ({p['to']})")
        save(); sys.exit(0)
    if "install" in args and "--only-upgrade" in args:
        wanted = [a for a in args[args.index("install") + 1:] if not a.startswith("-")]
        apply([p for p in st["pending"] if p["name"] in wanted]); save(); sys.exit(0)
    if "upgrade" in args:
        apply(list(st["pending"])); save(); sys.exit(0)
elif prog == "dnf":
    if "check-update" in args:
        for p in st["pending"]:
            print(f"{p['name']}.x86_64    {p['to']}    amazonlinux")
        save(); sys.exit(100 if st["pending"] else 0)
    if "updateinfo" in args:
        for i, p in enumerate(st["pending"]):
            if p["security"]:
                print(f"ALAS2023-2026-{i:03d} important/Sec. {p['name']}-{p['to']}.x86_64")
        save(); sys.exit(0)
    if "upgrade" in args:
        apply([p for p in st["pending"] if p["security"] or "--security" not in args]); save(); sys.exit(0)
elif prog == "needs-restarting":
    save()
    if os.path.exists(flag):
        print("Core libraries or services have been updated since boot-up:\n  * kernel\n\nReboot is required")
        sys.exit(1)
    print("No core libraries or services have been updated since boot-up.\nReboot should not be necessary.")
    sys.exit(0)
save(); print(f"{prog}: unexpected arguments {args}", file=sys.stderr); sys.exit(2)
"""

REBOOT_SCRIPT = r"""#!/bin/sh
# The test host's reboot: every session and the sshd go, the host stays down, then comes back.
H=__HOST__
echo "$$ $PPID $(date +%s.%N)" >> $H/reboot_calls
setsid sh -c '
  sleep 0.3
  L=$(cat __HOST__/run/sshd.pid)
  pkill -KILL -P "$L"; kill -KILL "$L"
  sleep $(cat __HOST__/down_s)
  rm -f /run/reboot-required
  cat /proc/sys/kernel/random/uuid > __HOST__/boot_id
  echo boot >> __HOST__/boots
  [ -f __HOST__/never_back ] && exit 0
  exec __SSHD__ -D -e -f __HOST__/sshd_config >> __HOST__/sshd.log 2>&1
' </dev/null >/dev/null 2>&1 &
echo $! > $H/reboot.pid
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)], check=True)
    return path


def default_updates() -> list[dict[str, Any]]:
    return [
        {
            "name": "openssl",
            "from": "3.0.13-1~deb12u1",
            "to": "3.0.15-1~deb12u1",
            "security": True,
            "reboot": False,
        },
        {
            "name": "linux-image-amd64",
            "from": "6.1.112-1",
            "to": "6.1.119-1",
            "security": True,
            "reboot": True,
        },
        {
            "name": "tzdata",
            "from": "2024a-0+deb12u1",
            "to": "2025a-0+deb12u1",
            "security": False,
            "reboot": False,
        },
    ]


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
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        for d in ("bin", "run/sshd"):
            (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "run/sshd", 0o755)
        self.host_key = keygen(root / "ssh_host_ed25519_key")
        (root / "authorized_keys").write_text(Path(str(user_key) + ".pub").read_text())
        (root / "os-release").write_text(OS_RELEASE[os_id])
        (root / "boot_id").write_text(str(uuid.uuid4()) + "\n")
        (root / "down_s").write_text(f"{down_s}\n")
        self.set_updates(default_updates() if updates is None else updates)
        script = f"#!{sys.executable}\nHOST_DIR = {str(root)!r}\n{PKG_SCRIPT}"
        for prog in ("apt-get", "dnf", "needs-restarting"):
            (root / "bin" / prog).write_text(script)
            os.chmod(root / "bin" / prog, 0o755)
        (root / "bin" / "reboot").write_text(
            REBOOT_SCRIPT.replace("__HOST__", str(root)).replace("__SSHD__", SSHD)
        )
        os.chmod(root / "bin" / "reboot", 0o755)
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\nPidFile {root}/run/sshd.pid\n"
            f"AuthorizedKeysFile {root}/authorized_keys\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\n"
            "PrintMotd no\nPrintLastLog no\nUseDNS no\nMaxStartups 100:30:200\nLogLevel ERROR\n"
            "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        )

    # state the test drives ---------------------------------------------------------

    def set_updates(self, updates: list[dict[str, Any]]) -> None:
        (self.root / "pkgs.json").write_text(json.dumps({"pending": updates, "installed": [], "calls": []}))

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "pkgs.json").read_text()))

    def set(self, key: str, value: Any) -> None:
        st = self.state()
        st[key] = value
        (self.root / "pkgs.json").write_text(json.dumps(st))

    def boots(self) -> int:
        path = self.root / "boots"
        return len(path.read_text().split()) if path.exists() else 0

    def reboot_required(self) -> bool:
        return (self.root / "run" / "reboot-required").exists()

    def never_come_back(self) -> None:
        (self.root / "never_back").write_text("1\n")

    def known_hosts_line(self) -> str:
        key = Path(str(self.host_key) + ".pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def new_host_key(self) -> None:
        """As if the host were rebuilt: a new key (the sshd re-reads it per connection)."""
        for suffix in ("", ".pub"):
            Path(str(self.host_key) + suffix).unlink()
        keygen(self.host_key)

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
        r = self.root
        script = (
            f"mount --bind {r}/bin /usr/local/sbin && mount --bind {r}/os-release /etc/os-release && "
            f"mount --bind {r}/run /run && mount --bind {r}/boot_id /proc/sys/kernel/random/boot_id && "
            f"exec {SSHD} -D -e -f {r}/sshd_config"
        )
        log = open(r / "sshd.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if self.proc is not None and self.proc.poll() is not None and not (self.root / "boots").exists():
                raise RuntimeError(
                    f"sshd of {self.name} exited {self.proc.returncode}: "
                    f"{(self.root / 'sshd.log').read_text()[-2000:]}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"sshd of {self.name} is not listening on {self.port} after {timeout} s")

    def pids(self) -> list[int]:
        out = []
        for f in ("run/sshd.pid", "reboot.pid"):
            try:
                out.append(int((self.root / f).read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        if self.proc is not None and self.proc.poll() is None:
            out.append(self.proc.pid)
        return out

    def stop(self) -> None:
        for pid in set(self.pids()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


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
        self.user_key = keygen(root / "id_ed25519")
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
