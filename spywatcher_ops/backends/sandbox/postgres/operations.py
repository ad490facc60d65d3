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

import copy
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ....core.clock import iso
from ....core.errors import BadInput, NotReady, OperationFailed, RolledBack, VerificationFailed
from ....core.ports import Progress
from ..state import node_alive, node_pid
from . import server as pg
from .archive import first_gap, reachable, recovery_end
from .backups import all_backups, backups_of, find_backup
from .provision import PgSandbox, drop_slot, ensure_slot, pick_port, slot_name


# -- restore -----------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    earliest: datetime
    latest: datetime
    gap: str | None  # the first WAL segment missing after the newest base backup


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lineage_archive(state: dict[str, Any], lineage: str | None) -> Path:
    return Path(state["pg_base"]) / "archive" / str(lineage)


def restore_window(state: dict[str, Any]) -> Window | None:
    """The main instance's restorable window, or None without a base backup.

    earliest: the end of the oldest base backup (a backup is consistent only from there);
    latest: the newest heartbeat commit reachable from the newest base backup through the
    archive without a gap (recovery stops silently at the first missing segment).
    """
    main = state["instances"][state["main"]]
    lineage = main.get("lineage")
    backups = backups_of(state, lineage)
    if not backups:
        return None
    archive = lineage_archive(state, lineage)
    gap = first_gap(archive, Path(backups[-1]["path"]))
    marks = [
        h
        for h in state.get("heartbeats", [])
        if h.get("lineage") == lineage and (archive / h["wal"]).exists() and reachable(h, gap)
    ]
    latest = max([_at(h["at"]) for h in marks] + [_at(backups[-1]["end"])])
    return Window(_at(backups[0]["end"]), latest, gap)


def choose_backup(state: dict[str, Any], to_time: datetime | None) -> dict[str, Any]:
    main = state["instances"][state["main"]]
    backups = backups_of(state, main.get("lineage"))
    usable = [b for b in backups if to_time is None or _at(b["end"]) <= to_time]
    if not usable:
        raise BadInput(f"no base backup ends before {iso(to_time)}")
    return usable[-1]


@dataclass
class RestoreRequest:
    new_id: str
    to_time: datetime | None
    snapshot_id: str | None
    keep_failed: bool = False


class RestoreShort(VerificationFailed):
    """Recovery ended before the restore's target (a gap in the WAL archive): exit 1."""


class RestoreInterrupted(RolledBack, KeyboardInterrupt):
    """Ctrl-C during a restore, after its rollback: exit 4 with what was done, and still an
    interrupt for callers (drills) that stop on one."""


class RestoreInterruptedKept(OperationFailed, KeyboardInterrupt):
    """Ctrl-C during a restore with --keep-failed: kept, marked failed (exit 1)."""


