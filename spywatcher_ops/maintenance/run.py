"""The maintenance run: what the scheduler starts in the window.

    guards (window, notice, --emergency) -> lock -> pre-checks -> a fresh
    pre-maintenance snapshot -> probes start -> each step in turn:
    fits before the cutoff? -> pre-check -> action (waits) -> post-check,
    rollback when it fails -> journal -> probes stop -> report.

Every step is journalled when it starts and when it ends, so `--resume ID`
continues from the first step that did not finish. SIGTERM and Ctrl-C roll
the current step back (or let it finish when it is past its point of no
return), mark the rest "not started", and stop with exit 4; exit 1 when the
rollback could not restore everything (a 'partial' rollback: os-patch's
installed packages) or did not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.errors import BadInput, NotReady, OpsError, Refused
from ..core.journal import read as read_journal
from ..core.ports import Progress, no_progress
from ..drills.reporting.report import fmt_seconds
from . import gates, history, runlog
from .budget import fits
from .context import Setup
from .impact import impairment, lost_writes, sentence
from .steps import STEPS, Check, NotRestored, StepContext
from .window import Window, current_or_next, next_after

if TYPE_CHECKING:
    from ..core.environment import Environment

SNAPSHOT_LABEL = "pre-maintenance"
PROBE_RUN_PREFIX = "maint-"


def started_line(index: int, name: str, expected_s: float, basis: str) -> str:
    """The log's line at a step's start; durations as the plan shows them (fmt_seconds)."""
    return f"step {index}. {name} started (expected {fmt_seconds(expected_s)}, {basis})"


def cutoff_detail(expected_s: float, basis: str, cutoff: str | None) -> str:
    return f"expected {fmt_seconds(expected_s)} ({basis}) would cross the cutoff {cutoff}"


@dataclass
class RunOptions:
    plan: str | None = None
    yes: bool = False
    resume: str | None = None
    emergency: bool = False
    reason: str | None = None
    snapshot: bool = True  # tests of the engine alone may skip it; the CLI always takes one


@dataclass
class RunOutcome:
    run_id: str
    state: str  # complete | failed | cutoff | interrupted | not-ready
    steps: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"complete": 0, "failed": 1, "cutoff": 1, "interrupted": 4, "not-ready": 3}.get(self.state, 1)


# guards ------------------------------------------------------------------------


def check_guards(
    env: Environment, setup: Setup, window: Window, options: RunOptions, records: list[dict[str, Any]]
) -> list[str]:
    """Refuse outside the window or without the notice, unless an emergency with a reason.
    Returns what an emergency overrode (journalled and shown on the report)."""
    if options.reason is not None and not options.emergency:
        raise BadInput("--reason goes with --emergency; without it the run needs its window and notice")
    if options.emergency and not (options.reason or "").strip():
        raise BadInput('--emergency needs --reason "...", e.g. --reason "CVE-2026-1234 security patch"')
    now = env.clock.now()
    spec = setup.spec
    overridden = []
    if not window.inside(now):
        nxt = next_after(spec, now)
        msg = (
            f"outside the maintenance window of {env.name} ({spec.describe()}); the next one is "
            f"{iso(nxt.start)} .. {iso(nxt.end)} UTC"
        )
        if not options.emergency:
            raise Refused(msg, hint='for a security patch or critical fix: --emergency --reason "..."')
        overridden.append(msg)
    if not window.always and spec.notice_days > 0:
        published = runlog.notice_published(records, env.name, window.key())
        due = window.start - timedelta(days=spec.notice_days)
        late: str | None = None
        if published is None:
            late = f"no notice was published for the window starting {iso(window.start)}"
        elif published > str(iso(due)):
            late = (
                f"the notice for the window starting {iso(window.start)} went out at {published}, "
                f"less than {spec.notice_days} days before it (due by {iso(due)})"
            )
        if late:
            if not options.emergency:
                raise Refused(late, hint=f"publish it in time: inv maint.notice --env {env.name} --publish")
            overridden.append(late)
    return overridden


# probes ------------------------------------------------------------------------


class Probes:
    """The drill probes, running through the whole job."""

    def __init__(self, env: Environment, run_id: str, needs_cache: bool) -> None:
        from ..drills.probes import (
            Anchor,
            Cadence,
            PgReader,
            PgWriter,
            RedisReader,
            RedisWriter,
            ensure_drill_table,
        )

        self.cadence = Cadence()
        self.anchor = Anchor.from_clock(env.clock)
        info = env.database.connection()
        ensure_drill_table(info, self.cadence)
        self.probes: list[Any] = [
            PgWriter(info, run_id, self.anchor, self.cadence),
            PgReader(info, self.anchor, self.cadence),
        ]
        if needs_cache:
            endpoint = env.cache.endpoint()
            self.probes += [
                RedisWriter(endpoint, run_id, self.anchor, self.cadence),
                RedisReader(endpoint, self.anchor, self.cadence),
            ]
        self.lost_so_far: dict[str, int] = {}

    def start(self) -> None:
        for p in self.probes:
            p.start()

    def now(self) -> float:
        return self.anchor.now()

    def impact(self, t0: float, t1: float) -> dict[str, dict[str, Any]]:
        return {p.name: impairment(p.attempts(), t0, t1, self.cadence.interval) for p in self.probes}

    def new_losses(self, until: float) -> dict[str, int]:
        """Acknowledged writes missing now that were not missing after the previous step."""
        out = {}
        for p in self.probes:
            if p.kind != "write":
                continue
            lost = len(lost_writes(p.writes(), p.surviving(5.0), until))
            out[p.name] = max(0, lost - self.lost_so_far.get(p.name, 0))
            self.lost_so_far[p.name] = lost
        return out

    def stop(self, op: Any) -> bool:
        """Stop, journal each probe's up/slow/down bands (the report's chart), remove their rows."""
        from ..drills.measure import bands

        for p in self.probes:
            p.stop()
        for p in self.probes:
            op.step(
                "probe-bands",
                "ok",
                probe=p.name,
                bands=bands(p.attempts(), 0.5),
                attempts=len(p.attempts()),
                failed=sum(1 for a in p.attempts() if not a.ok),
            )
        return all(p.cleanup() for p in self.probes)


def clean_earlier_probe_data(env: Environment, needs_cache: bool) -> None:
    """Rows and keys that killed runs' probes left (ours: the toolkit wrote them)."""
    from ..drills.probes import CACHE_KEY_PREFIX, DRILL_TABLE, Cadence, RedisTarget, pg_connect

    try:
        with pg_connect(env.database.connection(), Cadence()) as conn:
            conn.execute(f"DELETE FROM {DRILL_TABLE} WHERE run_id LIKE %s", (PROBE_RUN_PREFIX + "%",))
    except Exception:  # noqa: BLE001 - the table may not exist yet; a leftover is harmless and retried next run
        pass
    if needs_cache:
        try:
            client = RedisTarget(env.cache.endpoint(), Cadence()).connect()
            try:
                for key in client.scan_iter(match=CACHE_KEY_PREFIX + PROBE_RUN_PREFIX + "*"):
                    client.delete(key)
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - as above
            pass


