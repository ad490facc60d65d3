"""The sandbox's PostgreSQL pair: provision, repair, status, stop, purge, and the
building blocks failover/restore/swap use (standby build, base backups, heartbeats).

Layout under `pg_base` (see state.py for why it may live outside the state folder):
    nodes/<node>/            one data folder per server (n1, n2, ...)
    logs/<node>.log          its server log
    archive/<lineage>/       archived WAL of one primary lineage
    backups/<id>/            base backups (snapshots), each with ops.json
    pgpass                   passwords for the tools and standbys (0600, the server user's)

Authentication: every role logs in with a password (scram-sha-256 in pg_hba.conf,
rewritten before every start; see postgres.hba_rules). The passwords are generated
once into `<root>/secrets.json` (secrets.py); the methods `query`, `try_query` and
`connect` below supply the superuser's, so callers never handle one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ....core.clock import iso
from ....core.errors import BadInput, NotReady, OperationFailed
from ....core.ports import Progress, no_progress
from ..net import pick_port, port_free
from ..paths import MARKER, claim_shared, is_ours, mark, not_ours_note
from ..secrets import REPLICATION_USER, SandboxSecrets, pgpass_text
from ..state import EventLog, StateFile, node_alive, node_pid
from . import server as pg

REPLICATION_MODES = ("synchronous", "asynchronous")
AUTH = "scram-sha-256"  # state["auth"]; absent in sandboxes made before passwords existed
PGPASS = "pgpass"
STATUS_TIMEOUT_S = 2.0  # a node that does not answer within this is "not answering" (frozen, overloaded)


@dataclass
class NodeReport:
    name: str
    role: str
    port: int
    pid: int | None
    alive: bool
    action: str = ""  # what `up` did: running, started, created, rebuilt, moved port
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row = {
            "name": self.name,
            "role": self.role,
            "port": self.port,
            "pid": self.pid,
            "alive": self.alive,
            "action": self.action,
        }
        # a detail never replaces the node's own fields (alive above all)
        return {**row, **{k: v for k, v in self.details.items() if k not in row}}


def default_pg_base(root: Path) -> Path:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"spywatcher-ops-{digest}"


class PgSandbox:
    """The PostgreSQL processes of one sandbox, driven by its state file."""

    def __init__(
        self,
        root: Path,
        *,
        instance_id: str,
        replication: str = "synchronous",
        bin_dir: Path = pg.PG_BIN,
        db_name: str = "spywatcher",
        db_user: str = "spywatcher",
        now: Callable[[], datetime],
    ) -> None:
        if replication not in REPLICATION_MODES:
            raise BadInput(
                f"environments.sandbox.replication {replication}: unknown mode; accepted: {', '.join(REPLICATION_MODES)}"
            )
        self.root = root
        self.instance_id = instance_id
        self.replication = replication
        self.bin_dir = bin_dir
        self.db_name = db_name
        self.db_user = db_user
        self.now = now
        self.statefile = StateFile(root, check=self.check_root)
        self.events = EventLog(root)
        self.secrets = SandboxSecrets(root)
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self._passwords: dict[str, Any] | None = None

    # -- helpers ----------------------------------------------------------
    def user(self, state: dict[str, Any] | None = None) -> pg.ServerUser:
        base = Path(state["pg_base"]) if state else self.root
        passfile = base / PGPASS if state and state.get("auth") else None
        return pg.ServerUser(
            self.bin_dir, (state or {}).get("run_as", self.run_as) if state else self.run_as, base, passfile
        )

    def password(self, which: str = "superuser") -> str | None:
        """A PostgreSQL password of this sandbox (superuser, replication, app); None for a
        sandbox made before passwords existed (no password file: its servers ask for none)."""
        if self._passwords is None:
            if not self.secrets.exists():
                return None
            self._passwords = self.secrets.load()
        return str(self._passwords["postgres"][which])

    def query(
        self, port: int, sql: str, params: Any = (), *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """A query as the superuser, on one of this sandbox's servers."""
        return pg.query(port, sql, params, dbname=dbname, password=self.password())

    def try_query(self, port: int, sql: str, params: Any = ()) -> list[tuple[Any, ...]] | None:
        """Like query(), or None when the server cannot be reached."""
        return pg.try_query(port, sql, params, password=self.password())

    def connect(self, port: int, *, dbname: str = "postgres") -> Any:
        return pg.connect(port, dbname=dbname, password=self.password())

    def in_recovery(self, port: int) -> bool | None:
        return pg.in_recovery(port, password=self.password())

    def wait_ready(self, port: int, pid: int, log: Path, **kwargs: Any) -> None:
        pg.wait_ready(port, pid, log, password=self.password(), **kwargs)

    def write_pgpass(self, state: dict[str, Any]) -> None:
        """The server user's password file (tools it runs, standbys' primary_conninfo)."""
        if not state.get("auth"):
            return
        path = Path(state["pg_base"]) / PGPASS
        text = pgpass_text(self.secrets.load(), pg.HOST)
        try:
            if path.read_text() == text and path.stat().st_mode & 0o077 == 0:
                return
        except FileNotFoundError:
            pass
        pg.write_private(self.user(state), path, text)

    def event(self, code: str, message: str) -> None:
        self.events.add(self.now(), code, message)

    def check_root(self) -> None:
        """The state folder must be ours and whole; say how to repair it if not."""
        root = self.root
        if root.exists():
            info = root.stat()
            if not stat.S_ISDIR(info.st_mode):
                raise NotReady(
                    f"sandbox folder {root} is not a folder", hint="remove it or set ops.state_dir elsewhere"
                )
            if info.st_uid != os.geteuid():
                raise NotReady(
                    f"sandbox folder {root} is owned by uid {info.st_uid}, not by you (uid {os.geteuid()})",
                    hint=f"run as its owner, `chown -R {os.geteuid()} {root}`, or set ops.state_dir elsewhere",
                )
            if not os.access(root, os.W_OK | os.X_OK):
                raise NotReady(f"sandbox folder {root} is not writable", hint=f"chmod u+rwx {root}")

    def load(self) -> dict[str, Any]:
        state = self.statefile.load()
        if not state:
            raise self.not_provisioned()
        return state

    def not_provisioned(self) -> NotReady:
        return NotReady(
            f"the sandbox is not provisioned (no state in {self.root})", hint="run `inv sandbox.up` first"
        )

    def node_settings(
        self, state: dict[str, Any], name: str, *, sync_names: str | None = None
    ) -> dict[str, Any]:
        """Server settings for a node from its role in the state (sync names: current, unless given)."""
        node = state["nodes"][name]
        inst = state["instances"][node["instance"]]
        settings = pg.base_settings(node["port"])
        base = Path(state["pg_base"])
        lineage = inst.get("lineage")
        if lineage:
            archive = base / "archive" / lineage
            # always: a standby archives what it received, so losing the primary loses no archived WAL
            settings["archive_mode"] = "always"
            settings["archive_command"] = pg.archive_command(archive)
        if node["role"] == "standby":
            primary = state["nodes"][inst["primary"]]
            if state.get("auth"):  # the replication role, its password from the server user's pgpass
                passfile = conninfo_quote(str(base / PGPASS))
                settings["primary_conninfo"] = (
                    f"host={pg.HOST} port={primary['port']} user={REPLICATION_USER} "
                    f"passfile={passfile} application_name={name}"
                )
            else:
                settings["primary_conninfo"] = (
                    f"host={pg.HOST} port={primary['port']} user={pg.SUPERUSER} application_name={name}"
                )
            settings["primary_slot_name"] = slot_name(name)
            if lineage:
                settings["restore_command"] = pg.restore_command(base / "archive" / lineage)
        elif node["role"] == "primary":
            if sync_names is None:
                sync_names = node.get("sync_names", "")
            settings["synchronous_standby_names"] = sync_names
        from ..tls import server_settings  # TLS from the sandbox's own CA; renewed by maintenance (tls-renew)

        settings.update(server_settings(self, state))
        return settings

    def configure(
        self,
        state: dict[str, Any],
        name: str,
        *,
        sync_names: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        node = state["nodes"][name]
        settings = self.node_settings(state, name, sync_names=sync_names)
        if node["role"] == "primary":
            node["sync_names"] = settings["synchronous_standby_names"]
        settings.update(extra or {})
        user = self.user(state)
        data = Path(node["data"])
        pg.write_conf(user, data, settings)
        if state.get("auth"):
            pg.write_hba(user, data, self.hba_rules(state))
            self.write_pgpass(state)
        pg.set_signal_file(user, data, "standby.signal", node["role"] == "standby")

    def hba_rules(self, state: dict[str, Any]) -> list[str]:
        """pg_hba.conf rules for every node (a TLS-serving sandbox would ask for hostssl here)."""
        return pg.hba_rules()

    def reload(self, state: dict[str, Any], name: str) -> None:
        node = state["nodes"][name]
        if node_alive(node):
            self.user(state).pg("pg_ctl", "-D", node["data"], "reload")

    def taken_ports(self, state: dict[str, Any], but: str | None = None) -> set[int]:
        return {n["port"] for k, n in state["nodes"].items() if k != but}

    def new_node(self, state: dict[str, Any], instance: str, role: str) -> str:
        number = int(state.get("next_node", 1))
        state["next_node"] = number + 1
        name = f"n{number}"
        base = Path(state["pg_base"])
        state["nodes"][name] = {
            "instance": instance,
            "role": role,
            "data": str(base / "nodes" / name),
            "log": str(base / "logs" / f"{name}.log"),
            "port": pick_port(self.taken_ports(state)),
            "pid": None,
            "desired": "running",
        }
        return name

    def start_node(
        self, state: dict[str, Any], name: str, *, wait: bool = True, extra: dict[str, Any] | None = None
    ) -> int:
        node = state["nodes"][name]
        if not port_free(node["port"]):
            old = node["port"]
            node["port"] = pick_port(self.taken_ports(state, but=name) | {old})
            node.setdefault("notes", []).append(f"port {old} was busy; moved to {node['port']}")
            self.event("port-moved", f"{name}: port {old} was busy; now {node['port']}")
        for attempt in (1, 2):
            self.configure(state, name, extra=extra)
            self.record_intent(state, name)
            try:
                node["pid"] = pg.start(self.user(state), Path(node["data"]), Path(node["log"]), wait=wait)
                node.pop("starting", None)
                self.statefile.save(state)  # then the pid
                return int(node["pid"])
            except OperationFailed as exc:
                # taken between our check and the server's bind: once more on another port
                if (
                    attempt == 2
                    or "could not bind" not in str(exc)
                    and "Address already in use" not in str(exc)
                ):
                    raise
                old = node["port"]
                node["port"] = pick_port(self.taken_ports(state, but=name) | {old})
                self.event("port-moved", f"{name}: port {old} was taken while starting; now {node['port']}")
        raise AssertionError("unreachable")

    def record_intent(self, state: dict[str, Any], name: str) -> None:
        """Save the state naming the node (its folder, port) before its server starts: a run
        killed right after the start still leaves a record that finds the server."""
        state["nodes"][name]["starting"] = iso(self.now())
        self.statefile.save(state)

    def stop_node(self, state: dict[str, Any], name: str) -> None:
        node = state["nodes"][name]
        pg.stop(self.user(state), Path(node["data"]), node.get("pid"))
        node["pid"] = None

    # -- provisioning -----------------------------------------------------
    def choose_pg_base(self) -> Path:
        """Where the server user can enter: under the state folder if it can, else /var/tmp."""
        inside = self.root / "postgres"
        user = pg.ServerUser(self.bin_dir, self.run_as, self.root)
        if user.can_enter(self.root):
            return inside
        return default_pg_base(self.root)

    def fresh_state(self) -> dict[str, Any]:
        base = self.choose_pg_base()
        return {
            "version": 1,
            "root": str(self.root),
            "pg_base": str(base),
            "run_as": self.run_as,
            "auth": AUTH,
            "replication": self.replication,
            "main": self.instance_id,
            "instances": {},
            "nodes": {},
            "next_node": 1,
            "next_lineage": 1,
            "heartbeats": [],
            "created": iso(self.now()),
        }

    def new_lineage(self, state: dict[str, Any]) -> str:
        number = int(state.get("next_lineage", 1))
        state["next_lineage"] = number + 1
        lineage = f"l{number}"
        self.user(state).mkdir(Path(state["pg_base"]) / "archive" / lineage)
        return lineage

    def preflight(self) -> None:
        """What `up` needs, checked before anything is created or started."""
        self.check_root()
        state = self.statefile.load()
        if state and not state.get("auth"):
            raise NotReady(
                f"the sandbox under {self.root} was made by an earlier spywatcher-ops whose servers need no "
                "password; it is not repaired as it is",
                hint="`inv sandbox.reset --yes` rebuilds it with passwords (all sandbox data is lost)",
            )
        if self.run_as:
            pg.require_user(self.run_as)
        pg.ServerUser(self.bin_dir, self.run_as, self.root).check_tools()

    def up(self, progress: Progress = no_progress) -> list[NodeReport]:
        """Provision from nothing, or repair what is not running. Idempotent."""
        self.preflight()
        self.root.mkdir(parents=True, exist_ok=True)
        with self.statefile.editing() as state:
            if state.get("provisioning"):
                self._start_over(state, progress)
            if not state:
                state.update(self.fresh_state(), provisioning=True)  # saved with the first server's intent
                try:
                    reports = self._provision(state, progress)
                except BaseException:
                    self._stop_all(state)
                    raise
                state.pop("provisioning", None)
                return reports
            if state.get("replication") != self.replication:
                state["replication"] = self.replication
            from .operations import finish_interrupted_restores

            for note in finish_interrupted_restores(self, state):
                progress(note)
            return self._repair(state, progress)

    def _start_over(self, state: dict[str, Any], progress: Progress) -> None:
        """A first `up` was killed before it finished: what it made is incomplete; stop its
        servers and delete its (marked) folder, then provision from nothing."""
        progress("an earlier `sandbox.up` was interrupted while provisioning; starting over")
        self._stop_all(state, kill=True)
        base = Path(state["pg_base"])
        if base.exists() and is_ours(base):
            shutil.rmtree(base)
        self.event(
            "provision-restarted", f"an interrupted first `sandbox.up` left {base}; deleted and started over"
        )
        state.clear()

    def _provision(self, state: dict[str, Any], progress: Progress) -> list[NodeReport]:
        user = self.user(state)
        base = Path(state["pg_base"])
        if base == default_pg_base(self.root):  # a predictable name in /var/tmp: made by us, or refused
            claim_shared(base, (user.uid, user.gid) if self.run_as else None)
        if base.exists() and any(base.iterdir()) and not is_ours(base):
            raise NotReady(
                f"PostgreSQL folder {base} exists and was not created by spywatcher-ops",
                hint="move it away, or set the sandbox's state_dir elsewhere",
            )
        if base.exists() and any(p.name != MARKER for p in base.iterdir()):
            raise NotReady(
                f"PostgreSQL folder {base} exists but no sandbox state refers to it (half-deleted sandbox?)",
                hint=f"remove it (`rm -rf {base}`) or run `inv sandbox.reset --yes`",
            )
        for sub in ("nodes", "logs", "backups", "archive"):
            user.mkdir(base / sub)
        self._mark(state, base)  # new, or empty (checked above): everything in it is ours
        self.statefile.save(state)  # "provisioning": a run killed from here on is started over by `up`
        self.secrets.ensure()
        self._passwords = None
        self.write_pgpass(state)
        lineage = self.new_lineage(state)
        inst_id = self.instance_id
        state["instances"][inst_id] = {
            "primary": None,
            "standby": None,
            "lineage": lineage,
            "created_by_us": False,
            "created": iso(self.now()),
            "origin": "sandbox.up",
        }
        primary = self.new_node(state, inst_id, "primary")
        state["instances"][inst_id]["primary"] = primary
        progress(f"initdb {primary}")
        pg.initdb(user, Path(state["nodes"][primary]["data"]), str(self.password()))
        progress(f"starting primary {primary}")
        self.start_node(state, primary)
        port = state["nodes"][primary]["port"]
        self.create_roles(port)
        self.query(port, f'CREATE DATABASE "{self.db_name}" OWNER "{self.db_user}"')
        self.query(port, "CREATE TABLE spywatcher_ops_heartbeat (at timestamptz NOT NULL)")
        self.event("created", f"primary {primary} on port {port}")
        reports = [self.report(state, primary, "created")]
        standby = self.build_standby(state, inst_id, progress)
        reports.append(self.report(state, standby, "created"))
        self.statefile.save(state)
        progress("first base backup")
        from .backups import take_automated_backup

        take_automated_backup(self, state, progress)
        self.heartbeat(state)
        return reports

    def create_roles(self, port: int) -> None:
        """The application and replication roles, with their passwords. Only SCRAM verifiers
        (computed here by libpq) reach the server: no plain password in its logs."""
        with self.connect(port) as conn:
            for role, which, options in (
                (self.db_user, "app", "LOGIN CREATEDB"),
                (REPLICATION_USER, "replication", "LOGIN REPLICATION"),
            ):
                verifier = conn.pgconn.encrypt_password(
                    str(self.password(which)).encode(), role.encode(), AUTH.encode()
                ).decode()
                conn.execute(f"CREATE ROLE \"{role}\" {options} PASSWORD '{verifier}'")

    def build_standby(
        self, state: dict[str, Any], inst_id: str, progress: Progress, name: str | None = None
    ) -> str:
        """A new (or rebuilt) streaming standby for an instance's primary, via a fresh base backup."""
        inst = state["instances"][inst_id]
        primary = state["nodes"][inst["primary"]]
        if name is None:
            name = self.new_node(state, inst_id, "standby")
        node = state["nodes"][name]
        node.update(role="standby", instance=inst_id, desired="running")
        inst["standby"] = name
        user = self.user(state)
        data = Path(node["data"])
        if data.exists():
            shutil.rmtree(data)
        ensure_slot(self, primary["port"], slot_name(name))
        # --no-sync: a standby is rebuilt, not trusted, if the machine crashes right now;
        # the server itself runs with fsync on (snapshots are synced, they are the backups)
        progress(f"base backup for standby {name}")
        role = REPLICATION_USER if state.get("auth") else pg.SUPERUSER
        user.pg(
            "pg_basebackup",
            "-h",
            pg.HOST,
            "-p",
            primary["port"],
            "-U",
            role,
            "-D",
            data,
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-manifest",
            "--no-sync",
            "-l",
            f"standby {name}",
        )
        progress(f"starting standby {name}")
        self.start_node(state, name)
        self.after_standby_started(state, inst_id, progress)
        self.event("standby", f"standby {name} streaming from {inst['primary']} on port {node['port']}")
        return name

    def streaming(self, state: dict[str, Any], standby: str) -> bool:
        primary = state["nodes"][state["instances"][state["main"]]["primary"]]
        rows = self.try_query(
            primary["port"],
            "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
            (standby,),
        )
        return bool(rows)

    def after_standby_started(self, state: dict[str, Any], inst_id: str, progress: Progress) -> None:
        """Wait until the standby streams, then (synchronous mode) make the primary wait for it."""
        inst = state["instances"][inst_id]
        primary_name, standby_name = inst["primary"], inst["standby"]
        primary = state["nodes"][primary_name]
        deadline = time.monotonic() + 30
        while True:
            rows = self.try_query(
                primary["port"],
                "SELECT state FROM pg_stat_replication WHERE application_name = %s",
                (standby_name,),
            )
            if rows and rows[0][0] == "streaming":
                break
            if time.monotonic() > deadline:
                log = state["nodes"][standby_name]["log"]
                raise OperationFailed(
                    f"standby {standby_name} is not streaming after 30 s: {pg.log_tail(Path(log))}"
                )
            progress(f"waiting for {standby_name} to stream")
            time.sleep(0.05)
        want = f'"{standby_name}"' if state["replication"] == "synchronous" else ""
        if primary.get("sync_names") != want:
            self.configure(state, primary_name, sync_names=want)
            self.reload(state, primary_name)

    def _mark(self, state: dict[str, Any], base: Path) -> None:
        mark(base)
        self.user(state).own(base / MARKER)

    def _repair(self, state: dict[str, Any], progress: Progress) -> list[NodeReport]:
        reports: list[NodeReport] = []
        base = Path(state["pg_base"])
        if base.is_dir() and not is_ours(base):
            # provisioned before markers existed: our state names it and provisioning
            # refuses a non-empty folder, so it is ours; mark it so purge can delete it
            self._mark(state, base)
        main = state["instances"][state["main"]]
        primary_name, standby_name = main["primary"], main["standby"]
        primary = state["nodes"][primary_name]
        if not Path(primary["data"], "PG_VERSION").exists():
            raise NotReady(
                f"the primary's data folder {primary['data']} is missing (half-deleted sandbox)",
                hint="`inv sandbox.reset --yes` rebuilds the sandbox from nothing (its data is lost)",
            )
        old_port = primary["port"]
        reports.append(self.ensure_running(state, primary_name, progress))
        if standby_name:
            standby = state["nodes"][standby_name]
            alive = node_alive(standby)
            if not Path(standby["data"], "PG_VERSION").exists():
                self.build_standby(state, state["main"], progress, name=standby_name)
                reports.append(self.report(state, standby_name, "rebuilt (its data folder was missing)"))
            elif alive and primary["port"] != old_port:
                self.configure(state, standby_name)
                self.reload(state, standby_name)
                reports.append(
                    self.report(state, standby_name, "running, repointed to the primary's new port")
                )
            elif alive and self.streaming(state, standby_name):
                reports.append(self.report(state, standby_name, "running"))
            elif alive:  # running but cut off (e.g. a drill paused it): point it at the primary again
                self.configure(state, standby_name)
                self.reload(state, standby_name)
                self.after_standby_started(state, state["main"], progress)
                reports.append(self.report(state, standby_name, "running, reconnected to the primary"))
            else:
                try:
                    self.start_node(state, standby_name)
                    self.after_standby_started(state, state["main"], progress)
                    reports.append(self.report(state, standby_name, "started"))
                except OperationFailed:
                    self.stop_node(state, standby_name)
                    self.build_standby(state, state["main"], progress, name=standby_name)
                    reports.append(
                        self.report(state, standby_name, "rebuilt (it would not start as a standby)")
                    )
        else:
            self.build_standby(state, state["main"], progress)
            reports.append(self.report(state, main["standby"], "created"))
        if main.get("standby") and self.streaming(state, main["standby"]):
            self.after_standby_started(state, state["main"], progress)  # the configured mode, sync or async
        for name, node in state["nodes"].items():
            if name in (primary_name, standby_name, main.get("standby")) or node.get("desired") != "running":
                continue
            if not Path(node["data"], "PG_VERSION").exists():
                reports.append(self.report(state, name, "missing (data folder gone)"))
                continue
            reports.append(self.ensure_running(state, name, progress))
        from .backups import backups_of

        if not backups_of(state, main.get("lineage")):
            from .backups import take_automated_backup

            take_automated_backup(self, state, progress)
        return reports

    def ensure_running(self, state: dict[str, Any], name: str, progress: Progress) -> NodeReport:
        node = state["nodes"][name]
        running = node_pid(node)
        if running:
            adopted = running != node.get("pid")
            node["pid"] = running  # a server a killed run started but never recorded is adopted
            return self.report(state, name, f"running (adopted pid {running})" if adopted else "running")
        progress(f"starting {name}")
        old = node["port"]
        self.start_node(state, name)
        self.event("started", f"{name} ({node['role']}) was not running; started on port {node['port']}")
        action = "started" if node["port"] == old else f"started on port {node['port']} ({old} was busy)"
        return self.report(state, name, action)

    # -- status -----------------------------------------------------------
    def report(self, state: dict[str, Any], name: str, action: str = "") -> NodeReport:
        """alive means answering a query within STATUS_TIMEOUT_S; `process` says whether the
        postmaster exists (a SIGSTOPped one exists, and answers nothing)."""
        node = state["nodes"][name]
        running = node_pid(node)
        pid = running or node.get("pid")
        process = process_state(running, Path(node["data"]))
        answer = None
        if running is not None:
            answer = pg.answers(node["port"], password=self.password(), timeout=STATUS_TIMEOUT_S)
        alive = answer is not None
        details: dict[str, Any] = {"instance": node["instance"], "process": process, "answering": alive}
        if answer is not None:
            details["in_recovery"] = answer
        if node.get("notes"):
            details["notes"] = node["notes"]
        role = node["role"]
        if node["instance"] != state["main"]:
            role = "restored" if node.get("desired") == "running" else "replaced"
            if state["instances"].get(node["instance"], {}).get("status") == "failed":
                role = "failed restore"  # kept (--keep-failed, or short of its target): left alone
        return NodeReport(name, role, node["port"], pid, alive, action, details)

    def status(self) -> list[NodeReport]:
        state = self.statefile.load()
        if not state:
            return []
        reports = [self.report(state, name) for name in state["nodes"]]
        main = state["instances"][state["main"]]
        primary = state["nodes"][main["primary"]]
        rows = None
        if next(r for r in reports if r.name == main["primary"]).alive:
            rows = self.try_query(
                primary["port"],
                "SELECT application_name, state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
                " extract(epoch FROM replay_lag) FROM pg_stat_replication",
            )
        for rep in reports:
            if rep.name == main["standby"]:
                streaming = [r for r in rows or [] if r[0] == rep.name]
                if streaming:
                    name, st, sync, lag_bytes, lag_s = streaming[0]
                    rep.details.update(
                        replication=st,
                        sync_state=sync,
                        lag_bytes=int(lag_bytes or 0),
                        lag_seconds=float(lag_s or 0.0),
                    )
                else:
                    rep.details.update(replication="not streaming")
        return reports

    # -- WAL heartbeat: makes "latest restorable time" real ------------------
    def heartbeat(self, state: dict[str, Any], *, wait: float = 15) -> dict[str, Any] | None:
        """Commit a heartbeat on the primary, switch WAL, wait until the segment is archived.

        Recovery to a time T needs a commit at or after T in the archive; this is it.
        Returns the heartbeat record, or None when the primary is down.
        """
        main = state["instances"][state["main"]]
        primary = state["nodes"][main["primary"]]
        if not node_alive(primary) or not main.get("lineage"):
            return None
        import psycopg

        try:
            with self.connect(primary["port"]) as conn:
                with conn.transaction():
                    # the heartbeat only has to reach the WAL archive: never wait for a (missing)
                    # synchronous standby, or db.window/db.restore hang holding the state lock
                    conn.execute("SET LOCAL synchronous_commit = local")
                    at = conn.execute(
                        "INSERT INTO spywatcher_ops_heartbeat VALUES (clock_timestamp()) RETURNING at"
                    ).fetchone()[0]  # type: ignore[index]
                    # the commit in the WAL is what counts; old rows only grow the table
                    conn.execute(
                        "DELETE FROM spywatcher_ops_heartbeat WHERE at < clock_timestamp() - interval '1 day'"
                    )
                wal = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]  # type: ignore[index]
        except psycopg.Error:
            return None
        archive = Path(state["pg_base"]) / "archive" / main["lineage"]
        deadline = time.monotonic() + wait
        while not (archive / wal).exists():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)
        record = {"at": iso(at), "wal": wal, "lineage": main["lineage"]}
        state.setdefault("heartbeats", []).append(record)
        state["heartbeats"] = state["heartbeats"][-20:]
        return record

    # -- stop / purge -------------------------------------------------------
    def _stop_all(self, state: dict[str, Any], *, kill: bool = False) -> list[str]:
        """Stop every server at once (fast shutdown, in parallel); with `kill`, SIGKILL (purge).
        Servers are found by their data folders too, so one whose pid was never recorded stops."""
        from .processes import stop_all

        if not state.get("pg_base"):
            return []
        return stop_all(self.user(state), state, kill=kill)

    def down(self) -> list[str]:
        """Stop every PostgreSQL server the sandbox started; keep the data."""
        if not self.statefile.exists():
            return self._stop_unrecorded()
        with self.statefile.editing() as state:
            if not state:
                return self._stop_unrecorded()
            return self._stop_all(state)

    def _stop_unrecorded(self) -> list[str]:
        """No state (a first `up` killed before it saved one): stop servers found in our folders."""
        from ..state import servers_under
        from .processes import sweep

        stopped = []
        for base in (self.root / "postgres", default_pg_base(self.root)):
            if is_ours(base) or not base.exists():
                found = servers_under(base)
                if found:
                    sweep(base)
                    stopped.append(f"{len(found)} unrecorded process(es) under {base}")
        return stopped

    def purge(self) -> list[str]:
        """Stop everything and delete the PostgreSQL data, archive, backups and state.

        Only folders carrying our marker are deleted; returns one line per folder kept.
        """
        self.check_root()  # before anything: load() below turns its NotReady into "no state"
        try:
            state = self.statefile.load()
        except NotReady:
            state = {}
        if state:
            self._stop_all(state, kill=True)  # everything is deleted next: no need to shut down cleanly
            bases = [Path(state["pg_base"])]
        else:
            bases = [self.root / "postgres", default_pg_base(self.root)]
        kept = []
        from .processes import sweep

        for base in bases:
            if not base.exists():
                sweep(base)  # servers still running on a folder deleted under them
                continue
            # a sandbox made before the marker existed: its own state names the folder, in our layout
            legacy = (
                bool(state)
                and base == Path(state["pg_base"])
                and all((base / sub).is_dir() for sub in ("nodes", "archive"))
            )
            if not is_ours(base) and not legacy:
                kept.append(not_ours_note(base))
                continue
            sweep(base)  # servers whose state file or pid was lost: found by their folders
            shutil.rmtree(base)
        for name in (
            "state.json",
            "state.lock",
            "events.jsonl",
            "parameter-group.json",
        ):  # the last: switchover.py
            (self.root / name).unlink(missing_ok=True)
        for torn in self.root.glob("state.tmp*"):  # a save cut short by a SIGKILL
            torn.unlink(missing_ok=True)
        if (self.root / "tls").is_dir():  # the sandbox's own CA (tls.py), made by `up`
            shutil.rmtree(self.root / "tls")
        self.secrets.delete()
        self._passwords = None
        return kept


def slot_name(node_name: str) -> str:
    return node_name.replace("-", "_")


def conninfo_quote(value: str) -> str:
    """A libpq connection-string value, quoted (a path may hold spaces or quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def process_state(pid: int | None, data: Path) -> str:
    """The postmaster as the process table shows it: running, stopped (SIGSTOP), not running."""
    if pid is None:
        return "not running"
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return "stopped by SIGSTOP"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return "not running"
    return "running"


def drop_slot(box: PgSandbox, port: int, slot: str) -> None:
    """Drop an inactive slot if it exists: a slot nobody reads makes the server keep WAL forever."""
    box.query(
        port,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s AND NOT active",
        (slot,),
    )


def ensure_slot(box: PgSandbox, port: int, slot: str) -> None:
    box.query(
        port,
        "SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
        (slot, slot),
    )


def dump(state: dict[str, Any]) -> str:
    return json.dumps(state, indent=2, sort_keys=True)