def restore(box: PgSandbox, state: dict[str, Any], req: RestoreRequest, progress: Progress) -> str:
    """Build and start the restored server; returns its node name (registered in `state`).

    A restore that fails or is interrupted is rolled back (its server stopped, its folder
    removed) unless `keep_failed`; one whose recovery ends short of its target is kept,
    stopped and marked failed. Either way the message says exactly what was left.
    """
    if req.new_id in state["instances"]:
        raise BadInput(f"instance {req.new_id}: exists already; choose another name")
    heartbeat = None
    if req.snapshot_id:
        backup = find_backup(state, req.snapshot_id)
        if backup is None:
            raise BadInput(f"snapshot {req.snapshot_id}: no such snapshot")
        origin = f"snapshot {req.snapshot_id}"
    else:
        try:  # the progress line too: a Ctrl-C right after it is printed lands here
            progress("archiving the newest WAL")
            heartbeat = box.heartbeat(state)
        except KeyboardInterrupt as exc:  # nothing of the new instance exists yet
            raise RestoreInterrupted(
                f"restore {req.new_id} interrupted while archiving the newest WAL ({str(exc) or 'Ctrl-C'}): "
                "nothing was created; the source is untouched but for its heartbeat row and a WAL switch"
            ) from exc
        backup = choose_backup(state, req.to_time)
        origin = f"point in time {iso(req.to_time) or 'latest'} from base backup {backup['id']}"
    state["instances"][req.new_id] = {
        "primary": None,
        "standby": None,
        "lineage": None,
        "created_by_us": True,
        "created": iso(box.now()),
        "origin": origin,
        "status": "creating",
    }
    name = box.new_node(state, req.new_id, "single")
    state["instances"][req.new_id]["primary"] = name
    node = state["nodes"][name]
    box.statefile.save(state)  # registered before anything is built: an interrupted restore is visible
    phase = ["preparing"]

    def step(label: str) -> None:
        if not label.startswith("recovering"):
            phase[0] = label
        progress(label)

    try:
        _build_restored(box, state, req, backup, name, step)
        phase[0] = "checking where recovery ended"
        outcome = _recovery_outcome(state, req, backup, heartbeat, Path(node["log"]))
        state["instances"][req.new_id]["recovery"] = outcome
        if not outcome["reached"]:
            raise RestoreShort(f"restore {req.new_id} stopped short of its target: {outcome['summary']}")
        box.configure(state, name)  # later restarts are plain starts, without recovery targets
    except BaseException as exc:  # noqa: BLE001 - rolled back (or kept) and re-raised as what happened
        if isinstance(exc, OperationFailed) and not isinstance(exc, RestoreShort):
            short = _short_from_log(state, req, backup, Path(node["log"]))
            if short is not None:  # PostgreSQL stopped itself: the time target lies beyond a gap
                state["instances"][req.new_id]["recovery"] = short
                exc = RestoreShort(f"restore {req.new_id} stopped short of its target: {short['summary']}")
        _give_up(box, state, req, name, exc, phase[0], origin)
    state["instances"][req.new_id]["status"] = "available"
    box.event("restored", f"{req.new_id} ({origin}) on port {node['port']}")
    return name


def _give_up(
    box: PgSandbox,
    state: dict[str, Any],
    req: RestoreRequest,
    name: str,
    exc: BaseException,
    phase: str,
    origin: str,
) -> None:
    """Roll the failed restore back (or keep it, marked failed), save, and raise what happened."""
    node = state["nodes"][name]
    data, log = Path(node["data"]), node["log"]
    short = isinstance(exc, RestoreShort)
    keep = req.keep_failed or short
    interrupted = isinstance(exc, KeyboardInterrupt)
    pid = node_pid(node)
    try:
        box.stop_node(state, name)
    finally:
        server = f"its server (pid {pid}) was stopped" if pid else "no server of it was running"
        if keep:
            state["instances"][req.new_id]["status"] = "failed"
            node["desired"] = "stopped"  # `sandbox.up`, status and drills leave it alone
            left = (
                f"{req.new_id} is kept, stopped and marked failed ({server}; data {data}, log {log}); "
                f"delete it with `inv db.delete --instance {req.new_id}`"
            )
        else:
            shutil.rmtree(data, ignore_errors=True)
            del state["nodes"][name]
            del state["instances"][req.new_id]
            left = (
                f"rolled back: {server} and its folder {data} removed; the source and every other "
                f"instance are untouched (--keep-failed keeps a failed restore for inspection)"
            )
        box.event(
            "restore-failed" if keep else "restore-rolled-back",
            f"{req.new_id} ({origin}): {pg.one_line(str(exc), 1)}; {left}",
        )
        box.statefile.save(state)
    what = "interrupted" if interrupted else "failed"
    reason = pg.one_line(str(exc), 1) if not interrupted else (str(exc) or "Ctrl-C")  # or SIGTERM/SIGHUP
    if short:
        assert isinstance(exc, RestoreShort)
        raise RestoreShort(f"{exc.message}; {left}") from exc
    message = f"restore {req.new_id} {what} while {phase}: {reason}; {left}"
    if interrupted:
        raise (RestoreInterruptedKept(message) if keep else RestoreInterrupted(message)) from exc
    if keep:
        raise OperationFailed(message) from exc
    raise RolledBack(message) from exc


