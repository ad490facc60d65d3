"""The sandbox's Redis: a primary, a replica and three sentinels on loopback.

Real redis-server processes (sentinels run as `redis-server CONF --sentinel`,
so the redis-sentinel package is not needed). Every process is daemonized with
a pidfile and recorded in `<root>/state.json`; `down()` stops those pids and
no others. Data nodes are named redis-1 and redis-2, not primary/replica,
because sentinel swaps the roles on a failover; their role is always read
from the servers themselves.

Authentication: data nodes have `requirepass` (and `masterauth`, since either may
become the replica), sentinels their own `requirepass` plus `sentinel auth-pass`
for the master; the passwords come from the sandbox's secrets file (secrets.py)
and reach clients through `SandboxCache.endpoint()`. Config files are 0600.
When we are root the servers run as the `redis` system user (Debian's
redis-server package creates it), in folders that user can enter: under the
sandbox folder when it can, else `/var/tmp/spywatcher-ops-<hash>-redis` (the
state records which, as `base`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ....core.commands import require_binary, run
from ....core.errors import NotReady, OperationFailed
from ....core.ports import CacheNode, ProviderEvent
from .. import net
from ..net import pick_port, port_free
from ..paths import claim_shared, is_ours, mark, not_ours_note
from ..secrets import SandboxSecrets

HOST = "127.0.0.1"
DATA_NODES = ("redis-1", "redis-2")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
QUORUM = 2
# Sentinel timings. docs/measured.md's floor used 1000 ms down-after (failover
# ~2.2 s); 500 ms halves detection (failover ~1.1 s) and stayed free of false
# +sdown here. Overridable: ops.cache.down_after_ms. failover-timeout: a
# sentinel that voted in one failover waits 2x this before leading the next,
# so 4000 ms made a second failover soon after the first take ~10 s; at
# 2000 ms it is ~1.1 s, and promotion (seen within ~1 s) still fits in it.
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 2000
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
SYNC_PROBE_KEY = "spywatcher-ops:sync-probe"  # written by up() to prove replication flows
SERVER_USER = "redis"  # who the servers run as when we are root

# 12345:X 26 Nov 2026 06:40:01.123 # +sdown master spywatcher 127.0.0.1 21001
_LOG_LINE = re.compile(
    r"^\d+:[XMSC] (\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}) [.\-*#] ([+-][a-z][\w-]*)\s*(.*)$"
)


def client(port: int, *, timeout: float = 1.0, password: str | None = None) -> Any:
    """A redis-py client with no hidden retries: one attempt, a short timeout.

    redis-py's default retry policy turns a 10 ms switch into a multi-second
    outage (docs/measured.md); callers that retry do so on their own schedule.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=HOST,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def pid_alive(pid: int | None, port: int) -> bool:
    """True if `pid` is a live redis-server listening on `port` (net.pid_alive, and its title)."""
    if not net.pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    # redis-server retitles itself "redis-server 127.0.0.1:PORT" (+ " [sentinel]").
    return "redis" in cmdline and f":{port}" in cmdline


def _quote(value: str | Path) -> str:
    return json.dumps(str(value))  # redis config strings accept C-style double quotes


def default_base(root: Path) -> Path:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"spywatcher-ops-{digest}-redis"


def parse_log_time(text: str) -> datetime:
    """Redis logs local time with milliseconds; return it timezone-aware."""
    return datetime.strptime(text, "%d %b %Y %H:%M:%S.%f").astimezone()


