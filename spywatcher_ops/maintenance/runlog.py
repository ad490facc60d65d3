"""Reading maintenance runs back from the journal (reports, --resume, pre-checks).

A run has an id (the op id of its first `maint.run` operation); a `--resume`
is another `maint.run` operation with the same `run_id` argument. Each step
writes a `maint-step` record when it starts and one with its final status.
"""

from __future__ import annotations

from typing import Any

DONE = ("ok", "failed", "rolled-back", "skipped")  # a resume does not run these again


def run_ops(records: list[dict[str, Any]], env: str | None = None) -> dict[str, list[str]]:
    """run_id -> the op ids of its operations, oldest first."""
    out: dict[str, list[str]] = {}
    for r in records:
        if r.get("event") == "start" and r.get("op") == "maint.run" and (env is None or r.get("env") == env):
            run_id = (r.get("args") or {}).get("run_id") or r["op_id"]
            out.setdefault(str(run_id), []).append(r["op_id"])
    return out


def records_of(records: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    ops = set(run_ops(records).get(run_id, []))
    return [r for r in records if r.get("op_id") in ops]


def step_states(recs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """index -> the latest record of that step (a started-only one means it was cut short)."""
    out: dict[int, dict[str, Any]] = {}
    for r in recs:
        if r.get("event") == "step" and r.get("step") == "maint-step":
            idx = int(r["index"])
            if r.get("status") == "not-started" and out.get(idx, {}).get("status") in DONE:
                continue
            out[idx] = r
    return out


def summary(records: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    recs = records_of(records, run_id)
    starts = [r for r in recs if r.get("event") == "start"]
    ends = {r["op_id"]: r for r in recs if r.get("event") == "end"}
    last = starts[-1]
    end = ends.get(last["op_id"])
    states = step_states(recs)
    planned = (last.get("args") or {}).get("steps") or []
    next_step = None
    for i, name in enumerate(planned, 1):
        if states.get(i, {}).get("status") not in DONE:
            next_step = f"{i}. {name}"
            break
    result = (end or {}).get("result") or {}
    if end is None:
        state, why = "unfinished", "the toolkit was killed (no end in the journal)"
    elif end.get("outcome") == "crashed":
        state, why = "unfinished", f"the toolkit crashed: {end.get('error')}"
    elif result.get("state") == "interrupted" or end.get("outcome") == "interrupted":
        state, why = "unfinished", "interrupted (Ctrl-C or SIGTERM)"
    else:
        state, why = "finished", str(result.get("state") or end.get("outcome"))
    if state == "unfinished" and next_step is None:
        state = "finished"
    return {
        "run_id": run_id,
        "env": last.get("env"),
        "plan": (last.get("args") or {}).get("plan"),
        "started_at": starts[0].get("at"),
        "last_at": last.get("at"),  # a --resume is newer than the runs started before it
        "state": state,
        "why": why,
        "next_step": next_step,
        "ops": [s["op_id"] for s in starts],
    }


def runs(records: list[dict[str, Any]], env: str | None = None) -> list[dict[str, Any]]:
    return [summary(records, run_id) for run_id in run_ops(records, env)]


def latest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run worked on last: a run resumed after a newer one was refused is the latest."""
    return max(runs, key=lambda r: str(r.get("last_at") or r.get("started_at") or ""))


def notice_published(records: list[dict[str, Any]], env: str, window_key: str) -> str | None:
    """When the notice for that window went out (ISO), or None."""
    ok_ops = {
        r["op_id"]
        for r in records
        if r.get("event") == "end" and r.get("op") == "maint.notice" and r.get("outcome") == "ok"
    }
    found = [
        r
        for r in records
        if r.get("event") == "step"
        and r.get("step") == "notice-published"
        and r.get("env") == env
        and r.get("window") == window_key
        and r.get("op_id") in ok_ops
    ]
    return found[0].get("at") if found else None