def _recovery_outcome(
    state: dict[str, Any],
    req: RestoreRequest,
    backup: dict[str, Any],
    heartbeat: dict[str, Any] | None,
    log: Path,
) -> dict[str, Any]:
    """Where recovery really ended, against what it was asked for."""
    end = recovery_end(_read(log))
    ended = end["last_commit"]
    out: dict[str, Any] = {"end_lsn": end["end_lsn"], "ended_at": iso(ended), "reached": True}
    if req.snapshot_id:
        out.update(
            target="the snapshot's end", summary=f"consistent at the end of snapshot {req.snapshot_id}"
        )
        return out
    if req.to_time is not None:
        # PostgreSQL itself refuses to finish short of a time target (see _short_from_log)
        out.update(
            target=iso(req.to_time),
            ended_at=iso(end.get("stop_time") or ended),
            summary=f"stopped {end['stopped_by_target'] or 'at the end of the archive'}",
        )
        return out
    out["target"] = f"latest (heartbeat committed at {heartbeat['at']})" if heartbeat else "latest"
    if heartbeat is not None and (ended is None or ended < _at(heartbeat["at"])):
        out["reached"] = False
        out["summary"] = _why(
            state,
            backup,
            end,
            f"the newest commit archived before the restore "
            f"({heartbeat['at']}, in WAL segment {heartbeat['wal']})",
        )
    else:
        out["summary"] = f"replayed to the newest archived commit ({iso(ended)})"
    return out


def _short_from_log(
    state: dict[str, Any], req: RestoreRequest, backup: dict[str, Any], log: Path
) -> dict[str, Any] | None:
    end = recovery_end(_read(log))
    if not end["target_not_reached"]:
        return None
    target = iso(req.to_time) if req.to_time else "latest"
    return {
        "end_lsn": end["end_lsn"],
        "ended_at": iso(end["last_commit"]),
        "reached": False,
        "target": target,
        "summary": _why(state, backup, end, f"the requested time {target}"),
    }


def _why(state: dict[str, Any], backup: dict[str, Any], end: dict[str, Any], target: str) -> str:
    lineage = state["instances"][state["main"]].get("lineage")
    archive = lineage_archive(state, lineage)
    gap = first_gap(archive, Path(backup["path"]))
    where = (
        f"recovery ended at {end['end_lsn'] or '?'} (last replayed commit "
        f"{iso(end['last_commit']) or 'none'}), before {target}"
    )
    why = (
        f"WAL segment {gap} is missing from the archive {archive}"
        if gap
        else "the archive holds no WAL beyond that point"
    )
    return f"{where}: {why}"


def _read(log: Path) -> str:
    try:
        return log.read_text(errors="replace")
    except (FileNotFoundError, PermissionError):
        return ""


def _build_restored(
    box: PgSandbox,
    state: dict[str, Any],
    req: RestoreRequest,
    backup: dict[str, Any],
    name: str,
    progress: Progress,
) -> None:
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
    box.wait_ready(
        node["port"],
        pid,
        Path(node["log"]),
        read_write=True,
        timeout=3600,
        interval=0.01,
        progress=progress,
        data=data,
    )


