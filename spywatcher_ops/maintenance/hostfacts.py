"""What an SSH host says about itself: OS, pending updates (security / all),
whether it needs a reboot, uptime, boot id. Read-only; `survey` asks every
host at once (a thread per host, each with its own timeout), so 20 hosts take
about as long as the slowest one.

The package manager follows the OS (/etc/os-release ID and ID_LIKE): apt on
Debian and Ubuntu (`apt-get -s upgrade`, /var/run/reboot-required), dnf on
Fedora, RHEL, Amazon Linux (`dnf check-update`, `dnf updateinfo list
--security`, `needs-restarting -r`).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.ports import Hosts, HostSpec, RemoteShell, SshError

SEP = "@@spywatcher@@"
FACTS = f"cat /etc/os-release; echo {SEP}; cat /proc/uptime; echo {SEP}; cat /proc/sys/kernel/random/boot_id"
APT_FAMILY = ("debian", "ubuntu")
DNF_FAMILY = ("fedora", "rhel", "centos", "amzn", "rocky", "almalinux", "ol")
APT_LIST = f"apt-get -s -q upgrade; echo {SEP}$?; test -f /var/run/reboot-required && echo yes || echo no"
DNF_LIST = (
    f"dnf -q check-update; echo {SEP}$?; dnf -q updateinfo list --security; echo {SEP}$?; "
    f"needs-restarting -r >/dev/null 2>&1; echo {SEP}$?"
)
_INST = re.compile(r"^Inst (\S+)(?: \[(\S+)\])? \((\S+) (.*?)(?: \[[^\]]*\])?\)")


@dataclass
class Update:
    name: str
    version: str
    security: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HostFacts:
    name: str
    address: str
    node: str | None
    reachable: bool = False
    error: str | None = None
    reason: str | None = None  # unreachable | host-key | auth | timeout | command
    os: str | None = None
    family: str | None = None  # apt | dnf
    updates: list[Update] = field(default_factory=list)
    reboot_required: bool | None = None
    uptime_s: float | None = None
    boot_id: str | None = None
    seconds: float = 0.0

    @property
    def security(self) -> list[Update]:
        return [u for u in self.updates if u.security]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "node": self.node,
            "reachable": self.reachable,
            "error": self.error,
            "reason": self.reason,
            "os": self.os,
            "package_manager": self.family,
            "pending_security": len(self.security) if self.reachable else None,
            "pending_all": len(self.updates) if self.reachable else None,
            "updates": [u.to_dict() for u in self.updates],
            "reboot_required": self.reboot_required,
            "uptime_s": self.uptime_s,
            "seconds": round(self.seconds, 3),
        }


def os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def family_of(release: dict[str, str]) -> str | None:
    ids = [release.get("ID", "").lower(), *release.get("ID_LIKE", "").lower().split()]
    if any(i in APT_FAMILY for i in ids):
        return "apt"
    if any(i in DNF_FAMILY for i in ids):
        return "dnf"
    return None


def parse_apt(text: str) -> list[Update]:
    out = []
    for line in text.splitlines():
        m = _INST.match(line.strip())
        if m:
            out.append(Update(m.group(1), m.group(3), "security" in m.group(4).lower()))
    return out


def parse_dnf(check_update: str, security_list: str) -> list[Update]:
    secure = [line.split()[-1] for line in security_list.splitlines() if len(line.split()) >= 3]
    out = []
    for line in check_update.splitlines():
        cols = line.split()
        if len(cols) != 3 or line.startswith(" ") or cols[0].endswith(":"):
            continue
        name = cols[0].rsplit(".", 1)[0]
        out.append(Update(name, cols[1], any(s.startswith(f"{name}-{cols[1]}") for s in secure)))
    return out


def _parts(text: str) -> list[str]:
    return text.split(SEP)


def _survey_command() -> str:
    """FACTS and the package manager's listing in one session (one round trip per host): the
    shell picks apt or dnf from /etc/os-release with the same lists as family_of."""
    apt = "|".join(f'*" {i} "*' for i in APT_FAMILY)
    dnf = "|".join(f'*" {i} "*' for i in DNF_FAMILY)
    return (
        f'{FACTS}; echo {SEP}; ( . /etc/os-release; case " $ID $ID_LIKE " in '
        f"{apt}) {APT_LIST};; {dnf}) {DNF_LIST};; esac )"
    )


SURVEY = _survey_command()


def read_facts(shell: RemoteShell, facts: HostFacts, timeout: float) -> HostFacts:
    """Fill `facts` from an open session (one command); raises SshError when the host stops answering."""
    res = shell.run(SURVEY, timeout=timeout)
    chunks = _parts(res.stdout) + ["", "", ""]
    release_text, uptime, boot = chunks[:3]
    release = os_release(release_text)
    facts.os = release.get("PRETTY_NAME") or release.get("NAME") or "unknown"
    facts.family = family_of(release)
    facts.uptime_s = float(uptime.split()[0]) if uptime.split() else None
    facts.boot_id = boot.strip() or None
    facts.updates, facts.reboot_required = parse_pending(facts.family, chunks[3:], res.stderr, facts.name)
    facts.reachable = True
    return facts


def pending(shell: RemoteShell, family: str | None, timeout: float, host: str) -> tuple[list[Update], bool]:
    """(pending updates, reboot required) by the host's package manager."""
    command = {"apt": APT_LIST, "dnf": DNF_LIST}.get(family or "")
    if command is None:
        return parse_pending(family, [], "", host)
    res = shell.run(command, timeout=timeout)
    return parse_pending(family, _parts(res.stdout), res.stderr, host)


