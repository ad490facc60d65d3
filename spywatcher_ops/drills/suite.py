"""A suite of drills on one environment: clean up after killed drills, preflight
every scenario before injecting anything, run them one by one, write the
reports and the history, publish on AWS. Returns data; tasks.py renders it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import process
from ..core.errors import NotReady, OpsError, RolledBack, TargetMissed
from ..core.journal import Records, read
from ..core.plan import Plan
from ..core.ports import Progress, no_progress
from ..core.status import Status
from .cleanup import clean_up
from .preflight import preflight
from .reporting import history, report
from .runner import DrillRun, run_scenario, target_key, targets_for
from .scenario import Check, DrillOptions, Scenario

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass
class Preflighted:
    scenario: Scenario
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass
class ScoreRow:
    scenario: str
    outcome: str
    rto_s: float | None
    rto_target_s: float | None
    rto_verdict: str
    rpo_s: float | None
    rpo_target_s: float | None
    rpo_verdict: str
    lost_writes: int | None
    summary: str
    report: str | None
    report_id: str
    rto_target_key: str | None = None  # which ops.targets key judged each figure
    rpo_target_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class SuiteResult:
    env: str
    rows: list[ScoreRow] = field(default_factory=list)
    cleaned: list[dict[str, Any]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    error: OpsError | None = None
    run_id: str | None = None  # the run's journal operation: `inv dr.report RUN_ID`
    index: dict[str, str] = field(default_factory=dict)  # the run index files (json, markdown, html)

    def exit_error(self) -> OpsError | None:
        """The error the CLI exits with: aborted (4) > not ready (3) > target missed (1)."""
        if self.error is not None:
            return self.error
        missed = [r for r in self.rows if r.outcome in ("missed", "failed")]
        if missed:
            return TargetMissed(
                "target missed: " + "; ".join(f"{r.scenario} ({_what_missed(r)})" for r in missed)
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        err = self.exit_error()
        return {
            "env": self.env,
            "run_id": self.run_id,
            "index": self.index,
            "scorecard": [r.to_dict() for r in self.rows],
            "cleaned_up": self.cleaned,
            "published": self.published,
            "exit_code": err.exit_code if err else 0,
            "error": str(err) if err else None,
        }


def _what_missed(r: ScoreRow) -> str:
    parts = []
    if r.rto_verdict == "missed":
        parts.append("RTO")
    if r.rpo_verdict == "missed":
        parts.append("RPO")
    return " and ".join(parts) or r.outcome


def preflight_all(env: Environment, scenarios: list[Scenario], options: DrillOptions) -> list[Preflighted]:
    return [Preflighted(s, preflight(env, s, options)) for s in scenarios]


def suite_plan(env: Environment, scenarios: list[Scenario], options: DrillOptions) -> Plan:
    plan = Plan(f"{len(scenarios)} drill(s) on {env.name}: " + ", ".join(s.name for s in scenarios))
    for s in scenarios:
        sub = s.plan(env, options)
        plan.steps += sub.steps
        plan.notes += sub.notes
    plan.notes.append("every drill rolls back and re-checks the steady state, also when interrupted")
    return plan


def run_suite(
    env: Environment,
    checked: list[Preflighted],
    options: DrillOptions,
    *,
    report_dir: Path,
    progress: Progress = no_progress,
    publish: bool = True,
) -> SuiteResult:
    """Run the scenarios (all preflights passed) and write their reports. `progress` may be a
    Status (core/status.py): it then shows scenario k of n, its phase and its probes.

    The run is journalled from its start (its drills name it: `in_run`) and its index is
    written at the start and after every drill, so a run killed mid-way still has an index
    and `inv dr.report latest` shows it as interrupted (runindex.py)."""
    from .reporting import runindex

    result = SuiteResult(env.name)
    status = progress if isinstance(progress, Status) else Status(f"drills on {env.name}")
    if status is not progress and progress is not no_progress:
        status.listen(progress)
    started = _now_iso()
    names = [item.scenario.name for item in checked]
    reps: list[dict[str, Any]] = []
    missing: list[str] = []
    pid = os.getpid()
    # the pid and its start time: a later process that got the same pid is not this run
    args = {
        "started_at": started,
        "scenarios": names,
        "report_dir": str(report_dir),
        "pid": pid,
        "pid_started": process.start_time(pid),
    }
    with env.operation(runindex.RUN_OP, args, mutating=False) as op:
        result.run_id = op.id

        def index(state: str, ended: bool) -> None:
            built = runindex.build(
                {
                    "id": op.id,
                    "env": env.name,
                    "started_at": started,
                    "ended_at": _now_iso() if ended else None,
                },
                reps,
                missing=missing,
                state=state,
                pending=names[len(result.rows) :],
            )
            result.index = runindex.write(built, report_dir)
            op.result = {
                "outcome": built["outcome"],
                "state": state,
                "drills": {r["id"]: r["outcome"] for r in reps},
            }

        state = "stopped"  # a crash stops the run too
        index("running", ended=False)
        try:
            for k, item in enumerate(checked, 1):
                status.item(item.scenario.name, k, len(checked))
                run = run_scenario(
                    env, item.scenario, options, preflight=item.checks, status=status, in_run=op.id
                )
                row, rep = _finish(env, run, item.scenario, report_dir)
                status.result(_verdict_phase(row))
                result.rows.append(row)
                if rep is not None:
                    reps.append(rep)
                else:
                    missing.append(item.scenario.name)
                op.step("drill", "ok", scenario=item.scenario.name, id=run.op_id, outcome=run.outcome)
                if publish and env.kind == "aws" and rep is not None:
                    result.published.append(_publish(env, rep))
                if run.interrupted or (run.outcome in ("aborted", "not-ready") and run.error is not None):
                    result.error = run.error  # stop the suite: something is wrong with the environment
                    state = "interrupted" if run.signalled else "stopped"
                    break
                if k < len(checked):
                    index("running", ended=False)
            else:
                state = "finished"
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM/SIGHUP (signals.Terminated) between two drills
            state = "interrupted"
            raise
        finally:  # the index says how far the run got, however it ends
            index(state, ended=True)
    return result


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _verdict_phase(row: ScoreRow) -> str:
    """The last phase of a scenario on the status line: its outcome and figures."""
    figures = [f"RTO {report.fmt_seconds(row.rto_s)}"] if row.rto_s is not None else []
    if row.rpo_s is not None:
        figures.append(f"RPO {report.fmt_seconds(row.rpo_s)}")
    return " ".join([row.outcome.upper(), *figures])


def _finish(
    env: Environment, run: DrillRun, scenario: Scenario, report_dir: Path
) -> tuple[ScoreRow, dict[str, Any] | None]:
    rep = None
    paths: dict[str, str] = {}
    lost = None
    if run.records:
        try:
            rep = report.build(run.records)
        except ValueError as exc:  # the journal lost the drill's start (deleted or cut while it ran)
            lost = (
                f"{run.outcome}; no report: {exc} ({env.journal.path} was deleted or cut short while it ran)"
            )
    elif run.op_id:
        lost = f"{run.outcome}; no report: {env.journal.path} lost this drill's records while it ran"
    if rep is not None:
        paths = report.write(rep, report_dir)
        history.append(history.history_path(env.settings.state_dir), history.entry(rep))
    rto_t, rpo_t = targets_for(env, scenario)
    m = run.measured
    row = ScoreRow(
        scenario=scenario.name,
        outcome=run.outcome,
        rto_s=m.rto_s if m else None,
        rto_target_s=rto_t,
        rto_verdict=rep["rto"]["verdict"] if rep else "n/a",
        rpo_s=m.rpo_s if m else None,
        rpo_target_s=rpo_t if scenario.rpo_key else None,
        rpo_verdict=rep["rpo"]["verdict"] if rep else "n/a",
        lost_writes=m.lost_writes if m else None,
        summary=rep["summary"] if rep else (str(run.error) if run.error else (lost or run.outcome)),
        report=paths.get("html"),
        report_id=run.op_id,
        rto_target_key=target_key(env.settings.targets.rto, scenario.rto_key),
        rpo_target_key=target_key(env.settings.targets.rpo, scenario.rpo_key) if scenario.rpo_key else None,
    )
    return row, rep


def _publish(env: Environment, rep: dict[str, Any]) -> dict[str, Any]:
    from .aws import publish

    try:
        return {"id": rep["id"], "status": "ok", **publish(env, rep)}
    except Exception as exc:  # noqa: BLE001 - the drill result stands; publishing is reported as failed
        return {"id": rep["id"], "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def cleanup_leftovers(env: Environment) -> list[dict[str, Any]]:
    return clean_up(env)


def pending_leftovers(env: Environment) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """What cleanup_leftovers would undo (read-only, for --dry-run)."""
    from .cleanup import leftovers

    return leftovers(read(env.journal.path))


def not_ready(checked: list[Preflighted]) -> NotReady | None:
    failed = [(p.scenario.name, c) for p in checked for c in p.checks if not c.ok]
    if not failed:
        return None
    name, first = failed[0]
    more = f" (and {len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
    return NotReady(
        f"preflight failed, nothing was injected: {name}: {first.name}: {first.detail}{more}", hint=first.hint
    )


# reports and history from the journal ------------------------------------------

MIN_PREFIX = 4


def _operations(
    state_dir: Path, damage: list[str] | None
) -> tuple[list[tuple[str, Path, dict[str, Any]]], dict[Path, Records]]:
    """Every drill and run start record in every environment's journal, with the journals read."""
    from .reporting.runindex import RUN_OP

    starts: list[tuple[str, Path, dict[str, Any]]] = []
    cache: dict[Path, Records] = {}
    for path in sorted((state_dir / "journal").glob("*.jsonl")):
        cache[path] = read(path)
        said = cache[path].damage(path)
        if said and damage is not None:
            damage.append(said)
        for r in cache[path]:
            if r.get("event") == "start" and r.get("op") in ("dr.drill", RUN_OP):
                starts.append((str(r.get("at")), path, r))
    return starts, cache


