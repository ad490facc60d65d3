"""The `Database` port on the sandbox: a real PostgreSQL 15 primary + streaming
standby, WAL archive and base backups, with the same meaning as RDS.

Plans name the exact sandbox calls; the apply methods take their parameters
from the plan, so what --dry-run shows is what runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....core.clock import iso
from ....core.errors import BadInput, NotReady, OperationFailed, Refused, Unsupported
from ....core.plan import Plan, Step
from ....core.ports import (
    ConnectionInfo,
    FailoverResult,
    Instance,
    Progress,
    ProviderEvent,
    RestoreWindow,
    Snapshot,
    SwapResult,
    no_progress,
)
from ..pairplan import pair_plan
from ..paths import sandbox_root
from ..state import node_alive, node_pid
from . import server as pg
from .backups import all_backups, check_backup_id, delete_backup, find_backup, take_backup
from .provision import PgSandbox

if TYPE_CHECKING:
    from ....core.environment import Environment

ENGINE_VERSION = "15"


class DeleteInterrupted(OperationFailed, KeyboardInterrupt):
    """Ctrl-C during db.delete: what it stopped stays stopped (exit 1 saying so), and still an
    interrupt for callers that stop on one."""


def pg_sandbox(environment: Environment) -> PgSandbox:
    """The PostgreSQL half of the sandbox, configured from the environment."""
    raw = environment.env.raw
    db = environment.settings.section("database")
    return PgSandbox(
        sandbox_root(environment),
        instance_id=environment.env.resource(environment.settings.project, "db"),
        replication=str(raw.get("replication") or "synchronous"),
        bin_dir=Path(str(raw.get("pg_bin") or pg.PG_BIN)),
        db_name=str(db.get("name") or "spywatcher"),
        db_user=str(db.get("user") or "spywatcher"),
        now=environment.clock.now,
    )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _snapshot(manifest: dict[str, Any]) -> Snapshot:
    return Snapshot(
        id=manifest["id"],
        source=manifest.get("source", ""),
        kind=manifest.get("kind", "manual"),
        status="available",
        created=_time(manifest.get("created")),
        size_bytes=manifest.get("size_bytes"),
        ours=bool(manifest.get("ours")),
        tags=dict(manifest.get("tags") or {}),
    )


def _known_instance(state: dict[str, Any], instance_id: str) -> dict[str, Any]:
    inst: dict[str, Any] | None = state["instances"].get(instance_id)
    if inst is None:
        raise BadInput(
            f"instance {instance_id}: no such instance; known: {', '.join(sorted(state['instances']))}"
        )
    return inst


def _no_base_backup() -> NotReady:
    return NotReady("the sandbox has no base backup yet", hint="run `inv sandbox.up` or `inv db.snapshot`")


class SandboxDatabase:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.box = pg_sandbox(environment)

    # -- reading ---------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return self.box.load()

    def instance_id(self) -> str:
        return self.box.instance_id

    def _instance(self, state: dict[str, Any], instance_id: str) -> Instance:
        inst = _known_instance(state, instance_id)
        primary = state["nodes"][inst["primary"]]
        standby = state["nodes"].get(inst.get("standby") or "")
        alive = node_alive(primary)
        if inst.get("status") == "creating" and not self.box.statefile.busy():
            # registered, but the restore building it holds no lock any more: it was killed;
            # `sandbox.up` finishes its rollback
            inst = {**inst, "status": "failed", "interrupted": True}
        if inst.get("status") in ("creating", "failed"):
            status = inst["status"]
        elif primary.get("desired") == "stopped":
            status = "stopped"
        elif not alive:
            status = "failed"
        elif standby is not None and not node_alive(standby):
            status = "degraded"  # writes may wait for the standby under synchronous replication
        else:
            status = "available"
        details: dict[str, Any] = {
            "primary": {
                "node": inst["primary"],
                "port": primary["port"],
                "pid": node_pid(primary),
                "alive": alive,
            },
            "origin": inst.get("origin"),
            "created": inst.get("created"),
        }
        if inst.get("recovery"):
            details["recovery"] = inst["recovery"]  # where recovery really ended (db.verify compares with it)
        if inst.get("interrupted"):
            details["interrupted"] = "its restore was killed; `inv sandbox.up` removes it"
        if standby is not None:
            details["standby"] = {
                "node": inst["standby"],
                "port": standby["port"],
                "pid": node_pid(standby),
                "alive": node_alive(standby),
            }
            details["replication"] = state["replication"]
        return Instance(
            id=instance_id,
            status=status,
            host=pg.HOST,
            port=int(primary["port"]),
            engine_version=ENGINE_VERSION,
            multi_az=standby is not None,
            created_by_us=bool(inst.get("created_by_us")),
            details=details,
        )

    def describe(self, instance_id: str | None = None) -> Instance:
        state = self._state()
        return self._instance(state, instance_id or state["main"])

    def instances(self) -> list[Instance]:
        state = self._state()
        return [
            self._instance(state, i) for i in sorted(state["instances"], key=lambda i: i != state["main"])
        ]

    def connection(self, instance_id: str | None = None) -> ConnectionInfo:
        """The main instance: both nodes, libpq picks the one that accepts writes (follows a failover)."""
        state = self._state()
        inst_id = instance_id or state["main"]
        inst = _known_instance(state, inst_id)
        names = [inst["primary"]] + ([inst["standby"]] if inst.get("standby") else [])
        ports = [str(state["nodes"][n]["port"]) for n in names]
        multi = len(ports) > 1
        return ConnectionInfo(
            host=",".join([pg.HOST] * len(ports)),
            port=",".join(ports),
            dbname=self.box.db_name,
            user=self.box.db_user,
            password=self.box.password("app"),  # the one place the password joins the connection info
            sslmode="disable",
            target_session_attrs="read-write" if multi else None,
        )

    def admin_connection(self, instance_id: str | None = None) -> ConnectionInfo:
        """Like connection(), as the superuser (drills, verification)."""
        info = self.connection(instance_id)
        return ConnectionInfo(
            info.host,
            info.port,
            info.dbname,
            pg.SUPERUSER,
            self.box.password(),
            info.sslmode,
            info.target_session_attrs,
        )

    def processes(self) -> dict[str, Any]:
        """Pids for fault injection: primary and standby postmasters, the standby's walreceiver."""
        state = self._state()
        main = state["instances"][state["main"]]
        primary = state["nodes"][main["primary"]]
        out: dict[str, Any] = {
            "primary": {
                "node": main["primary"],
                "pid": node_pid(primary),
                "port": primary["port"],
                "data": primary["data"],
            }
        }
        if main.get("standby"):
            standby = state["nodes"][main["standby"]]
            alive = node_alive(standby)
            rows = (
                self.box.try_query(standby["port"], "SELECT pid FROM pg_stat_wal_receiver") if alive else None
            )
            out["standby"] = {
                "node": main["standby"],
                "pid": node_pid(standby),
                "port": standby["port"],
                "data": standby["data"],
            }
            out["walreceiver"] = {"pid": rows[0][0] if rows else None}
        return out

    def pause_replication(self, timeout: float = 10) -> None:
        """Cut the standby off (it keeps running but receives no WAL, streamed or archived).

        For drills that need a known asynchronous loss (docs/measured.md): writes acknowledged
        from now on exist only on the primary. Under synchronous replication writes wait.
        A failover or `inv sandbox.up` undoes it (both rewrite the standby's settings).
        """
        import time

        with self.box.statefile.editing() as state:
            main = state["instances"][state["main"]]
            name = main.get("standby")
            if not name or not node_alive(state["nodes"][name]):
                raise NotReady("no running standby to cut off", hint="run `inv sandbox.up`")
            self.box.configure(
                state,
                name,
                extra={
                    "primary_conninfo": f"host={pg.HOST} port=1 user={pg.SUPERUSER} application_name={name}",
                    "restore_command": "false",
                },
            )
            self.box.reload(state, name)
            port = state["nodes"][name]["port"]
        deadline = time.monotonic() + timeout
        while self.box.try_query(port, "SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'"):
            if time.monotonic() > deadline:
                raise OperationFailed(f"standby {name} still streams after {timeout:.0f} s")
            time.sleep(0.02)

    def list_snapshots(self) -> list[Snapshot]:
        state = self._state()
        return [_snapshot(m) for m in all_backups(state)]

    def restorable_window(self, *, fresh: bool = True) -> RestoreWindow:
        from .operations import restore_window

        if not fresh:  # read-only: the window as recorded (inv status changes nothing)
            window = restore_window(self.box.load())
        else:
            with self.box.statefile.editing() as state:
                if not state:
                    raise self.box.not_provisioned()
                self.box.heartbeat(state)  # so "latest" is really recent
                window = restore_window(state)
        if window is None:
            raise _no_base_backup()
        return RestoreWindow(
            window.earliest, window.latest, self.environment.settings.retention_days, window.gap
        )

    def events(self, since: datetime, instance_id: str | None = None) -> list[ProviderEvent]:
        # One event log for every sandbox instance (restored ones included): instance_id filters nothing.
        out = []
        for rec in self.box.events.read():
            at = _time(rec.get("at"))
            if at is not None and at >= since:
                out.append(
                    ProviderEvent(
                        at=at,
                        source=rec.get("source", "sandbox"),
                        message=rec.get("message", ""),
                        code=rec.get("code"),
                    )
                )
        return out

    # -- snapshots ---------------------------------------------------------------
    def plan_snapshot(self, snapshot_id: str, tags: dict[str, str], copy_to_region: str | None) -> Plan:
        if copy_to_region:
            raise Unsupported(
                f"--copy-to-region {copy_to_region}: the sandbox has no regions; copies need an aws environment"
            )
        check_backup_id(snapshot_id)
        state = self._state()
        if find_backup(state, snapshot_id) is not None:
            raise BadInput(f"snapshot id {snapshot_id}: a snapshot with this id exists already")
        main = state["instances"][state["main"]]
        primary = state["nodes"][main["primary"]]
        plan = Plan(f"base backup {snapshot_id} of {state['main']}")
        plan.add(
            Step(
                "sandbox",
                "pg_basebackup",
                {
                    "snapshot_id": snapshot_id,
                    "host": pg.HOST,
                    "port": primary["port"],
                    "checkpoint": "fast",
                    "wal": "stream",
                    "tags": dict(tags),
                },
                why="a plain-format base backup with its own WAL, written under the sandbox's backups folder",
            )
        )
        plan.add(
            Step(
                "sandbox",
                "pg_verifybackup",
                {"snapshot_id": snapshot_id},
                mutating=False,
                why="checks every file against the backup manifest; a bad backup is removed",
            )
        )
        return plan

    def create_snapshot(self, plan: Plan, *, wait: bool = True, progress: Progress = no_progress) -> Snapshot:
        params = plan.steps[0].params
        with self.box.statefile.editing() as state:
            manifest = take_backup(
                self.box,
                state,
                backup_id=params["snapshot_id"],
                kind="manual",
                tags=dict(params.get("tags") or {}),
                progress=progress,
            )
        return _snapshot(manifest)

    def plan_delete_snapshots(self, snapshot_ids: list[str]) -> Plan:
        state = self._state()
        plan = Plan(f"delete {len(snapshot_ids)} base backup(s)")
        for sid in snapshot_ids:
            manifest = find_backup(state, sid)
            if manifest is None:
                raise BadInput(f"snapshot {sid}: no such snapshot")
            if not manifest.get("ours"):
                raise Refused(
                    f"snapshot {sid}: not made by spywatcher-ops ({manifest.get('kind')}); it is never deleted"
                )
            plan.add(
                Step(
                    "sandbox",
                    "delete_base_backup",
                    {"snapshot_id": sid, "path": str(Path(manifest["path"]).parent)},
                )
            )
        return plan

    def delete_snapshots(self, plan: Plan) -> None:
        with self.box.statefile.editing() as state:
            for step in plan.steps:
                delete_backup(state, step.params["snapshot_id"])
                self.box.event("backup-deleted", f"base backup {step.params['snapshot_id']} deleted")

    # -- restore -------------------------------------------------------------------
    def plan_restore(self, new_id: str, *, to_time: datetime | None, snapshot_id: str | None) -> Plan:
        from .operations import choose_backup, restore_window

        state = self._state()
        if new_id in state["instances"]:
            raise BadInput(f"instance {new_id}: exists already; choose another name")
        if to_time is not None and snapshot_id:
            raise BadInput("give a point in time or a snapshot, not both")
        plan = Plan(f"restore {state['main']} into new instance {new_id}")
        if snapshot_id:
            manifest = find_backup(state, snapshot_id)
            if manifest is None:
                known = ", ".join(b["id"] for b in all_backups(state)) or "none"
                raise BadInput(f"snapshot {snapshot_id}: no such snapshot; known: {known}")
            plan.add(
                Step(
                    "sandbox",
                    "restore_base_backup",
                    {
                        "new_id": new_id,
                        "snapshot_id": snapshot_id,
                        "recovery_target": "immediate",
                    },
                    why="a copy of the base backup, started on a new port, consistent at the backup's end",
                )
            )
            return plan
        window = restore_window(state)
        if window is None:
            raise _no_base_backup()
        earliest, latest = window.earliest, window.latest
        main = state["instances"][state["main"]]
        if node_alive(state["nodes"][main["primary"]]) and window.gap is None:
            latest = max(latest, self.box.now())  # the restore archives the newest WAL first
        if to_time is not None and not (earliest <= to_time <= latest):
            gap = f"; WAL segment {window.gap} is missing from the archive" if window.gap else ""
            raise BadInput(
                f"restore time {iso(to_time)}: outside the restorable window {iso(earliest)} .. {iso(latest)}{gap}"
            )
        backup = choose_backup(state, to_time)
        plan.add(
            Step("sandbox", "pg_switch_wal", {"instance": state["main"]}, why="archive the newest WAL first")
        )
        plan.add(
            Step(
                "sandbox",
                "restore_base_backup",
                {
                    "new_id": new_id,
                    "to_time": iso(to_time) if to_time else "latest",
                    "base_backup": backup["id"],
                    "recovery_target_time": to_time.isoformat(timespec="microseconds") if to_time else None,
                },
                why="copy the newest base backup before the target, replay archived WAL to it, promote",
            )
        )
        return plan

    def restore(self, plan: Plan, *, progress: Progress = no_progress, keep_failed: bool = False) -> Instance:
        from .operations import RestoreRequest, restore

        params = next(s.params for s in plan.steps if s.action == "restore_base_backup")
        to_time = _time(params.get("recovery_target_time"))
        req = RestoreRequest(params["new_id"], to_time, params.get("snapshot_id"), keep_failed)
        with self.box.statefile.editing() as state:
            restore(self.box, state, req, progress)
            return self._instance(state, req.new_id)

    def plan_delete_instance(self, instance_id: str, *, final_snapshot: str | None = None) -> Plan:
        state = self._state()
        inst = _known_instance(state, instance_id)
        if instance_id == state["main"]:
            raise Refused(f"instance {instance_id}: it serves the database endpoint; it is never deleted")
        if not inst.get("created_by_us"):
            raise Refused(f"instance {instance_id}: not created by spywatcher-ops; it is never deleted")
        mine = {inst["primary"], inst.get("standby")} - {None}
        shared = [
            other
            for other, o in state["instances"].items()
            if other != instance_id and mine & {o.get("primary"), o.get("standby")}
        ]
        if shared:  # never delete servers another instance (the endpoint's, above all) still uses
            raise Refused(
                f"instance {instance_id}: its servers also belong to {', '.join(shared)}; not deleted",
                hint="run `inv sandbox.status`; repair with `inv sandbox.up`",
            )
        plan = Plan(f"delete instance {instance_id}")
        if final_snapshot:
            plan.notes.append(
                f"no final snapshot: sandbox snapshots are base backups of {state['main']} only; "
                f"the data of {instance_id} is deleted with it"
            )
        for name in (inst["primary"], inst.get("standby")):
            if name:
                node = state["nodes"][name]
                plan.add(
                    Step(
                        "sandbox",
                        "stop_and_remove",
                        {"instance": instance_id, "node": name, "data": node["data"], "port": node["port"]},
                    )
                )
        return plan

    def delete_instance(self, plan: Plan, *, progress: Progress = no_progress) -> None:
        import shutil

        instance_id = plan.steps[0].params["instance"]
        with self.box.statefile.editing() as state:
            phase = "starting"
            try:
                names = [step.params["node"] for step in plan.steps]
                for name in names:
                    phase = f"stopping {name}"
                    progress(phase)
                    state["nodes"][name]["desired"] = "stopped"  # `up`, status and drills leave it alone
                    self.box.stop_node(state, name)
                for (
                    name
                ) in names:  # the nodes stay in the state until every folder is gone: a rerun finds them
                    phase = f"removing the folder of {name}"
                    shutil.rmtree(state["nodes"][name]["data"], ignore_errors=True)
            except BaseException as exc:  # a delete is not undone: save what it did, say what is left
                if instance_id in state["instances"]:
                    state["instances"][instance_id]["status"] = "failed"
                self.box.statefile.save(state)
                what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                running = [
                    f"{n} (pid {node_pid(state['nodes'][n])})"
                    for n in names
                    if n in state["nodes"] and node_alive(state["nodes"][n])
                ]
                servers = (
                    f"not confirmed stopped: {', '.join(running)}" if running else "its server is stopped"
                )
                message = (
                    f"delete of {instance_id} {what} while {phase}"
                    + ("" if isinstance(exc, KeyboardInterrupt) else f": {pg.one_line(str(exc), 1)}")
                    + f"; not rolled back: {servers}, it is marked failed and not fully deleted; run "
                    f"`inv db.delete --env {self.environment.name} --instance {instance_id}` again to finish"
                )
                self.box.event("delete-unfinished", message)
                if isinstance(exc, KeyboardInterrupt):
                    raise DeleteInterrupted(message) from exc
                raise OperationFailed(message) from exc
            for name in names:
                del state["nodes"][name]
            state["instances"].pop(instance_id, None)
            self.box.event("deleted", f"instance {instance_id} deleted")

    # -- swap ----------------------------------------------------------------------
    def plan_swap(self, new_id: str, replaced_as: str) -> Plan:
        state = self._state()
        main_id = state["main"]
        if new_id == main_id or new_id not in state["instances"]:
            others = ", ".join(sorted(i for i in state["instances"] if i != main_id)) or "none"
            raise BadInput(f"instance {new_id}: not a restored or replaced instance; known: {others}")
        if replaced_as in state["instances"]:
            raise BadInput(f"{replaced_as}: an instance with that name exists already")
        main = state["instances"][main_id]
        ports = [state["nodes"][main["primary"]]["port"]]
        if main.get("standby"):
            ports.append(state["nodes"][main["standby"]]["port"])
        plan = pair_plan(
            f"swap {new_id} in as {main_id}; keep the old pair as {replaced_as}",
            (
                "stop_pair",
                {"instance": main_id, "rename_to": replaced_as},
                "the old pair is stopped and kept (data intact) under its new name",
            ),
            (
                "take_endpoint",
                {"instance": new_id, "rename_to": main_id, "ports": ports},
                "the restored server restarts on the endpoint's ports, so clients reconnect to it",
            ),
            ("build_standby", {"instance": main_id, "replication": state["replication"]}, ""),
        )
        # the reverse command is printed once, after the swap (SwapResult.reverse_command)
        plan.notes.append(
            f"the old pair is stopped (pg_ctl -m fast): connections opened before the swap are closed; "
            f"clients reconnect to the same ports and reach {new_id}, now {main_id}"
        )
        return plan

    def reverse_swap_command(self, replaced_as: str) -> str:
        return f"inv db.swap --env {self.environment.name} --instance {replaced_as} --yes"

    def swap(self, plan: Plan, *, progress: Progress = no_progress) -> SwapResult:
        from .operations import swap

        new_id = plan.steps[1].params["instance"]
        replaced_as = plan.steps[0].params["rename_to"]
        with self.box.statefile.editing() as state:
            swap(self.box, state, new_id, replaced_as, progress)
            main = state["main"]
        return SwapResult(
            instance=main, replaced_as=replaced_as, reverse_command=self.reverse_swap_command(replaced_as)
        )

    # -- failover -----------------------------------------------------------------
    def plan_failover(self) -> Plan:
        state = self._state()
        main = state["instances"][state["main"]]
        if not main.get("standby"):
            raise NotReady("the sandbox database has no standby to fail over to", hint="run `inv sandbox.up`")
        primary, standby = state["nodes"][main["primary"]], state["nodes"][main["standby"]]
        if not node_alive(standby):
            raise NotReady(
                f"standby {main['standby']} is not running; a failover now would lose the database",
                hint="run `inv sandbox.up` to repair it",
            )
        return pair_plan(
            f"fail over {state['main']} from {main['primary']} to {main['standby']}",
            (
                "kill",
                {"node": main["primary"], "pid": primary.get("pid"), "signal": "SIGKILL"},
                "the primary stops abruptly, with its children, like losing its availability zone",
            ),
            (
                "pg_ctl_promote",
                {"node": main["standby"], "port": standby["port"]},
                "synchronous_standby_names is cleared on the new primary until a standby streams",
            ),
            ("rebuild_standby", {"node": main["primary"], "method": "pg_rewind, else pg_basebackup"}, ""),
        )

    def failover(self, plan: Plan, *, progress: Progress = no_progress) -> FailoverResult:
        from .operations import failover

        with self.box.statefile.editing() as state:
            outcome = failover(self.box, state, progress)
        events = [
            ProviderEvent(at=at, source="sandbox", message=msg, code=code) for at, code, msg in outcome.events
        ]
        return FailoverResult(
            old_primary=outcome.old_primary,
            new_primary=outcome.new_primary,
            started=outcome.started,
            finished=outcome.promoted_at,
            events=events,
            lost_commits=outcome.lost_commits,
        )