def finish_interrupted_restores(box: PgSandbox, state: dict[str, Any]) -> list[str]:
    """Restores still "creating" under the state lock were killed (a live one holds the lock):
    finish their rollback (stop the server, remove the folder, drop the instance)."""
    notes = []
    for inst_id, inst in list(state["instances"].items()):
        if inst.get("status") != "creating":
            continue
        for name in (inst.get("primary"), inst.get("standby")):
            if name and name in state["nodes"]:
                data = state["nodes"][name]["data"]
                box.stop_node(state, name)
                shutil.rmtree(data, ignore_errors=True)
                del state["nodes"][name]
        del state["instances"][inst_id]
        note = f"{inst_id}: an interrupted restore (its process is gone); its server was stopped and its folder removed"
        box.event("restore-rolled-back", note)
        notes.append(note)
    return notes


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
    if not node_alive(new_node) or box.in_recovery(new_node["port"]) is not True:
        raise NotReady(f"standby {new} is not running as a standby", hint="run `inv sandbox.up` to repair it")
    events: list[tuple[datetime, str, str]] = []

    def note(at: datetime, code: str, message: str) -> None:
        events.append((at, code, message))
        box.events.add(at, code, message)

    started = box.now()
    killed_at = None
    old_pid = node_pid(old_node)
    if old_pid:
        pg.kill_tree(old_pid, Path(old_node["data"]))
        killed_at = box.now()
        note(killed_at, "fault", f"primary {old} (pid {old_pid}) killed with SIGKILL")
    else:
        note(started, "fault", f"primary {old} was already down")
    stopped = stopped_processes(Path(new_node["data"]))
    if stopped:
        # A drill froze the walreceiver (SIGSTOP, docs/measured.md). Frozen, it would hold the promotion
        # forever; simply resumed, it would deliver the WAL still in its socket. A SIGTERM sent
        # while it is stopped is handled first on SIGCONT: it exits without reading any more.
        for pid in stopped:
            if b"walreceiver" in _cmdline(pid):
                os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
        note(
            box.now(),
            "standby-resumed",
            f"stopped standby process(es) {stopped} resumed; a frozen walreceiver was ended unread (its WAL is lost)",
        )
    user = box.user(state)
    user.pg("pg_ctl", "-D", new_node["data"], "-W", "promote")
    box.wait_ready(
        new_node["port"],
        new_node["pid"],
        Path(new_node["log"]),
        read_write=True,
        timeout=60,
        interval=0.002,
        data=Path(new_node["data"]),
    )
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
        why = (
            "none of them was acknowledged to a client (synchronous replication)"
            if mode == "synchronous"
            else "asynchronous replication: acknowledged writes may be among them"
        )
        note(
            box.now(),
            "data-loss",
            f"{lost} transaction(s) committed on {old} never reached {new} and are lost; {why}",
        )
    try:  # the progress line too: a Ctrl-C right after it is printed lands here
        progress(f"rebuilding {old} as a standby of {new}")
        how = rebuild_standby(box, state, old, progress)
    except BaseException as exc:
        # the promotion stands; save what the rebuild changed (ports, pids), `sandbox.up` finishes it
        note(box.now(), "rebuild-failed", f"{old} was not rebuilt as a standby: {pg.one_line(str(exc), 1)}")
        box.statefile.save(state)
        if isinstance(exc, KeyboardInterrupt):  # a failover is not undone: say it happened
            raise FailoverRebuildInterrupted(
                f"failover done: {new} is the primary and accepts writes (port {new_node['port']}); rebuilding "
                f"{old} as its standby was interrupted ({str(exc) or 'Ctrl-C'}), so the database has no standby "
                "yet; nothing was rolled back; run `inv sandbox.up` to rebuild it"
            ) from exc
        raise
    note(box.now(), "rebuilt", f"{old} rebuilt as a standby of {new} ({how}) and streaming")
    return FailoverOutcome(old, new, killed_at, started, promoted_at, lost, events)


