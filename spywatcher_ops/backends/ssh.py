"""SSH hosts through fabric, with host keys verified against a known_hosts file.

fabric's Connection adds unknown host keys on its own (paramiko's AutoAddPolicy)
and reads ~/.ssh/config; here neither happens: the only trusted keys are the
ones in the environment's known_hosts file, an unknown key or a changed one is
refused with the fingerprint and what to do, and nothing is ever written back
to the file. A jump host (ProxyJump) is verified the same way.

Configuration (per environment, `ops.environments.E.ssh`):

    ssh:
      known_hosts: deploy/ssh/known_hosts      # relative to the project, or absolute
      connect_timeout_seconds: 10
      hosts:
        - {name: bastion, address: 203.0.113.10, user: ec2-user, key_file: ~/.ssh/ops.pem}
        - {name: worker-1, address: 10.0.1.10, user: ec2-user, jump_host: bastion,
           kubernetes_node: true, node_name: ip-10-0-1-10.ec2.internal}

A sandbox environment also has its own host (`inv sandbox.up` starts it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import PROJECT_ROOT
from ..core.errors import BadInput
from ..core.ports import HostSpec, RemoteResult, SshError

if TYPE_CHECKING:
    from ..core.environment import Environment

HOST_KEYS = ("name", "address", "port", "user", "key_file", "jump_host", "kubernetes_node", "node_name")
DEFAULT_CONNECT_TIMEOUT = 10.0


def _path(raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def parse_hosts(env_name: str, raw: Any) -> list[HostSpec]:
    """`ssh.hosts` -> HostSpecs; BadInput naming the entry, the key and what is accepted."""
    if raw is None:
        return []
    where = f"environments.{env_name}.ssh.hosts"
    if not isinstance(raw, list):
        raise BadInput(
            f"{where}: a list of hosts, e.g. [{{name: worker-1, address: 10.0.1.10, user: ec2-user}}]"
        )
    out: list[HostSpec] = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise BadInput(f"{where}[{i}] {item!r}: a mapping with keys {', '.join(HOST_KEYS)}")
        unknown = sorted(set(item) - set(HOST_KEYS))
        if unknown:
            raise BadInput(f"{where}[{i}]: unknown key {unknown[0]!r}; accepted: {', '.join(HOST_KEYS)}")
        name, address = item.get("name"), item.get("address")
        if not isinstance(name, str) or not name or not isinstance(address, str) or not address:
            raise BadInput(
                f"{where}[{i}]: `name` and `address` are required, e.g. name: worker-1, address: 10.0.1.10"
            )
        port = item.get("port", 22)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise BadInput(f"{where}[{i}] ({name}).port {port!r}: a TCP port 1-65535, e.g. 22")
        node = item.get("node_name")
        if item.get("kubernetes_node") and not node:
            node = name  # the node is often named as the host
        if not item.get("kubernetes_node", node is not None):
            node = None
        out.append(
            HostSpec(
                name=name,
                address=address,
                port=port,
                user=str(item.get("user") or "root"),
                key_file=str(_path(str(item["key_file"]))) if item.get("key_file") else None,
                jump_host=item.get("jump_host"),
                node_name=node,
            )
        )
    names = [h.name for h in out]
    for h in out:
        if names.count(h.name) > 1:
            raise BadInput(f"{where}: host name {h.name!r} appears twice; names must be unique")
        if h.jump_host is not None and (h.jump_host not in names or h.jump_host == h.name):
            raise BadInput(
                f"{where} ({h.name}).jump_host {h.jump_host!r}: not another host of this list; "
                f"known: {', '.join(n for n in names if n != h.name) or 'none'}"
            )
    return out


def sandbox_host_file(env: Environment) -> Path:
    """Where `inv sandbox.up` records the sandbox's own SSH host (backends/sandbox/sshhost.py)."""
    from .sandbox.paths import sandbox_root

    return sandbox_root(env) / "sshhost" / "host.json"