# the run -----------------------------------------------------------------------


def _snapshot(env: Environment, op: Any, progress: Progress) -> dict[str, Any]:
    """A fresh manual snapshot with Purpose=pre-maintenance, through the db.snapshot code."""
    from ..recovery.snapshot import snapshot_name, snapshot_tags

    name = snapshot_name(env.settings.project, env.name, SNAPSHOT_LABEL, env.clock.now())
    db = env.database
    plan = db.plan_snapshot(name, snapshot_tags(env.settings, env.name, SNAPSHOT_LABEL), None)
    started = time.monotonic()
    op.step("snapshot", "started", snapshot=name)
    snap = db.create_snapshot(plan, wait=True, progress=progress)
    out = {
        "snapshot": snap.id,
        "snapshot_status": snap.status,
        "duration_s": round(time.monotonic() - started, 2),
    }
    op.step("snapshot", "ok" if snap.status == "available" else "failed", **out)
    if snap.status != "available":
        raise NotReady(
            f"the pre-maintenance snapshot {snap.id} is {snap.status}, not available; nothing was changed"
        )
    return out


def run(
    env: Environment,
    setup: Setup,
    options: RunOptions,
    *,
    progress: Progress = no_progress,
    approve: Callable[[list[str]], None] | None = None,
    report_dir: Any = None,
) -> RunOutcome:
    """Run (or resume) the plan on the environment. Raises for refusals (exit 2) and
    pre-check failures (exit 3); returns the outcome of a run that started."""
    from ..drills.signals import Terminated, shielded, terminate_as_exception

    now = env.clock.now()
    window = current_or_next(setup.spec, now)
    records = read_journal(env.journal.path)
    overridden = check_guards(env, setup, window, options, records)
    if options.emergency and not window.inside(now):
        # an emergency outside the window gets a window of the usual length from now
        length = window.end - window.start
        window = Window(now, now + length, now + length - (window.end - window.cutoff), window.timezone)
    steps = setup.env_plan.steps
    done: dict[int, dict[str, Any]] = {}
    cut_short: list[str] = []
    earlier = runlog.runs(records, env.name)
    if options.resume:
        match = [r for r in earlier if r["run_id"] == options.resume]
        if not match:
            raise BadInput(
                f"--resume {options.resume}: no maintenance run with that id on {env.name}; "
                "`inv maint.status` lists them"
            )
        if match[0]["state"] != "unfinished":
            raise BadInput(
                f"--resume {options.resume}: that run finished ({match[0]['why']}); nothing to resume"
            )
        if match[0]["plan"] != setup.plan.name:
            raise BadInput(
                f"--resume {options.resume}: it ran plan {match[0]['plan']}, not {setup.plan.name}; "
                f"pass --plan {match[0]['plan']}"
            )
        states = runlog.step_states(runlog.records_of(records, options.resume))
        done = {i: r for i, r in states.items() if r.get("status") in runlog.DONE}
        cut_short = [f"{i}. {r.get('step_name')}" for i, r in states.items() if r.get("status") == "started"]
        earlier = [r for r in earlier if r["run_id"] != options.resume]
    if approve is not None:
        approve([f"{s.index}. {s.step}" + (" (done)" if s.index in done else "") for s in steps])
    needs_cache = any(s.step.startswith("cache") for s in steps)
    est = history.estimates(
        history.read(history.history_path(env.settings.state_dir)), env.name, [s.step for s in steps]
    )
    args = {
        "plan": setup.plan.name,
        "run_id": options.resume,
        "resume_of": options.resume,
        "steps": [s.step for s in steps],
        "window": window.key(),
        "emergency": options.emergency,
        "reason": options.reason,
        "overridden": overridden,
        "max_errors": setup.env_plan.max_errors,
    }
    outcome = RunOutcome(run_id=options.resume or "", state="complete")
    with terminate_as_exception(), env.operation("maint.run", args) as op:
        run_id = options.resume or op.id
        outcome.run_id = run_id
        if not options.resume:
            op.step("run-id", "ok", run_id=run_id)
        if cut_short:
            # the toolkit was killed inside these steps: first back to a known state, then they run again
            progress(f"repairing after {', '.join(cut_short)} was cut short")
            op.step("repair", "started", cut_short=cut_short)
            op.step("repair", "ok", detail=env.parts.maintenance().repair(progress=progress))
        checks = gates.run_checks(env, earlier, needs_cache=needs_cache, settings=setup.env_plan.prechecks)
        op.step(
            "prechecks", "ok" if all(c.ok for c in checks) else "failed", checks=[c.to_dict() for c in checks]
        )
        if not all(c.ok for c in checks):
            bad = next(c for c in checks if not c.ok)
            op.result = {"state": "not-ready"}
            raise NotReady(
                f"pre-check failed: {bad.name}: {bad.detail}; this run changed nothing", hint=bad.hint
            )
        # before the first change, in the log: a run killed later (a scheduler's log is all on-call
        # has) can be resumed by its id; a run refused above changed nothing and needs none
        progress(
            f"run {run_id} started: plan {setup.plan.name}"
            if not options.resume
            else f"run {run_id} resumed (inv maint.run --resume {run_id})"
        )
        pending = [p for p in steps if p.index not in done]
        # Past the cutoff for even the first step, nothing will change: a snapshot would only cost time.
        first_fits = bool(pending) and fits(est[pending[0].step].expected_s, window, env.clock.now())
        if options.snapshot and first_fits:
            progress("pre-maintenance snapshot")
            _snapshot(env, op, progress)
        elif options.snapshot:
            op.step("snapshot", "skipped", reason="no step fits before the cutoff; nothing will change")
        clean_earlier_probe_data(env, needs_cache)
        probes = Probes(env, f"{PROBE_RUN_PREFIX}{op.id}", needs_cache)
        probes.start()
        errors = 0
        stop_reason: str | None = None
        try:
            for planned in steps:
                if planned.index in done:
                    continue
                name = planned.step
                if stop_reason:
                    op.step(
                        "maint-step", "not-started", index=planned.index, step_name=name, reason=stop_reason
                    )
                    continue
                expected = est[name].expected_s
                if not fits(expected, window, env.clock.now()):
                    stop_reason = "cutoff"
                    outcome.state = "cutoff"
                    op.step(
                        "maint-step",
                        "not-started",
                        index=planned.index,
                        step_name=name,
                        reason="cutoff",
                        detail=cutoff_detail(expected, est[name].basis, iso(window.cutoff)),
                    )
                    continue
                # a line per step start and end: a log that stops after "started" shows where a run hangs
                progress(started_line(planned.index, name, expected, est[name].basis))
                result = _one_step(
                    env,
                    op,
                    run_id,
                    planned,
                    probes,
                    progress,
                    shielded,
                    Terminated,
                    setup.env_plan.max_errors,
                )
                progress(
                    f"step {planned.index}. {name}: {'failed (the run stops)' if result == 'stop' else result}"
                )
                if result == "interrupted":
                    stop_reason = "interrupted"
                    outcome.state = "interrupted"
                elif result == "stop":  # the step said the run cannot go on (StepContext.state["stop_run"])
                    errors += 1
                    stop_reason = "failed"
                    outcome.state = "failed"
                elif result not in ("ok", "skipped"):
                    errors += 1
                    if errors > setup.env_plan.max_errors:
                        stop_reason = "failed"
                        outcome.state = "failed"
            if outcome.state == "complete" and errors:
                outcome.state = "failed"
        finally:
            cleaned = probes.stop(op)
            if not cleaned:
                op.step(
                    "probe-cleanup", "failed", detail="probe rows or keys are left; the next run removes them"
                )
        op.result = {"state": outcome.state, "run_id": run_id, "errors": errors}
        op.outcome = None if outcome.state == "complete" else outcome.state
    all_records = read_journal(env.journal.path)
    outcome.records = runlog.records_of(all_records, outcome.run_id)
    outcome.steps = [r for r in runlog.step_states(outcome.records).values()]
    return outcome


