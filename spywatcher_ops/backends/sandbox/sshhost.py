"""The sandbox's own SSH host: a real sshd on loopback that the os-patch step patches.

`inv sandbox.up` starts it (as it starts PostgreSQL and Redis), `sandbox.down`
stops it, `--purge` deletes its folder. It runs in a private mount namespace
(`unshare -m`, so it needs root, as the sandbox's PostgreSQL does) in which it
is its own machine: /usr/local/sbin holds its package manager (apt-get and
needs-restarting, sshhost_pm.py over `packages.json`) and `reboot`; /run (so
/var/run/reboot-required) and the boot id are its own; /etc/os-release says
Debian 12. `reboot` drops every session and the sshd and starts it again
after a moment with a new boot id, as a machine would.

Host and user keys are made here; the client trusts the host key only through
the folder's known_hosts (backends/ssh.py). `host.json` tells SshHosts where
it is. Its processes are found by their command lines naming this folder, so
a sandbox.up killed after the start still has its sshd stopped by down.

make_host / set_packages / start / wait_answering / stop are one SSH host in a
folder, whoever owns it: the sandbox's (below) and the tests' fleet of hosts
(tests/support/sshd_host.py) are both built with them.
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
from typing import TYPE_CHECKING, Any

from ...core.errors import NotReady
from .net import HOST, children, pick_port, pid_alive
from .paths import is_ours, mark, not_ours_note, sandbox_root

if TYPE_CHECKING:
    from ...core.environment import Environment

SSHD = "/usr/sbin/sshd"
NAME = "sandbox-host"
OS_RELEASE = {  # which OS a host says it is (/etc/os-release): apt for Debian, dnf for Amazon Linux
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "amzn": 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
    'PRETTY_NAME="Amazon Linux 2023.6.20241111"\n',
}
SEED = [  # what the sandbox host has pending when it is made (sandbox.reset makes it again)
    {
        "name": "openssl",
        "from": "3.0.13-1~deb12u1",
        "to": "3.0.15-1~deb12u1",
        "security": True,
        "reboot": False,
    },
    {"name": "linux-image-amd64", "from": "6.1.112-1", "to": "6.1.119-1", "security": True, "reboot": True},
    {
        "name": "tzdata",
        "from": "2024a-0+deb12u1",
        "to": "2025a-0+deb12u1",
        "security": False,
        "reboot": False,
    },
]
REBOOT = """#!/bin/sh
# The host's reboot: every session and the sshd go, the host stays down `down_s` seconds, then
# comes back with a new boot id (unless `never_back` says it does not come back).
setsid sh -c '
  sleep 0.3
  L=$(cat {f}/run/sshd.pid)
  pkill -KILL -P "$L"; kill -KILL "$L"
  sleep $(cat {f}/down_s)
  rm -f /run/reboot-required
  cat /proc/sys/kernel/random/uuid > {f}/boot_id
  echo boot >> {f}/boots
  [ -f {f}/never_back ] && exit 0
  exec {sshd} -D -e -f {f}/sshd_config >> {f}/sshd.log 2>&1
' </dev/null >/dev/null 2>&1 &
"""


def keygen(path: Path, comment: str = "spywatcher-sandbox") -> Path:
    """An ed25519 key pair at `path` (kept if there is one)."""
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
        )
    return path


def make_host(f: Path, *, port: int, authorized_key: str, os_id: str = "debian", down_s: float = 1.0) -> None:
    """One SSH host in folder `f`: host key, sshd_config on `port`, known_hosts, and what its
    mount namespace shows (os-release, boot id, /run, the package manager over packages.json,
    reboot). Its packages are set apart (set_packages)."""
    f.mkdir(parents=True, exist_ok=True)
    (f / "bin").mkdir(exist_ok=True)
    (f / "run" / "sshd").mkdir(parents=True, exist_ok=True)
    os.chmod(f / "run" / "sshd", 0o755)
    keygen(f / "ssh_host_ed25519_key")
    (f / "authorized_keys").write_text(authorized_key)
    (f / "os-release").write_text(OS_RELEASE[os_id])
    if not (f / "boot_id").exists():
        (f / "boot_id").write_text(f"{uuid.uuid4()}\n")
    (f / "down_s").write_text(f"{down_s}\n")
    pm = Path(__file__).with_name("sshhost_pm.py")
    for prog in ("apt-get", "dnf", "needs-restarting"):
        (f / "bin" / prog).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{pm}" "{f}" {prog} "$@"\n')
        os.chmod(f / "bin" / prog, 0o755)
    (f / "bin" / "reboot").write_text(REBOOT.format(f=f, sshd=SSHD))
    os.chmod(f / "bin" / "reboot", 0o755)
    (f / "sshd_config").write_text(
        f"Port {port}\nListenAddress {HOST}\nHostKey {f}/ssh_host_ed25519_key\nPidFile {f}/run/sshd.pid\n"
        f"AuthorizedKeysFile {f}/authorized_keys\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nPrintMotd no\n"
        "PrintLastLog no\nUseDNS no\nMaxStartups 100:30:200\nLogLevel ERROR\n"
        "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    (f / "known_hosts").write_text(known_hosts_line(f, port))


def known_hosts_line(f: Path, port: int) -> str:
    key = (f / "ssh_host_ed25519_key.pub").read_text().split()
    return f"[{HOST}]:{port} {key[0]} {key[1]}\n"


def set_packages(f: Path, pending: list[dict[str, Any]]) -> None:
    """The host's pending updates (name, from, to, security, reboot); nothing installed yet."""
    (f / "packages.json").write_text(json.dumps({"pending": pending, "installed": [], "calls": []}, indent=1))


