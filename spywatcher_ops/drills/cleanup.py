"""Clean up after drills that died halfway (SIGKILL, power loss).

A drill journals everything it must undo as an `undo` step (ctx.undo) and an
`undone` step once its rollback undid it. Entries still pending afterwards
(the drill was killed, or its rollback failed) are undone here, newest first,
under the environment's lock; a `cleaned` record lists each attempt, and a
failed one is tried again by the next run.
Handlers are registered per kind; another module can add its own with
`@undo_handler("uncordon")`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.journal import read, unfinished
from ..core.ports import Processes

if TYPE_CHECKING:
    from ..core.environment import Environment

UndoHandler = Callable[["Environment", dict[str, Any]], str]
PROBE_OWNED = ("drill-rows", "cache-key")  # removed by the probes' own cleanup when a drill ends
_HANDLERS: dict[str, UndoHandler] = {}


def undo_handler(kind: str) -> Callable[[UndoHandler], UndoHandler]:
    def register(fn: UndoHandler) -> UndoHandler:
        _HANDLERS[kind] = fn
        return fn

    return register


@undo_handler("sigcont")
def _sigcont(env: Environment, data: dict[str, Any]) -> str:
    """Continue processes a drill stopped with SIGSTOP (if they are still the same processes)."""
    stopped = Processes.from_record("stopped by a drill", data.get("pids", []))
    resumed, gone = env.faults.thaw(stopped)
    return f"SIGCONT sent to {len(resumed)} process(es)" + (f"; {len(gone)} already gone" if gone else "")


@undo_handler("delete-instance")
def _delete_instance(env: Environment, data: dict[str, Any]) -> str:
    """Remove an instance a restore drill created (only one the toolkit created)."""
    from ..core.errors import OpsError

    db = env.database
    instance_id = str(data["instance"])
    try:
        inst = db.describe(instance_id)
    except OpsError:
        return f"instance {instance_id} is already gone"
    if not inst.created_by_us:
        return f"instance {instance_id} was not created by the toolkit: left alone"
    db.delete_instance(db.plan_delete_instance(instance_id), progress=lambda _s: None)
    return f"deleted instance {instance_id}"


@undo_handler("drill-rows")
def _drill_rows(env: Environment, data: dict[str, Any]) -> str:
    from .probes import DRILL_TABLE, Cadence, pg_connect

    with pg_connect(env.database.connection(), Cadence()) as conn:
        conn.execute(f"DELETE FROM {DRILL_TABLE} WHERE run_id = %s", (data["run_id"],))
    return f"removed the drill rows of {data['run_id']}"


@undo_handler("cache-key")
def _cache_key(env: Environment, data: dict[str, Any]) -> str:
    from .probes import Cadence, RedisTarget

    client = RedisTarget(env.cache.endpoint(), Cadence()).connect()
    try:
        client.delete(data["key"])
    finally:
        client.close()
    return f"removed cache key {data['key']}"


def leftovers(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(start record, pending undo entries) per drill that left something behind, oldest first. Pure.

    Pending: journalled as `undo`, neither `undone` by the drill's own rollback nor
    undone by a later cleanup. That covers drills that were killed (no `end`) and
    drills whose rollback failed (an `end`, but entries still pending): both are
    retried until an undo succeeds. A killed drill with nothing pending is listed
    once, so a `cleaned` record closes it.
    """
    done: set[Any] = set()
    cleaned_ops: set[Any] = set()
    for r in records:
        if r.get("event") == "step" and r.get("step") == "undone":
            done.add(r.get("undo_id"))
        elif r.get("event") == "cleaned":
            cleaned_ops.add(r.get("op_id"))
            actions = r.get("actions") or []
            if actions and not any("undo_id" in a for a in actions):
                done.add(("op", r.get("op_id")))  # written before undo ids were recorded: all handled
            done |= {a.get("undo_id") for a in actions if a.get("status") == "ok"}
    killed = {r["op_id"] for r in unfinished(records)}
    ended = {r.get("op_id") for r in records if r.get("event") == "end"}
    # ...unless the drill said its probe cleanup failed: then those entries are real leftovers
    ended -= {
        r.get("op_id") for r in records if r.get("step") == "probe-cleanup" and r.get("status") == "failed"
    }
    out = []
    for start in (r for r in records if r.get("event") == "start" and str(r.get("op", "")).startswith("dr.")):
        op_id = start["op_id"]
        if ("op", op_id) in done:
            continue
        pending = [
            r["undo"]
            for r in records
            if r.get("op_id") == op_id
            and r.get("event") == "step"
            and r.get("step") == "undo"
            and r["undo"]["id"] not in done
            # a drill that ended ran its probes' cleanup (older journals never marked it);
            # a few leftover drill rows or a cache key are not worth a cleanup on every run
            and not (op_id in ended and r["undo"].get("kind") in PROBE_OWNED)
        ]
        if pending or op_id in killed:
            out.append((start, pending))
    return out


def clean_up(env: Environment) -> list[dict[str, Any]]:
    """Undo what earlier drills left behind; returns what was done, per drill.

    Only while holding the environment's lock: a drill that is still running holds
    it, and its undo entries are pending because it has not rolled back YET. When
    another operation holds the lock, nothing is touched (the caller's preflight
    then says who holds it).
    """
    from ..core.errors import Locked

    journal = env.journal
    try:
        with env.parts.lock().hold(journal.who.get("os_user", "?"), "dr.cleanup"):
            return _clean_up(env)
    except Locked:
        return []


def _clean_up(env: Environment) -> list[dict[str, Any]]:
    journal = env.journal
    results = []
    for start, pending in leftovers(read(journal.path)):
        actions = []
        for entry in reversed(pending):
            kind = entry.get("kind", "")
            handler = _HANDLERS.get(kind)
            if handler is None:
                actions.append(
                    {
                        "kind": kind,
                        "undo_id": entry["id"],
                        "status": "failed",
                        "detail": "no handler for this kind",
                    }
                )
                continue
            try:
                actions.append(
                    {"kind": kind, "undo_id": entry["id"], "status": "ok", "detail": handler(env, entry)}
                )
            except Exception as exc:  # noqa: BLE001 - recorded and retried next time; the others still run
                actions.append(
                    {
                        "kind": kind,
                        "undo_id": entry["id"],
                        "status": "failed",
                        "detail": f"{type(exc).__name__}: {exc}",
                    }
                )
        journal.write(
            {
                "event": "cleaned",
                "op_id": start["op_id"],
                "op": start.get("op"),
                "env": env.name,
                "actions": actions,
            }
        )
        results.append({"op_id": start["op_id"], "started": start.get("at"), "actions": actions})
    return results
