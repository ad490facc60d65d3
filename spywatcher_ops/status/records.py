"""Lines from records and providers: alarms firing, the last drill, the last maintenance run,
the restorable window."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.thresholds import DRILL_AGE_DAYS
from .model import Line, failed, ok, skipped, warn

if TYPE_CHECKING:
    from ..core.environment import Environment


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _ago(now: datetime, then: datetime) -> str:
    s = (now - then).total_seconds()
    if s < 7200:
        return f"{int(s // 60)} min ago"
    if s < 172800:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} d ago"


def tail_lines(path: Path, max_bytes: int = 1 << 20) -> list[dict[str, Any]]:
    """The JSON lines of the last `max_bytes` of an append-only file (journals grow for ever)."""
    if not path.exists():
        return []
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - max_bytes))
        data = f.read().decode(errors="replace").splitlines()
    if size > max_bytes:
        data = data[1:]  # the first line is cut
    out = []
    for line in data:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def alarms(environment: Environment) -> list[Line]:
    if environment.parts.monitoring() is None:
        return [skipped("alarms", f"no alarm source on the {environment.kind}")]
    from ..oncall.alarms import read_alarms

    if environment.kind != "aws":  # evaluated now from the sandbox's state: say how many were
        evaluated = read_alarms(environment, ["ALARM", "INSUFFICIENT_DATA", "OK"])
        firing = [a for a in evaluated if a.state == "ALARM"]
        unknown = [a.name for a in evaluated if a.state == "INSUFFICIENT_DATA"]
        if not firing:
            text = f"none in ALARM of {len(evaluated)} evaluated now"
            return [
                ok(
                    "alarms",
                    text + (f" ({len(unknown)} without data: {', '.join(unknown)})" if unknown else ""),
                )
            ]
    else:
        firing = read_alarms(environment, ["ALARM"])
    if not firing:
        return [ok("alarms", "none in ALARM")]
    names = ", ".join(sorted(a.name for a in firing)[:5]) + (" ..." if len(firing) > 5 else "")
    return [failed("alarms", f"{len(firing)} in ALARM: {names}", f"inv oncall --env {environment.name}")]


def last_drill(environment: Environment) -> list[Line]:
    """The newest run in the drill history (`<state_dir>/drills/history.jsonl`): one line per scenario
    of that run, so a suite is judged whole."""
    rows = [
        r
        for r in tail_lines(environment.settings.state_dir / "drills" / "history.jsonl")
        if r.get("env") == environment.name and _time(r.get("at"))
    ]
    if not rows:
        return [
            warn("drill", "no drill on record for this environment", f"inv dr.drill --env {environment.name}")
        ]
    rows.sort(key=lambda r: _time(r["at"]))  # type: ignore[arg-type, return-value]
    newest = _time(rows[-1]["at"])
    assert newest is not None
    # a suite's scenarios start within minutes of each other
    run = [r for r in rows if (newest - _time(r["at"])).total_seconds() <= 900]  # type: ignore[operator]
    now = environment.clock.now()
    missed = [r["scenario"] for r in run if r.get("outcome") != "met"]
    scenarios = ", ".join(r["scenario"] for r in run)
    when = f"{newest.strftime('%Y-%m-%d %H:%M')} UTC ({_ago(now, newest)})"
    if missed:
        return [
            failed(
                "drill",
                f"last drill {when}: {', '.join(missed)} missed or failed (of {scenarios})",
                f"runbook drill-failed; inv dr.report {run[-1].get('id', 'latest')}",
            )
        ]
    if (now - newest).total_seconds() > DRILL_AGE_DAYS * 86400:
        return [
            warn(
                "drill",
                f"last drill {when}: all met ({scenarios}), but it is old",
                f"inv dr.drill --env {environment.name}",
            )
        ]
    return [ok("drill", f"last drill {when}: all met ({scenarios})")]


def last_maintenance(environment: Environment) -> list[Line]:
    """The newest maintenance run (`maint.run`) in the journal; plans, notices and pending settings
    change nothing on the platform, so they are not runs."""
    from ..maintenance import runlog

    path = environment.settings.state_dir / "journal" / f"{environment.name}.jsonl"
    records = tail_lines(path, 4 << 20)
    # a run with no end (killed, or running now) is newer news than the last run that ended
    ended = {r.get("op_id") for r in records if r.get("event") == "end"}
    dangling = {
        str((r.get("args") or {}).get("run_id") or r.get("op_id"))
        for r in records
        if r.get("event") == "start" and r.get("op") == "maint.run" and r.get("op_id") not in ended
    }
    # only the runs with an op that never ended are summarised (a long journal has many runs)
    summaries = [runlog.summary(records, run_id) for run_id in sorted(dangling)]
    open_runs = [r for r in summaries if r["state"] == "unfinished" and r["env"] == environment.name]
    if open_runs:
        r = runlog.latest(open_runs)
        at = _time(r.get("last_at"))
        since = f"{at.strftime('%Y-%m-%d %H:%M')} UTC ({_ago(environment.clock.now(), at)})" if at else "?"
        return [
            warn(
                "maintenance",
                f"run {r['run_id']} started {since} has not finished (running now, or stopped: "
                f"{r['why']}); next step {r['next_step']}",
                f"unless it is running: inv maint.run --env {environment.name} --resume {r['run_id']}",
            )
        ]
    ends = [r for r in records if r.get("event") == "end" and r.get("op") == "maint.run"]
    if not ends:
        return [
            warn(
                "maintenance",
                "no maintenance run on record",
                "the Sunday job runs from the scheduler (deploy/)",
            )
        ]
    last = ends[-1]
    at = _time(last.get("at"))
    when = f"{at.strftime('%Y-%m-%d %H:%M')} UTC ({_ago(environment.clock.now(), at)})" if at else "?"
    text = f"last run {last.get('op')} {when}: {last.get('outcome')}"
    run_id = (last.get("result") or {}).get("run_id") or last.get("op_id")
    if last.get("outcome") not in ("ok", "dry-run"):
        resumable = str(run_id) in runlog.run_ops(records) and (
            runlog.summary(records, str(run_id))["state"] == "unfinished"  # interrupted, rolled back
        )
        hint = (
            f"continue it: inv maint.run --env {environment.name} --resume {run_id}"
            if resumable
            else f"inv maint.report {run_id} --env {environment.name} says what was done and what was not"
        )
        return [failed("maintenance", text + (f" ({last.get('error')})" if last.get("error") else ""), hint)]
    return [ok("maintenance", text)]


def window(environment: Environment) -> list[Line]:
    now = environment.clock.now()
    rpo = environment.settings.targets.rpo.get("database", 300.0)
    w = environment.database.restorable_window(fresh=False)  # read-only: status changes nothing
    earliest, latest, retention, gap = w.earliest, w.latest, w.retention_days, w.gap
    text = (
        f"restorable from {earliest.strftime('%Y-%m-%d %H:%M')} to {latest.strftime('%Y-%m-%d %H:%M:%S')} UTC"
        f" (retention {retention} d)"
    )
    if gap:
        return [
            failed(
                "window",
                f"{text}; the WAL archive has a gap at {gap}: restores stop before it",
                "inv db.snapshot takes a new base backup",
            )
        ]
    behind = (now - latest).total_seconds()
    if environment.kind == "aws" and behind > rpo:
        return [
            warn(
                "window",
                f"{text}; latest is {behind:.0f} s behind (RPO target {rpo:.0f} s)",
                "RDS ships WAL every 5 min; longer means archiving is stuck",
            )
        ]
    return [ok("window", text)]