def start(f: Path) -> subprocess.Popen[bytes]:
    """Start the host's sshd in its own mount namespace (returns at once: wait_answering)."""
    script = (
        f"mount --bind {f}/bin /usr/local/sbin && mount --bind {f}/os-release /etc/os-release && "
        f"mount --bind {f}/run /run && mount --bind {f}/boot_id /proc/sys/kernel/random/boot_id && "
        f"exec {SSHD} -D -e -f {f}/sshd_config"
    )
    with open(f / "sshd.log", "ab") as log:
        return subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_answering(f: Path, port: int, timeout: float, name: str = "the SSH host") -> None:
    deadline = time.monotonic() + timeout
    while not answering(port):
        if time.monotonic() > deadline:
            tail = (f / "sshd.log").read_text(errors="replace")[-500:]
            raise NotReady(f"{name} did not answer on {HOST}:{port} within {timeout:g} s: {tail}")
        time.sleep(0.05)


def folder(environment: Environment) -> Path:
    return sandbox_root(environment) / "sshhost"


def preflight() -> str | None:
    """Why the host cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "the sandbox SSH host needs root (a private mount namespace, as for the sandbox's PostgreSQL)"
    for tool in (SSHD, "unshare", "ssh-keygen"):
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool)):
            return f"the sandbox SSH host needs {tool} (openssh-server, util-linux)"
    return None


def provision(f: Path) -> None:
    """Keys, scripts and config, made once; the port and the packages are kept across restarts."""
    if not f.exists():
        f.mkdir(parents=True)
        mark(f)
    port_file = f / "port"
    if not port_file.exists():
        port_file.write_text(f"{pick_port(set())}\n")
    keygen(f / "id_ed25519")
    make_host(f, port=port_of(f), authorized_key=(f / "id_ed25519.pub").read_text())
    if not (f / "packages.json").exists():
        set_packages(f, SEED)


def port_of(f: Path) -> int:
    return int((f / "port").read_text())


def answering(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def processes(f: Path) -> list[int]:
    """The host's processes: its sshd (started by up or by its own reboot), the reboot helper,
    the namespace's shell, found by command lines naming this folder."""
    mine = f"{f}/"
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        line = " ".join(
            words
        )  # a listening sshd rewrites its title: "sshd: /usr/sbin/sshd -D ... [listener] ..."
        if (
            words
            and (line.startswith("sshd: ") or Path(words[0]).name in ("sshd", "sh", "unshare"))
            and mine in line
        ):
            out.append(int(entry))
    return out


def up(environment: Environment) -> dict[str, Any]:
    """Start (or keep) the host; write host.json for SshHosts. Returns its status."""
    why = preflight()
    if why:
        return {"running": False, "why": why}
    f = folder(environment)
    if f.exists() and not is_ours(f):
        raise NotReady(not_ours_note(f))
    provision(f)
    port = port_of(f)
    if not answering(port):
        for pid in processes(f):  # a half-started or killed one: start clean
            _kill_tree(pid)
        # recorded before it starts: down finds it by its command line (this folder) whatever happens next
        (f / "started.json").write_text(json.dumps({"at": time.time(), "config": f"{f}/sshd_config"}))
        start(f)
        wait_answering(f, port, 15, name="the sandbox SSH host")
    from ..ssh import sandbox_host_file

    info = sandbox_host_file(environment)
    spec = {"name": NAME, "address": HOST, "port": port, "user": "root", "key_file": str(f / "id_ed25519")}
    info.write_text(json.dumps({"host": spec, "known_hosts": str(f / "known_hosts")}, indent=1))
    return status(environment)


def status(environment: Environment) -> dict[str, Any]:
    f = folder(environment)
    if not (f / "port").exists():
        return {"name": NAME, "running": False, "why": preflight() or "not made yet (inv sandbox.up)"}
    port = port_of(f)
    pending = (
        json.loads((f / "packages.json").read_text())["pending"] if (f / "packages.json").exists() else []
    )
    return {
        "name": NAME,
        "address": f"{HOST}:{port}",
        "running": answering(port),
        "pending_updates": len(pending),
        "folder": str(f),
    }


def _kill_tree(pid: int) -> None:
    for child in children(pid):
        _kill_tree(child)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(f: Path) -> None:
    """Kill the host in `f` (its sshd, its sessions, a reboot under way) and wait for it to be gone."""
    pids = processes(f)
    for pid in pids:
        _kill_tree(pid)
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def down(environment: Environment, *, purge: bool = False) -> str | None:
    """Stop the host (its sessions too); with purge delete its folder. Returns a note when a
    folder was kept because it is not ours."""
    f = folder(environment)
    if not f.exists():
        return None
    stop(f)
    if purge:
        if not is_ours(f):
            return not_ours_note(f)
        shutil.rmtree(f)
    return None
