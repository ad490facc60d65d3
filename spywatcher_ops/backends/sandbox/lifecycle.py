"""The sandbox as a whole: bring it up (or repair it), report, stop, purge, reset.

Domain functions for the `sandbox.*` tasks: they take the Environment and a
progress callback and return data; the tasks render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...core.errors import NotReady, OperationFailed, Unsupported
from ...core.plan import Plan, Step
from ...core.ports import ConnectionInfo, Progress, no_progress
from . import sshhost
from .postgres import server as pg
from .state import node_alive, node_pid

if TYPE_CHECKING:
    from ...core.environment import Environment
    from .postgres.provision import PgSandbox


def require_sandbox(environment: Environment) -> None:
    if environment.kind != "sandbox":
        raise Unsupported(
            f"--env {environment.name}: sandbox tasks work on sandbox environments only ({environment.name} is {environment.kind})"
        )


def _box(environment: Environment) -> PgSandbox:
    from .postgres.database import pg_sandbox

    return pg_sandbox(environment)


def _redis(environment: Environment) -> Any:
    from .redis.cache import SandboxCache

    return SandboxCache(environment).redis


@dataclass
class SandboxReport:
    root: str
    database: list[dict[str, Any]] = field(default_factory=list)
    cache: list[dict[str, Any]] = field(default_factory=list)
    database_url: str | None = None
    cache_sentinels: list[str] = field(default_factory=list)
    pg_base: str | None = None
    replication: str | None = None
    password_file: str | None = None  # where the passwords are (never the passwords themselves)
    ssh_host: dict[str, Any] | None = None  # the sandbox's SSH host (sshhost.py), what os-patch patches
    problems: list[str] = field(default_factory=list)  # not a process down, still not ready (status exits 3)

    @property
    def healthy(self) -> bool:
        return bool(self.database) and all(
            n["alive"] for n in self.database if n.get("desired", "running") == "running"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "pg_base": self.pg_base,
            "replication": self.replication,
            "database_url": self.database_url,
            "password_file": self.password_file,
            # which entry of the password file each connection uses
            "passwords": PASSWORD_KEYS if self.password_file else {},
            "database": self.database,
            "cache_sentinels": self.cache_sentinels,
            "cache": self.cache,
            "ssh_host": self.ssh_host,
            "problems": self.problems,
        }


PASSWORD_KEYS = {
    "database_url": "postgres.app",
    "postgres superuser": "postgres.superuser",
    "replicator (replication)": "postgres.replication",
    "redis primary and replica": "redis.default",
    "sentinels": "redis.sentinel",
}


def database_url(state: dict[str, Any], db_name: str, db_user: str) -> str:
    """libpq URI naming both nodes; target_session_attrs makes clients follow a failover."""
    main = state["instances"][state["main"]]
    names = [main["primary"]] + ([main["standby"]] if main.get("standby") else [])
    return ConnectionInfo(
        host=",".join(pg.HOST for _ in names),
        port=",".join(str(state["nodes"][n]["port"]) for n in names),
        dbname=db_name,
        user=db_user,
        target_session_attrs="read-write",
    ).redacted()


def _cache_rows(nodes: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for n in nodes:
        row = {"name": n.id, "role": n.role, "port": n.port, "pid": n.details.get("pid"), "alive": n.alive}
        # details' "alive" means the process exists (a SIGSTOPped one does): it never replaces the
        # node's own alive (answering), nor any other field of the row
        rows.append({**row, **{k: v for k, v in n.details.items() if k not in row}})
    return rows


def report(
    environment: Environment,
    db_rows: list[dict[str, Any]] | None = None,
    cache_nodes: list[Any] | None = None,
) -> SandboxReport:
    box = _box(environment)
    state = box.statefile.load()
    rep = SandboxReport(root=str(box.root))
    if box.secrets.exists():
        rep.password_file = str(box.secrets.path)
    if state and not state.get("provisioning"):
        rep.pg_base = state["pg_base"]
        rep.replication = state["replication"]
        rep.database_url = database_url(state, box.db_name, box.db_user)
        if db_rows is None:
            db_rows = [r.to_dict() for r in box.status()]
        building = None
        for row in db_rows:
            node = state["nodes"].get(row["name"], {})
            row["desired"] = node.get("desired", "running")
            if state["instances"].get(node.get("instance", ""), {}).get("status") == "creating":
                # a restore's server: judged by the restore, not by status (a killed one is removed by `up`)
                building = box.statefile.busy() if building is None else building
                row["role"] = "restoring" if building else "interrupted restore (`inv sandbox.up` removes it)"
                row["desired"] = "restoring"
        from .postgres.processes import unrecorded

        for extra in unrecorded(state):  # running in our folders, named by no node: `down` stops it
            db_rows.append(
                {
                    "name": extra["name"],
                    "role": "unrecorded",
                    "port": None,
                    "pid": extra["pid"],
                    "alive": True,
                    "desired": "stopped",
                    "instance": "",
                }
            )
        rep.database = db_rows
        if not state["instances"].get(state["main"], {}).get("standby"):
            # the pair lost its standby and nothing rebuilt it (a db.swap killed before it built one)
            rep.problems.append(f"{state['main']} has no standby: `inv sandbox.up` builds one")
    elif state:
        rep.pg_base = state[
            "pg_base"
        ]  # a first `up` was interrupted: `up` starts over, `down --purge` deletes it
    if cache_nodes is None:
        cache_nodes = _redis(environment).status()
    rep.cache = _cache_rows(cache_nodes)
    rep.cache_sentinels = [f"{n['name']}={pg.HOST}:{n['port']}" for n in rep.cache if n["role"] == "sentinel"]
    rep.ssh_host = sshhost.status(environment)
    return rep


def plan_up(environment: Environment) -> Plan:
    box = _box(environment)
    state = box.statefile.load()
    plan = Plan(f"bring up the sandbox under {box.root}")
    if not state or state.get("provisioning"):
        plan.add(
            Step(
                "sandbox",
                "provision_postgres",
                {
                    "primary": "initdb --wal-segsize=1 + pg_ctl start",
                    "standby": "pg_basebackup + streaming",
                    "replication": box.replication,
                    "archive": "archive_mode=always",
                    "first_base_backup": True,
                },
            )
        )
    else:
        if not state["instances"].get(state["main"], {}).get("standby"):
            plan.add(
                Step(
                    "sandbox",
                    "build_standby",
                    {"instance": state["main"]},
                    why="the database has no standby (a swap cut short); pg_basebackup + streaming",
                )
            )
        for name, node in state["nodes"].items():
            if state["instances"].get(node["instance"], {}).get("status") == "creating":
                plan.add(
                    Step(
                        "sandbox",
                        "roll_back_restore",
                        {"instance": node["instance"], "node": name},
                        why="its restore was interrupted: its server is stopped and its folder removed",
                    )
                )
            elif node.get("desired") == "running" and not node_alive(node):
                plan.add(
                    Step(
                        "sandbox",
                        "pg_ctl_start",
                        {"node": name, "role": node["role"], "port": node["port"]},
                        why="not running; repaired (a standby that cannot stream is rebuilt)",
                    )
                )
    plan.add(
        Step(
            "sandbox",
            "redis_up",
            {"folder": str(box.root / "redis")},
            why="primary + replica + 3 sentinels; started or repaired as needed",
        )
    )
    why_not = sshhost.preflight()
    plan.add(
        Step(
            "sandbox",
            "ssh_host_up",
            {"folder": str(sshhost.folder(environment))},
            why=why_not or "the SSH host the os-patch maintenance step patches; started if not answering",
        )
    )
    return plan


def up(environment: Environment, progress: Progress = no_progress) -> SandboxReport:
    """Provision from nothing, or report what runs and repair what does not."""
    box = _box(environment)
    redis = _redis(environment)
    # every binary and folder of both halves first: a missing redis-server must not
    # be found only after PostgreSQL is fully set up
    box.preflight()
    redis.preflight()
    part = "PostgreSQL"
    try:
        db_reports = box.up(progress)
        part = "Redis"
        progress("redis")
        cache_nodes = redis.up()
        part = "the SSH host"
        progress("ssh host")
        sshhost.up(environment)  # the host the os-patch maintenance step patches (needs root; else skipped)
    except KeyboardInterrupt as exc:
        raise UpInterrupted(_left_by_interrupted_up(box, part)) from exc
    rows = [r.to_dict() for r in db_reports]
    return report(environment, rows, cache_nodes)


class UpInterrupted(OperationFailed, KeyboardInterrupt):
    """Ctrl-C during `sandbox.up`: `up` is a repair, so nothing is undone; exit 1 saying what it
    left (not 4: nothing was rolled back)."""


def _left_by_interrupted_up(box: PgSandbox, part: str) -> str:
    state = box.statefile.load() or {}
    if state.get("provisioning"):  # box.up stopped the servers of a first provisioning it had started
        return (
            f"sandbox.up interrupted while starting {part}: the first provisioning did not finish; the "
            f"servers it had started were stopped and its unfinished folder {state.get('pg_base')} is kept; "
            "the next `inv sandbox.up` starts over (`inv sandbox.down --purge --yes` deletes it)"
        )
    return (
        f"sandbox.up interrupted while starting {part}: nothing was rolled back; what was already running "
        "or had been started keeps running (`inv sandbox.status` shows what does not); run `inv sandbox.up` "
        "again to finish, or `inv sandbox.down` to stop everything"
    )


def status(environment: Environment) -> SandboxReport:
    return report(environment)


def plan_down(environment: Environment, *, purge: bool) -> Plan:
    box = _box(environment)
    state = box.statefile.load()
    plan = Plan(("stop and delete" if purge else "stop") + f" the sandbox under {box.root}")
    for name, node in (state or {}).get("nodes", {}).items():
        if node_alive(node):
            if purge:  # its data is deleted next: no clean shutdown needed
                plan.add(Step("sandbox", "kill", {"node": name, "pid": node_pid(node), "signal": "SIGKILL"}))
            else:
                plan.add(
                    Step("sandbox", "pg_ctl_stop", {"node": name, "pid": node_pid(node), "mode": "fast"})
                )
    plan.add(Step("sandbox", "redis_down", {"folder": str(box.root / "redis")}))
    if sshhost.folder(environment).exists():
        plan.add(
            Step(
                "sandbox",
                "ssh_host_down",
                {"folder": str(sshhost.folder(environment))},
                why="its sshd and sessions; --purge also deletes its folder (keys, packages)",
            )
        )
    if purge:
        from pathlib import Path

        from .paths import is_ours, not_ours_note
        from .postgres.provision import default_pg_base

        redis_base = _redis(
            environment
        ).base()  # the Redis servers' own folder (in /var/tmp when we are root)
        folders = (
            [box.root / "redis"]
            + ([redis_base] if redis_base != box.root / "redis" else [])
            + ([Path(state["pg_base"])] if state else [box.root / "postgres", default_pg_base(box.root)])
        )
        folders = [f for f in folders if f.exists()]
        plan.add(
            Step(
                "sandbox",
                "delete_folders",
                {
                    "paths": [str(f) for f in folders if is_ours(f)],
                    "state_files": [
                        str(box.root / n)
                        for n in ("state.json", "state.lock", "events.jsonl", "secrets.json")
                    ],
                },
                why="every database, WAL archive, base backup and Redis file of the sandbox is deleted",
            )
        )
        plan.notes += [not_ours_note(f) for f in folders if not is_ours(f)]
    return plan


def down(environment: Environment, *, purge: bool) -> dict[str, Any]:
    """Stop (and with `purge` delete) the sandbox; `kept` lists folders left because they are not ours."""
    box = _box(environment)
    box.check_root()  # before the Redis half is touched
    redis = _redis(environment)
    try:
        if purge:
            kept = [
                note for note in (sshhost.down(environment, purge=True), redis.purge(), *box.purge()) if note
            ]
            if box.root.exists() and not any(box.root.iterdir()):
                box.root.rmdir()
            return {"stopped": "all", "purged": True, "kept": kept}
        stopped = box.down()
        redis.down()
        sshhost.down(environment)
    except KeyboardInterrupt as exc:
        what = "delete" if purge else "stop"
        raise DownInterrupted(
            f"sandbox.down interrupted: nothing was rolled back; what it stopped{' or deleted' if purge else ''} "
            f"stays so, the rest may still run (`inv sandbox.status` shows what); run `inv sandbox.down"
            f"{' --purge --yes' if purge else ''}` again to {what} the rest, or `inv sandbox.up` to start it again"
        ) from exc
    return {"stopped": stopped, "purged": False}


class DownInterrupted(OperationFailed, KeyboardInterrupt):
    """Ctrl-C during `sandbox.down`: what was stopped stays stopped (exit 1 saying so, not 4)."""


def reset(environment: Environment, progress: Progress = no_progress) -> SandboxReport:
    _box(environment).check_root()  # a folder we may not use: say so before deleting anything
    result = down(environment, purge=True)
    if result["kept"]:
        raise NotReady(
            f"sandbox deleted, but not rebuilt: {result['kept'][0]}",
            hint="move that folder away, then run `inv sandbox.up`",
        )
    return up(environment, progress)