class FailoverRebuildInterrupted(OperationFailed, KeyboardInterrupt):
    """Ctrl-C after the promotion, while the old primary is rebuilt: exit 1 saying the failover
    stands (not 4: nothing is rolled back), and still an interrupt for drills."""


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def stopped_processes(data: Path) -> list[int]:
    """Processes of a server that were stopped (SIGSTOP) by a drill."""
    from ..state import processes_in

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
    lines = [
        ln.split() for ln in histories[-1].read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    if not lines:
        return 0
    parent_tli, fork_lsn = lines[-1][0], lines[-1][1]
    done = user.pg(
        "pg_waldump",
        "-p",
        old_data / "pg_wal",
        "-t",
        parent_tli,
        "-s",
        fork_lsn,
        "-r",
        "Transaction",
        ok_codes=(0, 1),
        timeout=120,
    )
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
        box.query(primary["port"], "CHECKPOINT")
        rewind = user.pg(
            "pg_rewind",
            "--target-pgdata",
            data,
            "--source-server",
            f"host={pg.HOST} port={primary['port']} user={pg.SUPERUSER} dbname=postgres",
            ok_codes=(0, 1),
            timeout=3600,
        )
        if not rewind.ok:
            box.event(
                "rewind-failed",
                f"pg_rewind of {name} failed ({pg.one_line(rewind.stderr)}); using a fresh base backup",
            )
        if rewind.ok:
            ensure_slot(box, primary["port"], slot_name(name))
            try:
                box.start_node(state, name)
                box.after_standby_started(state, state["main"], progress)
                return "pg_rewind"
            except OperationFailed as exc:
                box.event(
                    "rewind-failed",
                    f"{name} did not stream after pg_rewind ({exc}); using a fresh base backup",
                )
                box.stop_node(state, name)
    box.build_standby(state, state["main"], progress, name=name)
    return "fresh base backup"


# -- swap ----------------------------------------------------------------------
class SwapInterrupted(RolledBack, KeyboardInterrupt):
    """Ctrl-C during a swap, after the original was put back: exit 4, and still an interrupt."""


def swap(box: PgSandbox, state: dict[str, Any], new_id: str, replaced_as: str, progress: Progress) -> None:
    """Swap `new_id` in; if anything fails (or Ctrl-C) once it started, the original pair is
    put back by itself (servers, ports, names) and the error says so."""
    main_id = state["main"]
    if new_id == main_id or new_id not in state["instances"]:
        raise BadInput(f"instance {new_id}: not a restored or replaced instance; see `inv db.instances`")
    if replaced_as in state["instances"]:
        raise BadInput(f"--replaced-as {replaced_as}: an instance with that name exists already")
    before = copy.deepcopy(state)
    incoming_ran = node_alive(state["nodes"][state["instances"][new_id]["primary"]])
    phase = ["starting"]

    def step(label: str) -> None:
        phase[0] = label
        progress(label)

    try:
        _swap(box, state, new_id, replaced_as, step)
    except BaseException as exc:  # noqa: BLE001 - the original is put back, then what happened is raised
        reason = (str(exc) or "Ctrl-C") if isinstance(exc, KeyboardInterrupt) else pg.one_line(str(exc), 1)
        try:
            back = _put_back(box, state, before, new_id, incoming_ran, progress)
        except BaseException as again:  # noqa: BLE001 - said, saved and raised as a failure
            box.event(
                "swap-failed",
                f"swap of {new_id} failed ({reason}) and so did putting {main_id} back: "
                f"{pg.one_line(str(again), 1)}",
            )
            box.statefile.save(state)
            raise OperationFailed(
                f"swap of {new_id} failed while {phase[0]}: {reason}; putting {main_id} back failed too: "
                f"{pg.one_line(str(again), 1)}",
                hint="run `inv sandbox.status`, then `inv sandbox.up` to repair",
            ) from exc
        message = f"swap of {new_id} failed while {phase[0]}: {reason}; rolled back: {back}"
        box.event("swap-rolled-back", message)
        box.statefile.save(state)
        if isinstance(exc, KeyboardInterrupt):
            raise SwapInterrupted(message) from exc
        raise RolledBack(message) from exc


def _put_back(
    box: PgSandbox,
    state: dict[str, Any],
    before: dict[str, Any],
    new_id: str,
    incoming_ran: bool,
    progress: Progress,
) -> str:
    """Stop what the swap started, restore the state as it was, start the original pair again."""
    for name, node in list(state["nodes"].items()):
        if name not in before["nodes"]:  # a standby the swap built: ours, new, removed
            box.stop_node(state, name)
            shutil.rmtree(node["data"], ignore_errors=True)
    incoming = before["instances"][new_id]["primary"]
    if incoming in state["nodes"]:
        box.stop_node(state, incoming)  # it may hold the endpoint's port now
    counters = {k: state.get(k) for k in ("next_node", "next_lineage")}
    state.clear()
    state.update(copy.deepcopy(before), **counters)  # names are never reused
    main = state["instances"][state["main"]]
    progress(f"putting {state['main']} back")

    def running(name: str) -> None:  # a server the swap had not stopped yet keeps running
        node = state["nodes"][name]
        node["pid"] = node_pid(node) or box.start_node(state, name)

    running(main["primary"])
    standby = main.get("standby")
    if standby and Path(state["nodes"][standby]["data"], "PG_VERSION").exists():
        running(standby)
        box.after_standby_started(state, state["main"], progress)
    incoming_note = "as it was (stopped)"
    if incoming_ran:
        try:
            running(incoming)
            incoming_note = "as it was (running)"
        except OperationFailed as exc:  # what broke the swap may keep it from starting: it stays stopped
            state["nodes"][incoming].update(pid=None, desired="stopped")  # `up` leaves it alone
            incoming_note = f"stopped: it did not start again ({pg.one_line(str(exc), 1)})"
    ports = "/".join(str(state["nodes"][n]["port"]) for n in (main["primary"], standby) if n)
    return (
        f"{state['main']} serves again from {main['primary']}"
        + (f" and {standby}" if standby else "")
        + f" on port(s) {ports}; {new_id} is {incoming_note}"
    )


def _swap(box: PgSandbox, state: dict[str, Any], new_id: str, replaced_as: str, progress: Progress) -> None:
    main_id = state["main"]
    incoming = state["instances"][new_id]
    old = state["instances"][main_id]
    old_primary, old_standby = state["nodes"][old["primary"]], state["nodes"].get(old["standby"] or "")
    ports = [old_primary["port"], old_standby["port"] if old_standby else None]
    # 1. the old pair stops and is kept under its new name
    progress(f"stopping {main_id}")
    state["instances"][replaced_as] = {
        **old,
        "replaced": iso(box.now()),
    }  # first: a node never names a missing one
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
        "primary": newp,
        "standby": None,
        "lineage": lineage,
        "created_by_us": incoming.get("created_by_us", True),
        "created": incoming.get("created"),
        "origin": f"swapped in from {new_id}: {incoming.get('origin', '')}",
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
        drop_slot(box, ports[0], slot_name(discard))  # (a reverse swap) the primary kept a slot for it
    standby = box.new_node(state, main_id, "standby")
    if ports[1] and ports[1] not in box.taken_ports(state, but=standby):
        state["nodes"][standby]["port"] = ports[1]
    box.build_standby(state, main_id, progress, name=standby)
    if not backups_of(state, lineage):
        from .backups import take_automated_backup

        take_automated_backup(box, state, progress)
    box.heartbeat(state)
    box.event("swapped", f"{new_id} now serves as {main_id}; the old pair is kept, stopped, as {replaced_as}")


def known_backups(state: dict[str, Any]) -> list[dict[str, Any]]:
    return all_backups(state)


def wait_streaming(box: PgSandbox, state: dict[str, Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    main = state["instances"][state["main"]]
    while time.monotonic() < deadline:
        rows = box.try_query(
            state["nodes"][main["primary"]]["port"],
            "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'",
        )
        if rows:
            return
        time.sleep(0.05)
    raise OperationFailed("the standby is not streaming")
