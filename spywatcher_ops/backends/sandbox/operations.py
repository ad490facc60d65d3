"""What the sandbox does when asked to restore, fail over or swap: the same
meaning as RDS, done with the PostgreSQL tools on local processes.

- restore: a new server from the newest base backup before the target, replaying
  archived WAL to `recovery_target_time`, on a new port, registered as a new instance;
- failover: the primary is SIGKILLed with its children (like losing its zone), the
  standby is promoted (`pg_ctl promote -W`), writes lost on the old primary are
  counted from its WAL, and a new standby is rebuilt (pg_rewind, else a fresh base backup);
- swap: a restored instance takes over the primary's port (the stable endpoint),
  gets its own WAL archive, a base backup and a new standby; the old pair is stopped
  and kept under another name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ...core.clock import iso
from ...core.errors import BadInput, NotReady, OperationFailed
from ...core.ports import Progress
from . import postgres as pg
from .backups import all_backups, backups_of, find_backup
from .provision import PgSandbox, drop_slot, ensure_slot, pick_port, slot_name
from .state import node_alive


# -- restore -----------------------------------------------------------------
def restore_window(state: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """(earliest, latest) restorable times of the main instance's lineage, or None.

    earliest: the end of the oldest base backup (a backup is consistent only from there);
    latest: the newest heartbeat commit whose WAL segment is in the archive.
    """
    main = state["instances"][state["main"]]
    lineage = main.get("lineage")
    backups = backups_of(state, lineage)
    if not backups:
        return None
    archive = Path(state["pg_base"]) / "archive" / str(lineage)
    marks = [h for h in state.get("heartbeats", []) if h.get("lineage") == lineage and (archive / h["wal"]).exists()]
    earliest = datetime.fromisoformat(backups[0]["end"].replace("Z", "+00:00"))
    latest = max(
        [datetime.fromisoformat(h["at"].replace("Z", "+00:00")) for h in marks]
        + [datetime.fromisoformat(backups[-1]["end"].replace("Z", "+00:00"))]
    )
    return earliest, latest


def choose_backup(state: dict[str, Any], to_time: datetime | None) -> dict[str, Any]:
    main = state["instances"][state["main"]]
    backups = backups_of(state, main.get("lineage"))
    usable = [b for b in backups if to_time is None or datetime.fromisoformat(b["end"].replace("Z", "+00:00")) <= to_time]
    if not usable:
        raise BadInput(f"no base backup ends before {iso(to_time)}")
    return usable[-1]


@dataclass
class RestoreRequest:
    new_id: str
    to_time: datetime | None
    snapshot_id: str | None


def restore(box: PgSandbox, state: dict[str, Any], req: RestoreRequest, progress: Progress) -> str:
    """Build and start the restored server; returns its node name (registered in `state`)."""
    if req.new_id in state["instances"]:
        raise BadInput(f"instance {req.new_id}: exists already; choose another name")
    if req.snapshot_id:
        backup = find_backup(state, req.snapshot_id)
        if backup is None:
            raise BadInput(f"snapshot {req.snapshot_id}: no such snapshot")
        origin = f"snapshot {req.snapshot_id}"
    else:
        progress("archiving the newest WAL")
        box.heartbeat(state)
        backup = choose_backup(state, req.to_time)
        origin = f"point in time {iso(req.to_time) or 'latest'} from base backup {backup['id']}"
    state["instances"][req.new_id] = {
        "primary": None, "standby": None, "lineage": None, "created_by_us": True,
        "created": iso(box.now()), "origin": origin, "status": "creating",
    }
    name = box.new_node(state, req.new_id, "single")
    state["instances"][req.new_id]["primary"] = name
    node = state["nodes"][name]
    box.statefile.save(state)  # registered before anything is built: an interrupted restore is visible
    try:
        _build_restored(box, state, req, backup, name, progress)
    except BaseException as exc:
        # the caller's state lock saves only on success: record the failure ourselves, or the
        # instance would stay "creating" forever
        state["instances"][req.new_id]["status"] = "failed"
        try:
            box.stop_node(state, name)
        finally:
            box.event("restore-failed", f"{req.new_id} ({origin}): {pg.one_line(str(exc), 1)}")
            box.statefile.save(state)
        if isinstance(exc, OperationFailed):
            raise OperationFailed(f"restore {req.new_id} failed: {exc}",
                                  hint=f"it is kept, marked failed; its server log is {node['log']}") from exc
        raise
    state["instances"][req.new_id]["status"] = "available"
    box.event("restored", f"{req.new_id} ({origin}) on port {node['port']}")
    return name


def _build_restored(box: PgSandbox, state: dict[str, Any], req: RestoreRequest, backup: dict[str, Any],
                    name: str, progress: Progress) -> None:
    user = box.user(state)
    node = state["nodes"][name]
    data = Path(node["data"])
    progress(f"copying base backup {backup['id']}")
    user.run(["cp", "-a", backup["path"], str(data)], timeout=3600)
    (data / "backup_manifest").unlink(missing_ok=True)
    extra: dict[str, Any] = {"recovery_target_action": "promote", "recovery_target_timeline": "latest"}
    if req.snapshot_id:
        # the backup holds the WAL it needs (-X stream): stop as soon as it is consistent
        extra.update(restore_command="false", recovery_target="immediate")
    else:
        lineage = state["instances"][state["main"]]["lineage"]
        extra["restore_command"] = pg.restore_command(Path(state["pg_base"]) / "archive" / lineage)
        if req.to_time is not None:
            extra["recovery_target_time"] = req.to_time.strftime("%Y-%m-%d %H:%M:%S.%f+00")
            extra["recovery_target_inclusive"] = True
    pg.set_signal_file(user, data, "recovery.signal", True)
    progress("replaying WAL")
    pid = box.start_node(state, name, wait=False, extra=extra)
    pg.wait_ready(node["port"], pid, Path(node["log"]), read_write=True, timeout=3600, interval=0.01,
                  progress=progress, data=data)
    box.configure(state, name)  # later restarts are plain starts, without recovery targets


# -- failover ------------------------------------------------------------------
@dataclass
class FailoverOutcome:
    old_primary: str
    new_primary: str
    killed_at: datetime | None
    started: datetime
    promoted_at: datetime
    lost_commits: int
    events: list[tuple[datetime, str, str]]


def failover(box: PgSandbox, state: dict[str, Any], progress: Progress) -> FailoverOutcome:
    main = state["instances"][state["main"]]
    old, new = main["primary"], main["standby"]
    if not new:
        raise NotReady("the sandbox database has no standby to fail over to", hint="run `inv sandbox.up`")
    old_node, new_node = state["nodes"][old], state["nodes"][new]
    if not node_alive(new_node) or pg.in_recovery(new_node["port"]) is not True:
        raise NotReady(f"standby {new} is not running as a standby", hint="run `inv sandbox.up` to repair it")
    events: list[tuple[datetime, str, str]] = []

    def note(at: datetime, code: str, message: str) -> None:
        events.append((at, code, message))
        box.events.add(at, code, message)

    started = box.now()
    killed_at = None
    if node_alive(old_node):
        pg.kill_tree(old_node["pid"], Path(old_node["data"]))
        killed_at = box.now()
        note(killed_at, "fault", f"primary {old} (pid {old_node['pid']}) killed with SIGKILL")
    else:
        note(started, "fault", f"primary {old} was already down")
    stopped = stopped_processes(Path(new_node["data"]))
    if stopped:
        # A drill froze the walreceiver (SIGSTOP, measured.md). Frozen, it would hold the promotion
        # forever; simply resumed, it would deliver the WAL still in its socket. A SIGTERM sent
        # while it is stopped is handled first on SIGCONT: it exits without reading any more.
        for pid in stopped:
            if b"walreceiver" in _cmdline(pid):
                os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
        note(box.now(), "standby-resumed",
             f"stopped standby process(es) {stopped} resumed; a frozen walreceiver was ended unread (its WAL is lost)")
    user = box.user(state)
    user.pg("pg_ctl", "-D", new_node["data"], "-W", "promote")
    pg.wait_ready(new_node["port"], new_node["pid"], Path(new_node["log"]), read_write=True, timeout=60,
                  interval=0.002, data=Path(new_node["data"]))
    promoted_at = box.now()
    note(promoted_at, "promote", f"standby {new} promoted; it accepts writes on port {new_node['port']}")
    # roles in the state first: whatever happens next, the endpoint description is right
    main["primary"], main["standby"] = new, old
    new_node["role"], old_node["role"] = "primary", "standby"
    old_node["pid"] = None
    box.configure(state, new, sync_names="")  # nobody to wait for until the new standby streams
    box.reload(state, new)
    box.statefile.save(state)
    lost = count_lost_commits(user, Path(old_node["data"]), Path(new_node["data"]))
    if lost:
        mode = state["replication"]
        why = ("none of them was acknowledged to a client (synchronous replication)" if mode == "synchronous"
                else "asynchronous replication: acknowledged writes may be among them")
        note(box.now(), "data-loss", f"{lost} transaction(s) committed on {old} never reached {new} and are lost; {why}")
    progress(f"rebuilding {old} as a standby of {new}")
    try:
        how = rebuild_standby(box, state, old, progress)
    except BaseException as exc:
        # the promotion stands; save what the rebuild changed (ports, pids), `sandbox.up` finishes it
        note(box.now(), "rebuild-failed", f"{old} was not rebuilt as a standby: {pg.one_line(str(exc), 1)}")
        box.statefile.save(state)
        raise
    note(box.now(), "rebuilt", f"{old} rebuilt as a standby of {new} ({how}) and streaming")
    return FailoverOutcome(old, new, killed_at, started, promoted_at, lost, events)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def stopped_processes(data: Path) -> list[int]:
    """Processes of a server that were stopped (SIGSTOP) by a drill."""
    from .state import processes_in

    out = []
    for pid in processes_in(str(data.resolve())):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    out.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def count_lost_commits(user: pg.ServerUser, old_data: Path, new_data: Path) -> int:
    """Commits in the old primary's WAL after the point where the new timeline forked off."""
    histories = sorted((new_data / "pg_wal").glob("*.history"))
    if not histories:
        return 0
    lines = [ln.split() for ln in histories[-1].read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        return 0
    parent_tli, fork_lsn = lines[-1][0], lines[-1][1]
    done = user.pg("pg_waldump", "-p", old_data / "pg_wal", "-t", parent_tli, "-s", fork_lsn, "-r", "Transaction",
                   ok_codes=(0, 1), timeout=120)
    return len(re.findall(r"desc: COMMIT", done.stdout))


def rebuild_standby(box: PgSandbox, state: dict[str, Any], name: str, progress: Progress) -> str:
    """Turn a former primary into a standby of the current one: pg_rewind, else a fresh base backup."""
    main = state["instances"][state["main"]]
    primary = state["nodes"][main["primary"]]
    node = state["nodes"][name]
    data = Path(node["data"])
    user = box.user(state)
    if (data / "PG_VERSION").exists():
        pg.clear_stale_pid(data)
        # after a promotion the control file names the new timeline only after a checkpoint;
        # without one pg_rewind sees the same timeline and decides nothing needs rewinding
        pg.query(primary["port"], "CHECKPOINT")
        rewind = user.pg("pg_rewind", "--target-pgdata", data,
                         "--source-server", f"host={pg.HOST} port={primary['port']} user={pg.SUPERUSER} dbname=postgres",
                         ok_codes=(0, 1), timeout=3600)
        if not rewind.ok:
            box.event("rewind-failed", f"pg_rewind of {name} failed ({pg.one_line(rewind.stderr)}); using a fresh base backup")
        if rewind.ok:
            ensure_slot(primary["port"], slot_name(name))
            try:
                box.start_node(state, name)
                box.after_standby_started(state, state["main"], progress)
                return "pg_rewind"
            except OperationFailed as exc:
                box.event("rewind-failed", f"{name} did not stream after pg_rewind ({exc}); using a fresh base backup")
                box.stop_node(state, name)
    box.build_standby(state, state["main"], progress, name=name)
    return "fresh base backup"


# -- swap ----------------------------------------------------------------------
def swap(box: PgSandbox, state: dict[str, Any], new_id: str, replaced_as: str, progress: Progress) -> None:
    main_id = state["main"]
    if new_id == main_id or new_id not in state["instances"]:
        raise BadInput(f"instance {new_id}: not a restored or replaced instance; see `inv db.instances`")
    if replaced_as in state["instances"]:
        raise BadInput(f"--replaced-as {replaced_as}: an instance with that name exists already")
    old_nodes = (state["instances"][main_id]["primary"], state["instances"][main_id].get("standby"))
    old_ports = {name: state["nodes"][name]["port"] for name in old_nodes if name}
    try:
        _swap(box, state, new_id, replaced_as, progress)
    except BaseException as exc:
        # the caller's state lock saves only on success, but what was stopped, moved or started
        # is real: save it, so `sandbox.up` repairs from the truth
        main = state["instances"].get(main_id) or {}
        if (main.get("primary"), main.get("standby")) == old_nodes and replaced_as in state["instances"]:
            # interrupted before the endpoint changed hands: the old pair is still the main
            # instance; a second name for the same servers would let `db.delete` remove them
            del state["instances"][replaced_as]
            for name in old_nodes:
                if name and name in state["nodes"]:  # back as it was: name, endpoint port, running
                    state["nodes"][name].update(instance=main_id, port=old_ports[name], desired="running")
        box.event("swap-failed", f"swap of {new_id} in as {main_id} failed: {pg.one_line(str(exc), 1)}")
        box.statefile.save(state)
        raise


def _swap(box: PgSandbox, state: dict[str, Any], new_id: str, replaced_as: str, progress: Progress) -> None:
    main_id = state["main"]
    incoming = state["instances"][new_id]
    old = state["instances"][main_id]
    old_primary, old_standby = state["nodes"][old["primary"]], state["nodes"].get(old["standby"] or "")
    ports = [old_primary["port"], old_standby["port"] if old_standby else None]
    # 1. the old pair stops and is kept under its new name
    progress(f"stopping {main_id}")
    state["instances"][replaced_as] = {**old, "replaced": iso(box.now())}  # first: a node never names a missing one
    for name in (old["primary"], old["standby"]):
        if name:
            box.stop_node(state, name)
            state["nodes"][name]["desired"] = "stopped"
            state["nodes"][name]["instance"] = replaced_as
    for name in (old["primary"], old["standby"]):
        if name:  # ports stay unique in the state: the endpoint's ports go to the incoming instance
            state["nodes"][name]["port"] = pick_port(box.taken_ports(state) | {p for p in ports if p})
    # 2. the incoming instance takes the endpoint's ports
    newp = incoming["primary"]
    box.stop_node(state, newp)
    discard = incoming.get("standby")
    del state["instances"][new_id]
    lineage = incoming.get("lineage") or box.new_lineage(state)
    state["instances"][main_id] = {
        "primary": newp, "standby": None, "lineage": lineage, "created_by_us": incoming.get("created_by_us", True),
        "created": incoming.get("created"), "origin": f"swapped in from {new_id}: {incoming.get('origin', '')}",
    }
    state["main"] = main_id
    node = state["nodes"][newp]
    node.update(instance=main_id, role="primary", desired="running", port=ports[0], sync_names="")
    progress(f"starting {newp} as the primary on port {ports[0]}")
    box.start_node(state, newp)
    # 3. a new standby on the old standby port, then a base backup of the new lineage
    if discard and discard in state["nodes"]:
        shutil.rmtree(state["nodes"][discard]["data"], ignore_errors=True)
        del state["nodes"][discard]
        drop_slot(ports[0], slot_name(discard))  # (a reverse swap) the primary kept a slot for it
    standby = box.new_node(state, main_id, "standby")
    if ports[1] and ports[1] not in box.taken_ports(state, but=standby):
        state["nodes"][standby]["port"] = ports[1]
    box.build_standby(state, main_id, progress, name=standby)
    if not backups_of(state, lineage):
        from .backups import take_backup

        take_backup(box, state, backup_id=f"auto-{box.now():%Y%m%dT%H%M%S%fZ}", kind="automated", tags={},
                    progress=progress)
    box.heartbeat(state)
    box.event("swapped", f"{new_id} now serves as {main_id}; the old pair is kept, stopped, as {replaced_as}")


def known_backups(state: dict[str, Any]) -> list[dict[str, Any]]:
    return all_backups(state)


def wait_streaming(box: PgSandbox, state: dict[str, Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    main = state["instances"][state["main"]]
    while time.monotonic() < deadline:
        rows = pg.try_query(state["nodes"][main["primary"]]["port"],
                            "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")
        if rows:
            return
        time.sleep(0.05)
    raise OperationFailed("the standby is not streaming")