def _label(start: dict[str, Any]) -> str:
    args = start.get("args") or {}
    what = (
        f"run of {len(args.get('scenarios') or args.get('drills') or [])} drill(s)"
        if start.get("op") != "dr.drill"
        else f"drill {args.get('scenario', '?')}"
    )
    return f"{start['op_id']} ({what} on {start.get('env')}, {start.get('at')})"


def resolve(
    state_dir: Path, wanted: str, damage: list[str] | None = None
) -> tuple[dict[str, Any], dict[Path, Records], Path]:
    """The start record of `wanted`: 'latest' (the newest run; the newest drill when no run is
    journalled), or a unique prefix (4+ characters) of a drill's or a run's id."""
    from ..core.errors import BadInput

    starts, cache = _operations(state_dir, damage)
    if not starts:
        raise BadInput(f"no drill in the journals under {state_dir / 'journal'}; run inv dr.drill first")
    if wanted == "latest":
        runs = [s for s in starts if s[2].get("op") != "dr.drill"]
        _at, path, start = max(runs or starts, key=lambda s: s[0])
        return start, cache, path
    if len(wanted) < MIN_PREFIX:
        raise BadInput(
            f"id {wanted}: too short; give at least {MIN_PREFIX} characters of a drill or run id, or 'latest'"
        )
    match = [s for s in starts if str(s[2]["op_id"]).startswith(wanted)]
    if not match:
        recent = ", ".join(_label(s[2]) for s in sorted(starts, key=lambda s: s[0])[-5:])
        raise BadInput(f"id {wanted}: no such drill or run; recent: {recent}; or 'latest'")
    if len({s[2]["op_id"] for s in match}) > 1:
        raise BadInput(
            f"id {wanted}: matches {len(match)} ids, give more characters: "
            + "; ".join(_label(s[2]) for s in sorted(match, key=lambda s: s[0]))
        )
    _at, path, start = match[0]
    return start, cache, path