class RedisSandbox:
    def __init__(
        self,
        root: Path,
        *,
        master_name: str,
        down_after_ms: int = DOWN_AFTER_MS,
        secrets: SandboxSecrets | None = None,
    ) -> None:
        self.root = Path(root)
        self.master_name = master_name
        self.down_after_ms = int(down_after_ms)
        self.state_path = self.root / "state.json"
        # the sandbox's one secrets file, in the sandbox folder (this one's parent)
        self.secrets = secrets or SandboxSecrets(self.root.parent)
        self.run_as = SERVER_USER if os.geteuid() == 0 else None

    # credentials -------------------------------------------------------------
    def _auth(self, state: dict[str, Any] | None) -> bool:
        """Servers started with passwords (None: a set made before passwords existed)."""
        if state is None:
            state = self._load()
        return bool(state and state.get("auth"))

    def data_password(self, state: dict[str, Any] | None = None) -> str | None:
        return self.secrets.redis("default") if self._auth(state) else None

    def sentinel_password(self, state: dict[str, Any] | None = None) -> str | None:
        return self.secrets.redis("sentinel") if self._auth(state) else None

    # where the servers' files live ----------------------------------------------
    def _server_ids(self) -> tuple[int, int] | None:
        if not self.run_as:
            return None
        entry = pwd.getpwnam(self.run_as)
        return entry.pw_uid, entry.pw_gid

    def _own(self, path: Path) -> None:
        ids = self._server_ids()
        if ids:
            os.chown(path, *ids)

    def _choose_base(self) -> Path:
        """The sandbox folder if the server user can enter it, else a folder of its own in /var/tmp."""
        if not self.run_as or run(["test", "-x", str(self.root)], user=self.run_as, ok_codes=(0, 1)).ok:
            return self.root
        return default_base(self.root)

    def base(self, state: dict[str, Any] | None = None) -> Path:
        state = state if state is not None else self._load()
        return Path(state["base"]) if state and state.get("base") else self.root

    # state -----------------------------------------------------------------
    def _load(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise NotReady(
                f"{self.state_path}: not valid JSON ({exc.msg})",
                hint="stop stray processes with `inv sandbox.down`, then delete the file",
            ) from None

    def _save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def exists(self) -> bool:
        return self.state_path.exists()

    def node_dir(self, node: str, state: dict[str, Any] | None = None) -> Path:
        return self.base(state) / node

    def ports(self) -> dict[str, int]:
        state = self._load() or {"nodes": {}}
        return {name: int(spec["port"]) for name, spec in state["nodes"].items()}

    def switch_timeout(self) -> float:
        """Seconds a healthy sentinel set may take to promote: detection plus two failover attempts."""
        return (self.down_after_ms + 2 * FAILOVER_TIMEOUT_MS) / 1000 + 5

    def node_spec(self, name: str) -> dict[str, Any] | None:
        """The recorded port and pid of one node, or None."""
        state = self._load() or {"nodes": {}}
        spec = state["nodes"].get(name)
        return dict(spec) if spec else None

    def node_on_port(self, port: int) -> str | None:
        state = self._load()
        return self._node_on_port(state, port) if state else None

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        ports = self.ports()
        return [(HOST, ports[s]) for s in SENTINELS if s in ports]

    # lifecycle ---------------------------------------------------------------
    def up(self) -> list[CacheNode]:
        """Start what is missing; leave what runs alone. Returns status()."""
        binary = self.preflight()
        self._claim()
        state = self._load()
        if state is not None and not state.get("auth"):
            # made before passwords existed: a cache may lose its contents, so start it again
            self.down()
            self._cold_start(binary, self._load())
        elif state is None or not any(
            pid_alive(spec.get("pid"), spec["port"]) for spec in state["nodes"].values()
        ):
            self._cold_start(binary, state)
        else:
            self._repair(binary, state)
        return self.status()

    def preflight(self) -> str:
        """What `up` needs, checked before anything starts: the binary and a folder we may use."""
        binary = require_binary("redis-server", package="redis-server")
        if (
            self.root.exists()
            and not is_ours(self.root)
            and any(self.root.iterdir())
            and not self._legacy_state()
        ):
            raise NotReady(
                f"sandbox Redis folder {self.root} exists but was not created by spywatcher-ops",
                hint="move it away, or set the sandbox's state_dir elsewhere",
            )
        return binary

    def _claim(self) -> None:
        """Create the folder with our marker; purge deletes only a folder that has it."""
        if not self.root.exists():
            self.root.mkdir(parents=True)
        if not is_ours(self.root):
            mark(self.root)  # new, empty, or made before markers existed (preflight checked)

    def _legacy_state(self) -> bool:
        """A state file in our own layout: the folder was made by an older spywatcher-ops."""
        try:
            state = self._load()
        except NotReady:
            return False
        nodes = (state or {}).get("nodes")
        return bool(
            state
            and "master_name" in state
            and isinstance(nodes, dict)
            and set(nodes) == {*DATA_NODES, *SENTINELS}
        )

    def _cold_start(self, binary: str, old: dict[str, Any] | None) -> None:
        """Nothing runs: (re)create every process; reuse old ports when still free."""
        old_ports = {n: int(s["port"]) for n, s in (old or {}).get("nodes", {}).items()}
        self.secrets.ensure()
        base = self._choose_base()
        if base != self.root:
            claim_shared(base, self._server_ids())  # a predictable name in /var/tmp: made by us, or refused
            if base.exists() and not is_ours(base) and any(base.iterdir()):
                raise NotReady(
                    f"sandbox Redis folder {base} exists but was not created by spywatcher-ops",
                    hint="move it away, or set the sandbox's state_dir elsewhere",
                )
            base.mkdir(mode=0o700, exist_ok=True)
            self._own(base)
            if not is_ours(base):
                mark(base)
        state: dict[str, Any] = {
            "auth": "requirepass",
            "base": str(base),
            "run_as": self.run_as,
            "master_name": self.master_name,
            "host": HOST,
            "quorum": QUORUM,
            "down_after_ms": self.down_after_ms,
            "failover_timeout_ms": FAILOVER_TIMEOUT_MS,
            "nodes": {},
        }
        taken: set[int] = set()
        for name in (*DATA_NODES, *SENTINELS):
            # Sentinels rewrite their config with what they learned; a cold
            # start begins from a clean one.
            conf = self.node_dir(name, state) / "redis.conf"
            if conf.exists():
                conf.unlink()
        master_port = 0
        for name in (*DATA_NODES, *SENTINELS):
            preferred = old_ports.get(name)
            for attempt in range(3):
                port = (
                    preferred
                    if (attempt == 0 and preferred and port_free(preferred) and preferred not in taken)
                    else pick_port(taken)
                )
                taken.add(port)
                state["nodes"][name] = {"kind": _kind(name), "port": port, "pid": None}
                self._save(state)
                if name == DATA_NODES[0]:
                    self._write_data_conf(state, name, port, replicaof=None)
                elif name in DATA_NODES:
                    self._write_data_conf(state, name, port, replicaof=master_port)
                else:
                    self._write_sentinel_conf(state, name, port, master_port)
                started = self._start(binary, state, name, port, flexible_port=True)
                if started is not None:
                    state["nodes"][name]["pid"] = started
                    self._save(state)
                    break
            else:
                raise NotReady(f"could not find a free loopback port for {name} after 3 tries")
            if name == DATA_NODES[0]:
                master_port = port
        self._wait_converged(state)

    def _repair(self, binary: str, state: dict[str, Any]) -> None:
        """Some processes run: restart only the dead ones, in their old ports and roles.
        If another program took a dead node's port, start the whole set again on free
        ports instead (the sentinels and replicas know each other by port; a cache may
        lose its contents, a sandbox may)."""
        nodes = state["nodes"]
        blocked = [
            n
            for n, spec in nodes.items()
            if not pid_alive(spec.get("pid"), spec["port"]) and not port_free(spec["port"])
        ]
        if blocked:
            self.down()
            self._cold_start(binary, state)  # keeps the ports that are still free
            return
        for name in SENTINELS:  # sentinels first: they decide who the master is
            spec = nodes[name]
            if not pid_alive(spec.get("pid"), spec["port"]):
                self._check_port(name, spec["port"])
                conf = self.node_dir(name, state) / "redis.conf"
                if not conf.exists():
                    self._write_sentinel_conf(state, name, spec["port"], self._believed_master(state))
                spec["pid"] = self._start(binary, state, name, spec["port"], flexible_port=False)
                self._save(state)
        master = self._believed_master(state)
        master_node = self._node_on_port(state, master)
        dead = [n for n in DATA_NODES if not pid_alive(nodes[n].get("pid"), nodes[n]["port"])]
        if master_node in dead and len(dead) < len(DATA_NODES):
            # The master is gone but its replica lives: let the sentinels promote
            # it rather than restart an empty master the replica would copy.
            try:
                master = self._await_new_master(master)
                master_node = self._node_on_port(state, master)
            except NotReady:
                pass  # no promotion came: restart the old master in place, as master
        for name in dead:
            spec = nodes[name]
            self._check_port(name, spec["port"])
            replicaof = None if name == master_node else master
            self._write_data_conf(state, name, spec["port"], replicaof=replicaof)
            spec["pid"] = self._start(binary, state, name, spec["port"], flexible_port=False)
            self._save(state)
        self._wait_converged(state)

    def start_node(self, name: str, *, replicaof: int | None) -> int:
        """(Re)start one data node on its recorded port; used to rejoin an old primary."""
        binary = require_binary("redis-server", package="redis-server")
        state = self._load()
        if state is None or name not in state["nodes"]:
            raise NotReady(f"sandbox Redis node {name} is not set up; run `inv sandbox.up`")
        spec = state["nodes"][name]
        if pid_alive(spec.get("pid"), spec["port"]):
            raise NotReady(f"sandbox Redis node {name} (pid {spec['pid']}) is already running")
        self._check_port(name, spec["port"])
        self._write_data_conf(state, name, spec["port"], replicaof=replicaof)
        pid = self._start(binary, state, name, spec["port"], flexible_port=False)
        assert pid is not None
        spec["pid"] = pid
        self._save(state)
        return pid

    def down(self) -> None:
        """Stop every process we started (sentinels first, so they do not fail over), and any
        server still working in our folders that no record names (a run killed mid-start)."""
        state = self._load()
        if state is None:
            self._stop_unrecorded(None)
            return
        # Sentinels first (no failover while we stop), then replicas, then the
        # primary: a primary with no replica left shuts down without waiting for one.
        roles = {n.id: n.role for n in self.status() if n.role != "sentinel"}
        order = [*SENTINELS, *sorted(DATA_NODES, key=lambda n: roles.get(n) == "primary")]
        for name in order:
            spec = state["nodes"].get(name)
            if spec and pid_alive(spec.get("pid"), spec["port"]):
                os.kill(int(spec["pid"]), signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name in order:
            spec = state["nodes"].get(name)
            if not spec:
                continue
            while pid_alive(spec.get("pid"), spec["port"]):
                if time.monotonic() >= deadline:
                    os.kill(int(spec["pid"]), signal.SIGKILL)
                    deadline = time.monotonic() + STOP_TIMEOUT_S
                time.sleep(0.02)
            spec["pid"] = None
        self._stop_unrecorded(state)
        self._save(state)

    def _our_folders(self, state: dict[str, Any] | None) -> list[Path]:
        found = [self.root, self.base(state), default_base(self.root)]
        return [f for i, f in enumerate(found) if f not in found[:i] and is_ours(f)]

    def _stop_unrecorded(self, state: dict[str, Any] | None) -> list[int]:
        """redis-server processes whose working folder is one of ours (a daemonized server
        chdirs to its `dir`): found by folder, so a pid never recorded is still stopped."""
        folders = [str(f).rstrip("/") + "/" for f in self._our_folders(state)]
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd") + "/"
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                zombie = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except (OSError, IndexError):
                continue
            if b"redis" in cmdline and not zombie and any(cwd.startswith(f) for f in folders):
                found.append(int(entry))
        for pid in found:
            os.kill(pid, signal.SIGKILL)  # unrecorded: nobody relies on its contents
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(net.pid_alive(pid) for pid in found) and time.monotonic() < deadline:
            time.sleep(0.01)
        return found

    def purge(self) -> str | None:
        """Stop and delete everything, if the folder is ours; else touch nothing and say why (one line)."""
        if not self.root.exists():
            orphan = default_base(self.root)  # the servers' folder outlived the sandbox folder
            if orphan.exists() and is_ours(orphan):
                self._stop_unrecorded(None)
                shutil.rmtree(orphan)
            return None
        if not is_ours(self.root) and not self._legacy_state():
            # its state.json may name someone else's servers: no down() either
            # (a state in our own layout is a sandbox made before the marker existed: ours)
            return not_ours_note(self.root)
        base = self.base()
        self.down()
        shutil.rmtree(self.root)
        if base != self.root and base.exists():
            if not is_ours(base):
                return not_ours_note(base)
            shutil.rmtree(base)
        return None

    # observation -------------------------------------------------------------
    def status(self) -> list[CacheNode]:
        state = self._load()
        if state is None:
            return []
        nodes = {name: self._observed(state, name, spec) for name, spec in state["nodes"].items()}
        infos: dict[str, dict[str, Any]] = {}
        password = self.data_password(state)
        for name in DATA_NODES:
            spec = nodes.get(name)
            if spec and pid_alive(spec.get("pid"), spec["port"]):
                infos[name] = _info(spec["port"], "replication", password)
        primary_info = next((i for i in infos.values() if i.get("role") == "master"), None)
        out: list[CacheNode] = []
        for name in DATA_NODES:
            spec = nodes.get(name)
            if not spec:
                continue
            out.append(_data_node(name, spec, infos.get(name), primary_info))
        for name in SENTINELS:
            spec = nodes.get(name)
            if spec:
                out.append(self._sentinel_node(name, spec, self.sentinel_password(state)))
        return out

    def _observed(self, state: dict[str, Any], name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The node as it runs: a server started but never recorded (its `up` was interrupted
        before the pid was saved) is found by its own pidfile, so it is never shown as not
        running while it runs (`up` and `down` find it by its folder)."""
        if pid_alive(spec.get("pid"), spec["port"]):
            return spec
        found = _read_pid(self.node_dir(name, state) / "redis.pid")
        return {**spec, "pid": found} if pid_alive(found, spec["port"]) else spec

    def master_address(self) -> tuple[str, int] | None:
        """The master as a majority of live sentinels report it, or None."""
        votes: dict[tuple[str, int], int] = {}
        password = self.sentinel_password()
        for _host, port in self.sentinel_addresses():
            addr = _sentinel_master_addr(port, self.master_name, password)
            if addr:
                votes[addr] = votes.get(addr, 0) + 1
        if not votes:
            return None
        addr, count = max(votes.items(), key=lambda kv: kv[1])
        return addr if count >= QUORUM else None

    def events(self, since: datetime) -> list[ProviderEvent]:
        """Sentinel events (+sdown, +odown, +switch-master...) from the sentinels' logs."""
        out: list[ProviderEvent] = []
        state = self._load()
        for name in SENTINELS:
            log = self.node_dir(name, state) / "redis.log"
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                match = _LOG_LINE.match(line)
                if not match:
                    continue
                at = parse_log_time(match.group(1))
                if at < since:
                    continue
                out.append(
                    ProviderEvent(
                        at=at,
                        source=name,
                        code=match.group(2),
                        message=f"{match.group(2)} {match.group(3)}".strip(),
                    )
                )
        out.sort(key=lambda e: e.at)
        return out

    # internals ---------------------------------------------------------------
    def _sentinel_node(self, name: str, spec: dict[str, Any], password: str | None) -> CacheNode:
        alive = pid_alive(spec.get("pid"), spec["port"])
        details: dict[str, Any] = {"pid": spec.get("pid"), "alive": alive, "process": process_state(spec)}
        if alive:
            try:
                master = client(spec["port"], password=password).sentinel_master(self.master_name)
                details.update(
                    master=f"{master.get('ip')}:{master.get('port')}",
                    flags=master.get("flags"),
                    other_sentinels=master.get("num-other-sentinels"),
                    replicas=master.get("num-slaves"),
                    quorum=master.get("quorum"),
                )
            except Exception as exc:  # noqa: BLE001 - a reachable-but-confused sentinel is a status, not a crash
                details["error"] = str(exc)
        return CacheNode(
            id=name,
            role="sentinel",
            host=HOST,
            port=int(spec["port"]),
            alive=alive and "error" not in details,
            details=details,
        )

    def _believed_master(self, state: dict[str, Any]) -> int:
        """Port of the master: sentinels' majority, else a live data node saying master, else redis-1."""
        addr = self.master_address()
        if addr:
            return addr[1]
        for name in DATA_NODES:
            spec = state["nodes"][name]
            if pid_alive(spec.get("pid"), spec["port"]):
                if _info(spec["port"], "replication", self.data_password(state)).get("role") == "master":
                    return int(spec["port"])
        return int(state["nodes"][DATA_NODES[0]]["port"])

    def _node_on_port(self, state: dict[str, Any], port: int) -> str | None:
        return next((n for n in DATA_NODES if int(state["nodes"][n]["port"]) == port), None)

    def _await_new_master(self, old_port: int) -> int:
        deadline = time.monotonic() + self.switch_timeout()
        while time.monotonic() < deadline:
            addr = self.master_address()
            if addr and addr[1] != old_port:
                return addr[1]
            time.sleep(0.1)
        raise NotReady(
            f"the Redis master on port {old_port} is down and the sentinels did not promote the replica",
            hint="check the sentinel logs under " + str(self.root),
        )

    def _check_port(self, name: str, port: int) -> None:
        if not port_free(port):
            raise NotReady(
                f"port {port} of sandbox Redis node {name} is taken by another process",
                hint="free it, or run `inv sandbox.down` and `inv sandbox.up` to choose new ports",
            )

    def _common_conf(self, state: dict[str, Any], name: str, port: int) -> tuple[Path, list[str]]:
        """The folder of a node and the config lines every node (data or sentinel) starts with."""
        folder = self.node_dir(name, state)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.run_as:  # the server user's, with what an earlier run left in it (logs, RDB files)
            for path in (folder, *folder.iterdir()):
                self._own(path)
        return folder, [
            f"port {port}",
            f"bind {HOST}",
            "daemonize yes",
            f"pidfile {_quote(folder / 'redis.pid')}",
            f"logfile {_quote(folder / 'redis.log')}",
            f"dir {_quote(folder)}",
        ]

    def _write_conf(self, folder: Path, lines: list[str]) -> None:
        """redis.conf, 0600 and the server's own (it holds passwords; the server rewrites it)."""
        path = folder / "redis.conf"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        self._own(path)

    def _write_data_conf(self, state: dict[str, Any], name: str, port: int, *, replicaof: int | None) -> None:
        folder, lines = self._common_conf(state, name, port)
        lines += [
            # A cache: no persistence. Full syncs go through a (tiny) RDB file:
            # after a diskless sync the primary holds the stream back until the
            # replica's next REPLCONF ACK (up to 1 s), a window where "link up"
            # does not yet mean "replicating".
            'save ""',
            "appendonly no",
            "repl-diskless-sync no",
            "replica-read-only yes",
            # SIGTERM would otherwise wait up to 10 s for lagging replicas
            "shutdown-timeout 1",
        ]
        password = self.data_password(state)
        if password:  # masterauth too: after a failover either node may be the replica
            lines += [f"requirepass {_quote(password)}", f"masterauth {_quote(password)}"]
        if replicaof is not None:
            lines.append(f"replicaof {HOST} {replicaof}")
        self._write_conf(folder, lines)

    def _write_sentinel_conf(self, state: dict[str, Any], name: str, port: int, master_port: int) -> None:
        folder, lines = self._common_conf(state, name, port)
        m = self.master_name
        password, own = self.data_password(state), self.sentinel_password(state)
        if own:  # also what a sentinel presents to the other sentinels (no sentinel-pass set)
            lines.append(f"requirepass {_quote(own)}")
        lines += [
            f"sentinel monitor {m} {HOST} {master_port} {QUORUM}",
            f"sentinel down-after-milliseconds {m} {self.down_after_ms}",
            f"sentinel failover-timeout {m} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {m} 1",
        ]
        if password:
            lines.append(f"sentinel auth-pass {m} {_quote(password)}")
        self._write_conf(folder, lines)

    def _start(
        self, binary: str, state: dict[str, Any], name: str, port: int, *, flexible_port: bool
    ) -> int | None:
        """Start one daemon; its pid once it answers PING. None = port lost to a race (retry)."""
        folder = self.node_dir(name, state)
        pidfile = folder / "redis.pid"
        log = folder / "redis.log"
        if pidfile.exists():
            pidfile.unlink()
        log_offset = log.stat().st_size if log.exists() else 0
        argv = [binary, str(folder / "redis.conf")]
        if name in SENTINELS:
            argv.append("--sentinel")
        # umask 077: files the server writes itself (a sentinel's rewritten config holds passwords) stay private
        argv = ["sh", "-c", 'umask 077 && exec "$@"', "redis-server", *argv]
        run(argv, timeout=START_TIMEOUT_S, user=self.run_as, cwd=str(folder))  # returns once daemonized
        password = self.sentinel_password(state) if name in SENTINELS else self.data_password(state)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            pid = _read_pid(pidfile)
            if pid and pid_alive(pid, port) and _pings(port, password):
                return pid
            tail = _log_tail(log, log_offset)
            if "Address already in use" in tail or "Could not create server TCP" in tail:
                if flexible_port:
                    return None
                raise NotReady(
                    f"sandbox Redis node {name} could not listen on port {port}: {tail.strip()[-200:]}"
                )
            time.sleep(0.02)
        raise OperationFailed(
            f"sandbox Redis node {name} did not answer PING on port {port} within {START_TIMEOUT_S:.0f} s; "
            f"log: {_log_tail(log, log_offset).strip()[-300:] or 'empty'}"
        )

    def _wait_converged(self, state: dict[str, Any]) -> None:
        """Wait until replicas are in sync and every sentinel knows the others and the replica.

        Until then a failover could not succeed, so `up()` is not finished.
        """
        deadline = time.monotonic() + 20
        last = "starting"
        while time.monotonic() < deadline:
            last = self._convergence_problem(state) or ""
            if not last:
                return
            time.sleep(0.1)
        raise NotReady(f"sandbox Redis did not settle within 20 s: {last}", hint=f"logs under {self.root}")

    def _convergence_problem(self, state: dict[str, Any]) -> str | None:
        nodes = state["nodes"]
        password, sentinel_password = self.data_password(state), self.sentinel_password(state)
        for name in DATA_NODES:
            info = _info(nodes[name]["port"], "replication", password)
            if not info:
                return f"{name} does not answer"
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return f"{name} replication link is {info.get('master_link_status', 'unknown')}"
            if info.get("role") == "master" and not replicating(int(nodes[name]["port"]), password=password):
                return f"{name} has no replica acknowledging writes yet"
        for name in SENTINELS:
            try:
                master = client(nodes[name]["port"], password=sentinel_password).sentinel_master(
                    self.master_name
                )
            except Exception as exc:  # noqa: BLE001 - not ready yet is the expected answer here
                return f"{name}: {exc}"
            if int(master.get("num-other-sentinels", 0)) < len(SENTINELS) - 1:
                return f"{name} sees {master.get('num-other-sentinels')} other sentinels"
            if int(master.get("num-slaves", 0)) < len(DATA_NODES) - 1:
                return f"{name} sees {master.get('num-slaves')} replicas"
            if "down" in str(master.get("flags", "")):
                return f"{name} flags the master {master.get('flags')}"
        return None


# helpers ----------------------------------------------------------------------
def _kind(name: str) -> str:
    return "sentinel" if name in SENTINELS else "data"


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _log_tail(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(offset)
            return fh.read()[-2000:].decode(errors="replace")
    except OSError:
        return ""


def _pings(port: int, password: str | None) -> bool:
    try:
        return bool(client(port, timeout=0.5, password=password).ping())
    except Exception:  # noqa: BLE001 - "not yet" is any error here
        return False


def replicating(master_port: int, replicas: int = 1, timeout_ms: int = 200, *, password: str | None) -> bool:
    """True once `replicas` replicas acknowledge a fresh write (link up is not enough)."""
    try:
        conn = client(master_port, password=password)
        conn.set(SYNC_PROBE_KEY, time.time())
        return int(conn.execute_command("WAIT", replicas, timeout_ms)) >= replicas
    except Exception:  # noqa: BLE001 - unreachable or read-only: not replicating to us
        return False


def _info(port: int, section: str, password: str | None) -> dict[str, Any]:
    try:
        return dict(client(port, password=password).info(section))
    except Exception:  # noqa: BLE001 - an unreachable node reports nothing
        return {}


def process_state(spec: dict[str, Any]) -> str:
    """The server as the process table shows it: running, stopped (SIGSTOP), not running."""
    pid = spec.get("pid")
    if not pid_alive(pid, int(spec["port"])):
        return "not running"
    try:
        code = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "not running"
    return "stopped by SIGSTOP" if code in ("T", "t") else "running"


def _sentinel_master_addr(port: int, master_name: str, password: str | None) -> tuple[str, int] | None:
    try:
        addr = client(port, timeout=0.5, password=password).sentinel_get_master_addr_by_name(master_name)
    except Exception:  # noqa: BLE001 - a dead sentinel simply does not vote
        return None
    if not addr:
        return None
    return str(addr[0]), int(addr[1])


def _data_node(
    name: str, spec: dict[str, Any], info: dict[str, Any] | None, primary: dict[str, Any] | None
) -> CacheNode:
    port = int(spec["port"])
    alive = info is not None and bool(info)
    details: dict[str, Any] = {"pid": spec.get("pid"), "alive": alive, "process": process_state(spec)}
    role = "unknown"
    if info:
        if info.get("role") == "master":
            role = "primary"
            details["offset"] = info.get("master_repl_offset")
            details["connected_replicas"] = info.get("connected_slaves")
        else:
            role = "replica"
            details["master"] = f"{info.get('master_host')}:{info.get('master_port')}"
            details["link"] = info.get("master_link_status")
            details["offset"] = info.get("slave_repl_offset")
            details["lag_bytes"] = None
            details["lag_s"] = None
            if primary:
                details["lag_bytes"] = max(
                    0, int(primary.get("master_repl_offset", 0)) - int(info.get("slave_repl_offset", 0))
                )
                for key, value in primary.items():
                    if (
                        key.startswith("slave")
                        and isinstance(value, dict)
                        and int(value.get("port", -1)) == port
                    ):
                        details["lag_s"] = value.get("lag")
    return CacheNode(id=name, role=role, host=HOST, port=port, alive=alive, details=details)