class SshHosts:
    """The Hosts port: the environment's hosts, connected with fabric."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        raw = dict(environment.env.raw.get("ssh") or {})
        self.hosts = parse_hosts(environment.name, raw.get("hosts"))
        known = raw.get("known_hosts")
        self.connect_timeout = float(raw.get("connect_timeout_seconds") or DEFAULT_CONNECT_TIMEOUT)
        if environment.kind == "sandbox":
            own = sandbox_host_file(environment)
            if own.is_file():  # the sandbox's own host, as `inv sandbox.up` started it
                data = json.loads(own.read_text())
                self.hosts.append(HostSpec(**data["host"]))
                known = known or data["known_hosts"]
        self.known_hosts = _path(str(known)) if known else _path("~/.ssh/known_hosts")

    def list(self) -> list[HostSpec]:
        return list(self.hosts)

    def spec(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise BadInput(f"--host {name}: no such host in {self.environment.name}; known: {known}")

    def connect(self, name: str, *, timeout: float | None = None) -> FabricShell:
        spec = self.spec(name)
        limit = timeout or self.connect_timeout
        gateway = self._connection(self.spec(spec.jump_host), limit) if spec.jump_host else None
        conn = self._connection(spec, limit, gateway)
        _open(conn, spec, self.known_hosts)
        return FabricShell(spec, conn)

    def _connection(self, spec: HostSpec, timeout: float, gateway: Any = None) -> Any:
        return connection(spec, self.known_hosts, timeout, gateway)


def connection(spec: HostSpec, known_hosts: Path, timeout: float, gateway: Any = None) -> Any:
    """A fabric Connection that trusts only `known_hosts` and reads no ssh_config file."""
    import paramiko
    from fabric import Config, Connection

    config = Config(ssh_config=paramiko.SSHConfig(), overrides={"load_ssh_configs": False})
    kwargs: dict[str, Any] = {
        "banner_timeout": timeout,
        "auth_timeout": timeout,
        "look_for_keys": False,
        "allow_agent": spec.key_file is None,
    }
    if spec.key_file:
        kwargs["key_filename"] = spec.key_file
    conn = Connection(
        spec.address,
        user=spec.user,
        port=spec.port,
        config=config,
        gateway=gateway if gateway is not None else False,
        connect_timeout=timeout,
        connect_kwargs=kwargs,
    )
    _trust_only(conn.client, spec, known_hosts)
    return conn


class _UnknownKey(Exception):
    def __init__(self, hostname: str, key: Any) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


def _trust_only(client: Any, spec: HostSpec, known_hosts: Path) -> None:
    import paramiko

    class Refuse(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            raise _UnknownKey(hostname, key)

    client.set_missing_host_key_policy(Refuse())
    keys = client.get_host_keys()
    keys.clear()
    if known_hosts.is_file():
        keys.load(str(known_hosts))  # HostKeys.load: read only, never saved back


def fingerprint(key: Any) -> str:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def _lookup_name(spec: HostSpec) -> str:
    return spec.address if spec.port == 22 else f"[{spec.address}]:{spec.port}"


def _open(conn: Any, spec: HostSpec, known_hosts: Path) -> None:
    """Connect, turning every way it can fail into an SshError with the host named."""
    import paramiko

    lookup = _lookup_name(spec)
    try:
        conn.open()
    except _UnknownKey as exc:
        conn.close()
        raise SshError(
            spec.name,
            "host-key",
            f"unknown host key for {exc.hostname} ({fingerprint(exc.key)}): not in {known_hosts}"
            + ("" if known_hosts.is_file() else " (that file does not exist: ssh.known_hosts)")
            + "; refused",
            hint=f"check the fingerprint out of band, then add it: ssh-keyscan -p {spec.port} {spec.address} "
            f">> {known_hosts}",
        ) from None
    except paramiko.BadHostKeyException as exc:
        conn.close()
        raise SshError(
            spec.name,
            "host-key",
            f"the host key of {lookup} CHANGED: it sent {fingerprint(exc.key)}, known_hosts has "
            f"{fingerprint(exc.expected_key)}; refused",
            hint=f"if the host was rebuilt, verify the new key out of band and replace its line: "
            f"ssh-keygen -R '{lookup}' -f {known_hosts}",
        ) from None
    except paramiko.AuthenticationException as exc:
        conn.close()
        raise SshError(
            spec.name,
            "auth",
            f"{spec.user}@{lookup} refused our key ({exc})",
            hint="check the host's key_file (or the SSH agent) and the user's authorized_keys",
        ) from None
    except TimeoutError as exc:
        conn.close()
        raise SshError(
            spec.name, "timeout", f"{lookup} did not answer in time ({exc or 'timed out'})"
        ) from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        conn.close()
        text = str(exc) or type(exc).__name__
        reason = "timeout" if "timed out" in text.lower() or "banner" in text.lower() else "unreachable"
        raise SshError(spec.name, reason, f"{lookup} cannot be reached: {text}") from None


class FabricShell:
    """An open session (the RemoteShell port)."""

    def __init__(self, spec: HostSpec, conn: Any) -> None:
        self.spec = spec
        self.conn = conn

    def run(self, command: str, *, timeout: float, sudo: bool = False) -> RemoteResult:
        from invoke.exceptions import CommandTimedOut, ThreadException

        full = f"sudo -n {command}" if sudo and self.spec.user != "root" else command
        try:
            result = self.conn.run(full, hide=True, warn=True, timeout=timeout, in_stream=False)
        except CommandTimedOut:
            raise SshError(
                self.spec.name, "timeout", f"`{command}` did not finish within {timeout:.0f} s"
            ) from None
        except (OSError, EOFError, ThreadException) as exc:  # invoke wraps a dropped stream's error
            raise SshError(
                self.spec.name, "unreachable", f"the connection dropped during `{command}`: {exc}"
            ) from None
        except Exception as exc:
            import paramiko

            if isinstance(exc, paramiko.SSHException):
                raise SshError(
                    self.spec.name, "unreachable", f"the session failed during `{command}`: {exc}"
                ) from None
            raise
        return RemoteResult(command, int(result.exited), result.stdout, result.stderr)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a dropped connection may fail; nothing is left open
            pass