def find_drill(state_dir: Path, wanted: str, damage: list[str] | None = None) -> list[dict[str, Any]]:
    """The journal records of drill `wanted` (an id or a unique prefix, or 'latest': the newest
    drill), from any environment's journal. Lines that are not records are skipped; `damage`
    gets a line about each journal that had some."""
    from ..core.errors import BadInput

    if wanted == "latest":
        starts, cache = _operations(state_dir, damage)
        drills = [s for s in starts if s[2].get("op") == "dr.drill"]
        if not drills:
            raise BadInput(f"no drill in the journals under {state_dir / 'journal'}; run inv dr.drill first")
        _at, path, start = max(drills, key=lambda s: s[0])
    else:
        start, cache, path = resolve(state_dir, wanted, damage)
        if start.get("op") != "dr.drill":
            raise BadInput(f"id {wanted}: a run, not a drill; inv dr.report {wanted} renders its index")
    return [r for r in cache[path] if r.get("op_id") == start["op_id"]]


def rerender(state_dir: Path, wanted: str, report_dir: Path) -> dict[str, Any]:
    """Rebuild a drill's reports, or a run's index and its drills' reports, from the journal.
    A report on disk that says more than the journal now does (a torn or lost record) is kept,
    not overwritten: the result then is that report, with `kept` saying why, and `warnings`
    naming the damaged journal lines. A run's result is its index (kind 'drill-run')."""
    damage: list[str] = []
    start, cache, path = resolve(state_dir, wanted, damage)
    if start.get("op") == "dr.drill":
        rep = _rerender_drill([r for r in cache[path] if r.get("op_id") == start["op_id"]], report_dir)
        rep["warnings"] = damage
        return rep
    from .reporting import runindex

    records = cache[path]
    args = start.get("args") or {}
    run_id = start["op_id"]
    end = next((r for r in records if r.get("op_id") == run_id and r.get("event") == "end"), None)
    reps, missing = [], list(args.get("missing") or [])
    if "drills" in args:  # journalled at the end of the run (before runs were journalled from their start)
        drill_ids, pending, state = list(args["drills"]), [], "finished"
    else:
        drill_ids = [
            str(r["op_id"])
            for r in records
            if r.get("event") == "start"
            and r.get("op") == "dr.drill"
            and (r.get("args") or {}).get("in_run") == run_id
        ]
        started_names = [
            str((r.get("args") or {}).get("scenario"))
            for r in records
            if r.get("op_id") in drill_ids and r.get("event") == "start"
        ]
        done = [r for r in records if r.get("op_id") == run_id and r.get("step") == "drill"]
        missing += [
            str(r.get("scenario")) for r in done if not r.get("id")
        ]  # never got as far as its journal
        ran = len(started_names) + sum(1 for r in done if not r.get("id"))
        pending = list(args.get("scenarios") or [])[ran:]  # a suite runs its drills in order
        if end is not None:
            state = str((end.get("result") or {}).get("state") or "finished")
        else:  # no end: still running, or killed (SIGKILL, a crash, the machine)
            alive = process.same_process(args.get("pid"), args.get("pid_started"))
            state = "running" if alive else "interrupted"
    kept: list[str] = []
    for drill_id in drill_ids:
        drill_records = [r for r in records if r.get("op_id") == drill_id]
        try:
            rep = _rerender_drill(drill_records, report_dir)
        except ValueError:
            missing.append(drill_id)
            continue
        reps.append(rep)
        if rep.get("kept"):
            kept.append(f"{drill_id}: {rep['kept']}")
    index = runindex.build(
        {
            "id": run_id,
            "env": start.get("env"),
            "started_at": args.get("started_at"),
            "ended_at": end.get("at") if end else None,
        },
        reps,
        missing=missing,
        state=state,
        pending=pending,
    )
    why = runindex.worse_than_on_disk(index, report_dir)
    if why is not None:
        index = json.loads(runindex.paths(index, report_dir)["json"].read_text())
        kept.append(f"kept the run index on disk, not re-rendered: {why}")
    else:
        runindex.write(index, report_dir)
    index["warnings"] = damage + kept
    return index


def _rerender_drill(records: list[dict[str, Any]], report_dir: Path) -> dict[str, Any]:
    rep = report.build(records)
    worse = report.worse_than_on_disk(rep, report_dir)
    if worse is not None:
        rep, why = worse
        rep["kept"] = f"kept the report on disk, not re-rendered: {why}"
    else:
        report.write(rep, report_dir)
    return rep


__all__ = ["RolledBack", "SuiteResult", "preflight_all", "run_suite", "suite_plan"]