def _one_step(
    env: Environment,
    op: Any,
    run_id: str,
    planned: Any,
    probes: Probes,
    progress: Progress,
    shielded: Any,
    terminated: Any,
    max_errors: int = 0,
) -> str:
    """Run one step; journal it; returns ok | skipped | failed | rolled-back | interrupted | stop."""
    stype = STEPS[planned.step]
    impl = stype.implementation()
    t0 = probes.now()
    wall0 = env.clock.now()
    op.step(
        "maint-step", "started", index=planned.index, step_name=planned.step, t=t0, settings=planned.settings
    )
    events: list[dict[str, Any]] = []

    def note(code: str, message: str, at: float | None = None) -> None:
        events.append({"t": probes.now() if at is None else at, "code": code, "message": message})

    ctx = StepContext(
        env=env,
        settings=planned.settings,
        progress=lambda s: progress(f"{planned.step}: {s}"),
        note=note,
        max_errors=max_errors,
    )
    status, error = "ok", None
    pre: list[Check] = []
    post: list[Check] = []
    details: dict[str, Any] = {}
    rollback: dict[str, Any] | None = None
    interrupted = False
    lost_mid: dict[str, int] = {}
    try:
        pre = impl.precheck(ctx)
        if not all(c.ok for c in pre):
            status = "failed"
            error = "pre-check failed: " + "; ".join(f"{c.name}: {c.detail}" for c in pre if not c.ok)
        elif ctx.state.get("skip"):
            status = "skipped"
            progress(f"{planned.step}: skipped: {ctx.state['skip']}")
        else:
            note("action", f"{planned.step} started")
            details = impl.action(ctx) or {}
            note("action-done", f"{planned.step} done")
            t_mid = probes.now()
            lost_mid = probes.new_losses(t_mid)
            post = impl.postcheck(ctx, {"impact": probes.impact(t0, t_mid), "lost": lost_mid})
            if not all(c.ok for c in post):
                status, error = (
                    "failed",
                    "post-check failed: " + "; ".join(f"{c.name}: {c.detail}" for c in post if not c.ok),
                )
    except terminated as exc:
        interrupted, status, error = True, "failed", f"interrupted: {exc}"
    except KeyboardInterrupt:
        interrupted, status, error = True, "failed", "interrupted: Ctrl-C"
    except OpsError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - a step's crash is its failure; the run goes on to roll it back
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    if status not in ("ok", "skipped") and pre and all(c.ok for c in pre):
        with shielded() as pending:
            rollback = _rollback(impl, ctx)
        interrupted = interrupted or bool(pending)
        status = "rolled-back" if rollback.get("status") == "ok" else "failed"
    if interrupted:
        status = "interrupted"  # not done (the rollback's outcome is in the record): a --resume runs it again
    # the step's record is written whatever arrives now: a signal waits until it is (then the run stops)
    with shielded() as late:
        t1 = probes.now()
        impact = probes.impact(t0, t1)
        later = probes.new_losses(t1)
        lost = {k: lost_mid.get(k, 0) + later.get(k, 0) for k in set(lost_mid) | set(later)}
        duration = round((env.clock.now() - wall0).total_seconds(), 3)
        record = {
            "index": planned.index,
            "step_name": planned.step,
            "t": t0,
            "t_end": t1,
            "duration_s": duration,
            "impact": impact,
            "lost": lost,
            "summary": sentence(planned.step, impact, lost),
            "prechecks": [c.to_dict() for c in pre],
            "postchecks": [c.to_dict() for c in post],
            "details": details,
            "events": events,
            "error": error,
            "rollback": rollback,
        }
        if status == "skipped":
            record["reason"] = ctx.state["skip"]
        op.step("maint-step", status, **record)
        if status != "skipped":  # nothing ran: no duration to learn from (maint.history lists runs)
            history.append(
                history.history_path(env.settings.state_dir),
                {
                    "run_id": run_id,
                    "op_id": op.id,
                    "env": env.name,
                    "step": planned.step,
                    "at": iso(wall0),
                    "duration_s": duration,
                    "status": status,
                    "impact": {k: v.get("impaired_s") for k, v in impact.items()},
                    "lost": lost,
                },
            )
    interrupted = interrupted or bool(late)
    if status != "ok" and ctx.state.get("stop_run"):
        return "stop"
    return "interrupted" if interrupted else status


def _rollback(impl: Any, ctx: StepContext) -> dict[str, Any]:
    fn = getattr(impl, "rollback", None)
    if fn is None:
        return {"status": "none", "detail": "this step has no rollback"}
    try:
        detail = fn(ctx) or "rolled back"
        return {"status": "partial" if isinstance(detail, NotRestored) else "ok", "detail": str(detail)}
    except Exception as exc:  # noqa: BLE001 - a failed rollback is reported, the run stops
        return {"status": "failed", "detail": f"{type(exc).__name__}: {exc}"}