def parse_pending(family: str | None, chunks: list[str], stderr: str, host: str) -> tuple[list[Update], bool]:
    """APT_LIST's or DNF_LIST's output, split at SEP."""
    chunks = chunks + ["", "", "", ""]
    if family == "apt":
        listing, code_and_flag = chunks[:2]
        code = code_and_flag.split()[0] if code_and_flag.split() else "?"
        if code != "0":
            raise SshError(host, "command", f"`apt-get -s upgrade` exited {code}: {stderr.strip()[-300:]}")
        return parse_apt(listing), code_and_flag.split()[-1] == "yes"
    if family == "dnf":
        check_code = chunks[1].split()[0] if chunks[1].split() else "?"
        if check_code not in ("0", "100"):  # 100: updates available
            raise SshError(
                host, "command", f"`dnf check-update` exited {check_code}: {stderr.strip()[-300:]}"
            )
        sec_text = "\n".join(chunks[1].splitlines()[1:])
        restart_code = chunks[3].split()[0] if chunks[3].split() else "0"
        return parse_dnf(chunks[0], sec_text), restart_code == "1"
    raise SshError(
        host, "command", "unknown OS family (neither apt nor dnf); /etc/os-release ID is not supported"
    )


def facts_of(hosts: Hosts, spec: HostSpec, timeout: float) -> HostFacts:
    """One host's facts; an unreachable host is a HostFacts with `error` (never raises)."""
    started = time.monotonic()
    facts = HostFacts(spec.name, f"{spec.address}:{spec.port}", spec.node_name)
    try:
        shell = hosts.connect(spec.name, timeout=timeout)
    except SshError as exc:
        facts.error, facts.reason = exc.message, exc.reason
        facts.seconds = time.monotonic() - started
        return facts
    try:
        read_facts(shell, facts, timeout)
    except SshError as exc:
        facts.error, facts.reason = exc.message, exc.reason
    finally:
        shell.close()
        facts.seconds = time.monotonic() - started
    return facts


def survey(hosts: Hosts, *, timeout: float, workers: int = 32) -> list[HostFacts]:
    """Every host's facts, in parallel; in the configured order."""
    specs = hosts.list()
    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(specs))), thread_name_prefix="host") as pool:
        return list(pool.map(lambda s: facts_of(hosts, s, timeout), specs))
