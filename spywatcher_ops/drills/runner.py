"""The drill lifecycle, once for every scenario:

    probes start -> steady state confirmed -> fault (scenario.inject, in a
    worker thread) -> wait for recovery or the hard timeout -> rollback and
    cleanup, ALWAYS (also on SIGTERM / Ctrl-C) -> steady-state re-check ->
    measurement -> journal.

Everything that happens is journaled as a step of the `dr.drill` operation;
report.py renders the report from those records, not from memory.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core.errors import NotReady, OperationFailed, OpsError, RolledBack
from ..core.ports import Progress, no_progress
from ..core.status import Status
from . import measure
from .probes import Anchor, PgReader, PgWriter, Probe, RedisReader, RedisWriter
from .scenario import Check, DrillContext, DrillOptions, Fault, Measured, Scenario
from .signals import Terminated, shielded, terminate_as_exception

if TYPE_CHECKING:
    from ..core.environment import Environment

LOST_SEQS_KEPT = 200  # journal at most this many lost sequence numbers per probe

PROBE_FACTORIES: dict[str, Callable[[DrillContext], Probe]] = {
    "db-write": lambda ctx: PgWriter(
        ctx.env.database.connection(), ctx.run_id, ctx.anchor, ctx.options.cadence
    ),
    "db-read": lambda ctx: PgReader(ctx.env.database.connection(), ctx.anchor, ctx.options.cadence),
    "cache-write": lambda ctx: RedisWriter(
        ctx.env.cache.endpoint(), ctx.run_id, ctx.anchor, ctx.options.cadence
    ),
    "cache-read": lambda ctx: RedisReader(ctx.env.cache.endpoint(), ctx.anchor, ctx.options.cadence),
}


def standard_probes(ctx: DrillContext, names: tuple[str, ...]) -> list[Probe]:
    return [PROBE_FACTORIES[name](ctx) for name in names]


def api_watch(ctx: DrillContext, names: tuple[str, ...]) -> list[Probe]:
    """On aws with a health URL: the API's probe rides along in every drill, not
    judged (judged_by decides), so the report says when the API served again."""
    from .http_probe import HttpHealthProbe, health_url

    url = health_url(ctx.env)
    if ctx.env.kind != "aws" or not url or "app-health" in names:
        return []
    # a watcher: not part of the steady state (a slow API must not stop a database drill), and
    # polite to a production endpoint: failures are retried at the normal pace, not every 10 ms
    cadence = replace(ctx.options.cadence, retry_interval=max(ctx.options.cadence.interval, 0.25))
    probe = HttpHealthProbe(url, ctx.anchor, cadence)
    probe.watch_only = True
    return [probe]


class DrillTimeout(OpsError):
    exit_code = 4


@dataclass
class DrillRun:
    op_id: str
    env: str
    scenario: str
    outcome: str  # met | missed | aborted | not-ready | failed
    error: OpsError | None = None
    measured: Measured | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False  # a signal came during the rollback: the suite must stop
    signalled: bool = False  # stopped by Ctrl-C or SIGTERM/SIGHUP (during the drill or its rollback)


# the lifecycle ----------------------------------------------------------------


def run_scenario(
    env: Environment,
    scenario: Scenario,
    options: DrillOptions,
    *,
    preflight: list[Check] | None = None,
    progress: Progress = no_progress,
    anchor: Anchor | None = None,
    status: Status | None = None,
    in_run: str | None = None,
) -> DrillRun:
    """Run one scenario end to end. Never raises for a drill outcome: the
    result says met / missed / aborted / not-ready; the caller maps it to an exit code.
    `status` gets the phases and probe states (the live line); provider messages go to it
    as events (or to `progress` when no status is given). `in_run`: the id of the suite run it
    belongs to, journalled with the drill so a killed run still finds its drills."""
    status = status or Status(scenario.name)
    if progress is not no_progress and progress is not status:
        status.listen(progress)
    anchor = anchor or Anchor.from_clock(env.clock)
    run_id = f"{scenario.name}-{uuid.uuid4().hex[:8]}"
    started = datetime.fromtimestamp(anchor.now(), UTC) - _PROVIDER_EVENT_SLACK
    args = {
        "scenario": scenario.name,
        "run_id": run_id,
        "timeout_s": scenario.hard_timeout(env, options),
        "keep": options.keep,
        "params": options.params,
    }
    if in_run:
        args["in_run"] = in_run
    op_id = ""
    run: DrillRun | None = None
    try:
        with env.operation("dr.drill", args) as op:
            op_id = op.id
            ctx = DrillContext(env=env, op=op, run_id=run_id, anchor=anchor, options=options, progress=status)
            op.step(
                "scenario",
                "ok",
                scenario=scenario.describe(),
                kind=env.kind,
                anchor_wall=anchor.wall0,
                stability=vars(options.stability),
                cadence=vars(options.cadence),
            )
            if preflight is not None:
                op.step(
                    "preflight",
                    "ok" if all(c.ok for c in preflight) else "failed",
                    checks=[c.to_dict() for c in preflight],
                )
            run = _lifecycle(ctx, scenario, started, status)
            op.result = {"outcome": run.outcome, **_measured_dict(run.measured)}
            op.outcome = run.outcome if run.outcome != "met" else None
            if run.error is not None:
                raise run.error
    except OpsError as exc:
        if run is None:
            run = DrillRun(
                op_id,
                env.name,
                scenario.name,
                "not-ready" if isinstance(exc, NotReady) else "failed",
                error=exc,
            )
        run.error = exc
    run.op_id = op_id
    run.records = [r for r in _read_journal(env) if r.get("op_id") == op_id] if op_id else []
    return run


_PROVIDER_EVENT_SLACK = timedelta(seconds=1)


def _read_journal(env: Environment) -> list[dict[str, Any]]:
    from ..core.journal import read

    return read(env.journal.path)


def _lifecycle(ctx: DrillContext, scenario: Scenario, started: datetime, status: Status) -> DrillRun:
    env = ctx.env
    fault: Fault | None = None
    abort: str | None = None
    cause: BaseException | None = None
    worker: _Injector | None = None
    measured: Measured | None = None
    recheck: list[Check] = []
    probes: list[Probe] = []
    with terminate_as_exception() as received:
        try:
            scenario.setup(ctx)
            probes = scenario.make_probes(ctx)
            ctx.probes = probes
            for p in probes:
                p.start()
            ctx.step("probes-started", "ok", probes=[p.name for p in probes])
            status.phase("steady state")
            _wait_steady(ctx, probes, status)
            ctx.step("steady-state", "ok", detail=f"{len(probes)} probe(s) healthy")
            worker = _Injector(ctx, scenario)
            status.phase("fault")
            worker.start()
            fault = _wait_recovery(ctx, scenario, worker, probes, status)
        except NotReady as exc:
            abort, cause = f"not ready: {exc}", exc
        except DrillTimeout as exc:
            abort, cause = str(exc), exc
        except Terminated as exc:
            abort, cause = f"terminated by {exc}", exc
        except KeyboardInterrupt as exc:
            abort, cause = "interrupted (Ctrl-C)", exc
        except OpsError as exc:
            abort, cause = f"failed: {exc}", exc
        except Exception as exc:  # noqa: BLE001 - any crash still gets its rollback and a report
            abort, cause = f"crashed: {type(exc).__name__}: {exc}", exc
        finally:
            with shielded() as deferred:
                if abort:
                    ctx.step("aborted", "failed", reason=abort, signals=list(received))
                ctx.cancelled.set()
                if worker is not None and worker.is_alive():
                    # Let a provider call finish rather than leave it half done.
                    worker.join(timeout=60)
                fault = fault or (worker.fault_or_marked() if worker else None)
                for p in probes:
                    p.stop()
                status.phase("rollback")
                _rollback(ctx, scenario, fault)
                measured = _measure(ctx, scenario, fault, probes) if fault is not None else None
                for p in probes:
                    undoes = getattr(p, "undoes", None)
                    if p.cleanup():
                        if undoes:
                            ctx.undone_kind(undoes, f"removed by the {p.name} probe's cleanup")
                    elif undoes:  # left pending on purpose: the next run's cleanup retries it
                        ctx.step("probe-cleanup", "failed", probe=p.name, undo_kind=undoes)
                status.phase("re-check")
                recheck = steady_state(env, scenario.part, ctx.options)
                try:
                    recheck += scenario.recheck(env)
                except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
                    recheck.append(
                        Check(f"{scenario.name} re-check", "failed", f"{type(exc).__name__}: {exc}")
                    )
                ctx.step(
                    "recheck",
                    "ok" if all(c.ok for c in recheck) else "failed",
                    checks=[c.to_dict() for c in recheck],
                )
                _provider_events(ctx, scenario, started)
    outcome = _outcome(env, scenario, measured, abort)
    late = [signal.Signals(s).name for s in deferred]
    if late and not abort:
        # Asked to stop while this drill rolled back: its measurement stands, but
        # nothing more may be injected; the suite stops here with exit 4.
        why = (
            f"interrupted by {', '.join(late)} during the rollback; the drill finished, no further drill runs"
        )
        if not all(c.ok for c in recheck):
            outcome = "failed"
            why += "; the steady-state re-check FAILED, see the report"
        ctx.step("interrupted", "failed", reason=why, signals=list(deferred))
        return DrillRun(
            "",
            env.name,
            scenario.name,
            outcome,
            measured=measured,
            interrupted=True,
            signalled=True,
            error=RolledBack(f"drill {scenario.name} on {env.name}: {why}"),
        )
    error: OpsError | None = None
    if isinstance(cause, NotReady) and fault is None:
        error, outcome = cause, "not-ready"
    elif abort:
        error = RolledBack(
            f"drill {scenario.name} on {env.name} aborted ({abort}); rollback ran"
            + ("" if all(c.ok for c in recheck) else "; the re-check FAILED, see the report")
        )
    elif not all(c.ok for c in recheck):
        error = OperationFailed(
            f"drill {scenario.name}: the steady-state re-check failed after the rollback: "
            + "; ".join(f"{c.name}: {c.detail}" for c in recheck if not c.ok)
        )
        outcome = "failed"
    return DrillRun(
        "",
        env.name,
        scenario.name,
        outcome,
        error=error,
        measured=measured,
        signalled=isinstance(cause, KeyboardInterrupt),  # Terminated (SIGTERM/SIGHUP) is one too
    )


class _Injector(threading.Thread):
    """Runs scenario.inject so the main thread can watch the probes (and take
    signals) meanwhile. A provider call is never interrupted half way."""

    def __init__(self, ctx: DrillContext, scenario: Scenario) -> None:
        super().__init__(name="drill-inject", daemon=True)
        self.ctx = ctx
        self.scenario = scenario
        self.result: Fault | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            fault = self.scenario.inject(self.ctx)
            fault.done_at = fault.done_at or self.ctx.now()
            self.result = fault
            self.ctx.step("fault-done", "ok", t=fault.done_at, description=fault.description)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc

    def fault_or_marked(self) -> Fault | None:
        return self.result or self.ctx.scratch.get("fault")


def mark_fault(ctx: DrillContext, description: str, **details: Any) -> Fault:
    """Scenarios call this at the instant they inject. Journaled and on the timeline."""
    fault = Fault(ctx.now(), description, details=details)
    ctx.scratch["fault"] = fault
    ctx.step("fault", "injected", t=fault.at, description=description, **details)
    ctx.events.append(_event(fault.at, "fault", "drill", description))
    return fault


def _event(at: float, kind: str, source: str, message: str, code: str | None = None) -> Any:
    from .scenario import TimelineEvent

    return TimelineEvent(at, kind, source, message, code)


def _probe_states(ctx: DrillContext, status: Status, probes: list[Probe]) -> None:
    """Each probe up or down by its newest attempt (watchers included: shown, not judged). An
    attempt still in flight past the slow threshold is down too: a frozen server does not fail
    a call, it never answers it."""
    slow_s, interval = ctx.options.stability.slow_s, ctx.options.cadence.interval
    now = ctx.now()
    states, ago = {}, {}
    for p in probes:
        attempts = p.attempts()
        if not attempts:
            continue
        last = attempts[-1]
        stuck = now - last.end > interval + slow_s
        states[p.name] = not stuck and not measure.impaired(last, slow_s)
        if not states[p.name]:
            good = next((a for a in reversed(attempts) if not measure.impaired(a, slow_s)), None)
            ago[p.name] = max(0.0, now - good.end) if good else 0.0
    status.probes(states, ago)


def _wait_steady(ctx: DrillContext, probes: list[Probe], status: Status | None = None) -> None:
    need = ctx.options.steady_count
    deadline = time.monotonic() + ctx.options.steady_timeout_s
    while True:
        lagging = [
            p
            for p in probes
            if not getattr(p, "watch_only", False)
            and not _tail_good(p.attempts(), need, ctx.options.stability.slow_s)
        ]
        if not lagging:
            return
        if time.monotonic() >= deadline:
            detail = "; ".join(
                f"{p.name}: {getattr(p, 'last_error', None) or 'no healthy run yet'}" for p in lagging
            )
            raise NotReady(
                f"steady state not reached within {ctx.options.steady_timeout_s:.0f} s ({detail}); "
                "nothing was injected"
            )
        if status is not None:
            _probe_states(ctx, status, probes)
        time.sleep(0.05)


def _tail_good(attempts: list[measure.Attempt], need: int, slow_s: float) -> bool:
    tail = attempts[-need:]
    return len(tail) >= need and not any(measure.impaired(a, slow_s) for a in tail)


def _wait_recovery(
    ctx: DrillContext, scenario: Scenario, worker: _Injector, probes: list[Probe], status: Status
) -> Fault:
    # This loop only sets the phase and the probe states; provider messages come from the
    # injecting thread as the status's event, and neither overwrites the other.
    timeout = scenario.hard_timeout(ctx.env, ctx.options)
    deadline = time.monotonic() + timeout
    judged = [p for p in probes if p.name in scenario.judged_by]
    rule = ctx.options.stability
    while True:
        if worker.error is not None:
            err = worker.error
            if isinstance(err, OpsError):
                raise err
            raise OperationFailed(f"injecting {scenario.name} failed: {type(err).__name__}: {err}") from err
        _probe_states(ctx, status, probes)
        fault = worker.result
        if fault is not None:
            status.phase("recovering")
            pending = []
            for p in judged:
                rec = measure.recovery(p.attempts(), fault.at, rule)
                if not rec.recovered:
                    pending.append(f"{p.name} down")
                elif not rec.impacted:
                    # Not hit (yet): keep watching a stable run after the provider finished.
                    after = [a for a in p.attempts() if a.start >= (fault.done_at or fault.at)]
                    if len(after) < rule.stable_count:
                        pending.append(f"{p.name} watching")
            if not pending and scenario.finished(ctx, fault):
                ctx.step("recovered", "ok", t=ctx.now())
                return fault
        if time.monotonic() >= deadline:
            raise DrillTimeout(f"no recovery within the hard timeout of {timeout:.0f} s")
        time.sleep(0.02)


def _rollback(ctx: DrillContext, scenario: Scenario, fault: Fault | None) -> None:
    try:
        scenario.rollback(ctx, fault)
        ctx.step("rollback", "ok")
    except Exception as exc:  # noqa: BLE001 - recorded; the re-check and the next run's cleanup follow
        ctx.step("rollback", "failed", error=f"{type(exc).__name__}: {exc}")


def _provider_events(ctx: DrillContext, scenario: Scenario, since: datetime) -> None:
    try:
        events = scenario.provider_events(ctx, since)
    except Exception as exc:  # noqa: BLE001 - the timeline is poorer without them, the drill still counts
        ctx.step("provider-events", "failed", error=f"{type(exc).__name__}: {exc}")
        return
    for ev in events:
        ctx.step(
            "event",
            "ok",
            t=ev.at.timestamp(),
            kind="provider",
            source=ev.source,
            message=ev.message,
            code=ev.code,
        )


# measurement ------------------------------------------------------------------


def probe_summary(
    p: Probe, fault: Fault, rule: measure.Stability, surviving_deadline_s: float = 10.0
) -> dict[str, Any]:
    attempts = p.attempts()
    rec = measure.recovery(attempts, fault.at, rule)
    lat = [a.latency for a in attempts if a.ok]
    out: dict[str, Any] = {
        "name": p.name,
        "part": p.part,
        "kind": p.kind,
        "attempts": len(attempts),
        "failed": sum(1 for a in attempts if not a.ok),
        "impacted": rec.impacted,
        "first_failure": rec.first_failure,
        "recovered_at": rec.recovered_at,
        "rto_s": rec.rto_s,
        "relapses": rec.relapses,
        "latency_p50_s": measure.percentile(lat, 50),
        "latency_p95_s": measure.percentile(lat, 95),
        "latency_max_s": max(lat) if lat else None,
        "bands": [list(b) for b in measure.bands(attempts, rule.slow_s)],
        "first_error": next((a.error for a in attempts if not a.ok and a.end > fault.at), None),
        "cpu_s": p.cpu_seconds(),
        "span_s": (attempts[-1].end - attempts[0].start) if attempts else 0.0,
    }
    if p.kind == "write":
        writes = p.writes()
        surviving = p.surviving(surviving_deadline_s)
        if surviving is None:
            out["loss"] = None
            out["loss_error"] = "could not read the surviving writes back"
        else:
            loss = measure.failover_loss(writes, surviving, fault.at)
            out["loss"] = {
                "acked": loss.acked,
                "acked_before_fault": loss.acked_before_fault,
                "lost": loss.lost,
                "lost_after_fault": loss.lost_after_fault,
                "rpo_s": loss.rpo_s,
                "lost_seqs": loss.lost_seqs[:LOST_SEQS_KEPT],
                "oldest_lost_ts": loss.oldest_lost_ts,
                "newest_surviving_ts": loss.newest_surviving_ts,
                "unacknowledged": loss.unknown,
            }
    return out


def _measure(ctx: DrillContext, scenario: Scenario, fault: Fault, probes: list[Probe]) -> Measured | None:
    summaries = {}
    for p in probes:
        try:
            summaries[p.name] = probe_summary(p, fault, ctx.options.stability)
        except Exception as exc:  # noqa: BLE001 - one broken probe must not hide the others
            summaries[p.name] = {"name": p.name, "error": f"{type(exc).__name__}: {exc}"}
        ctx.step("probe", "ok", probe=summaries[p.name])
        s = summaries[p.name]
        if s.get("first_failure"):
            ctx.events.append(_event(s["first_failure"], "first-failure", p.name, f"{p.name}: first failure"))
        if s.get("impacted") and s.get("recovered_at"):
            ctx.events.append(_event(s["recovered_at"], "recovered", p.name, f"{p.name}: stable again"))
    try:
        measured = scenario.measure(ctx, fault, summaries)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed measurement, never as a pass
        ctx.step("measured", "failed", error=f"{type(exc).__name__}: {exc}")
        return None
    targets = _targets(ctx.env, scenario)
    ctx.step(
        "measured",
        "ok",
        fault_at=fault.at,
        fault_done_at=fault.done_at,
        **_measured_dict(measured),
        rto_target_s=targets[0],
        rpo_target_s=targets[1],
        rto_target_key=target_key(ctx.env.settings.targets.rto, scenario.rto_key),
        rpo_target_key=target_key(ctx.env.settings.targets.rpo, scenario.rpo_key),
        rto_verdict=measure.verdict(measured.rto_s, targets[0]),
        rpo_verdict=measure.verdict(measured.rpo_s, targets[1]) if scenario.rpo_key else "n/a",
    )
    return measured


def failover_measure(
    ctx: DrillContext, fault: Fault, summaries: dict[str, Any], judged_by: tuple[str, ...]
) -> Measured:
    """RTO: the slowest judged probe's recovery. RPO: the worst writer loss."""
    judged = [summaries[n] for n in judged_by if n in summaries]
    rtos = [s.get("rto_s") for s in judged]
    rto = None if (not rtos or any(r is None for r in rtos)) else max(r for r in rtos if r is not None)
    writers = [s for s in judged if s.get("kind") == "write"] or [
        s for s in summaries.values() if s.get("kind") == "write"
    ]
    losses = [s.get("loss") for s in writers]
    if not writers or any(loss is None for loss in losses):
        rpo, lost = None, None
    else:
        rpo = max(loss["rpo_s"] for loss in losses if loss)
        lost = sum(loss["lost"] + loss["lost_after_fault"] for loss in losses if loss)
    names = ", ".join(s["name"] for s in judged)
    return Measured(
        rto_s=rto,
        rpo_s=rpo,
        lost_writes=lost,
        rto_basis=f"fault -> first success of {names} followed by {ctx.options.stability.stable_count} good attempts",
        rpo_basis="fault -> oldest acknowledged write missing after recovery (0: none missing)",
    )


def _measured_dict(m: Measured | None) -> dict[str, Any]:
    if m is None:
        return {"rto_s": None, "rpo_s": None, "lost_writes": None}
    return {
        "rto_s": m.rto_s,
        "rpo_s": m.rpo_s,
        "lost_writes": m.lost_writes,
        "rto_basis": m.rto_basis,
        "rpo_basis": m.rpo_basis,
        "details": m.details,
    }


# A part without its own target is judged by the tier it serves (the cache serves the application).
TARGET_FALLBACK = {"cache": "application", "snapshot": "database", "restore": "database"}


def target_key(table: dict[str, float], key: str | None) -> str | None:
    if key is None:
        return None
    if key in table:
        return key
    fallback = TARGET_FALLBACK.get(key)
    return fallback if fallback in table else None


def _targets(env: Environment, scenario: Scenario) -> tuple[float | None, float | None]:
    t = env.settings.targets
    rto_k, rpo_k = target_key(t.rto, scenario.rto_key), target_key(t.rpo, scenario.rpo_key)
    return (t.rto.get(rto_k) if rto_k else None), (t.rpo.get(rpo_k) if rpo_k else None)


def targets_for(env: Environment, scenario: Scenario) -> tuple[float | None, float | None]:
    return _targets(env, scenario)


def _outcome(env: Environment, scenario: Scenario, m: Measured | None, abort: str | None) -> str:
    if abort:
        return "aborted"
    if m is None:
        return "failed"
    rto_t, rpo_t = _targets(env, scenario)
    verdicts = [measure.verdict(m.rto_s, rto_t)]
    if scenario.rpo_key:
        verdicts.append(measure.verdict(m.rpo_s, rpo_t))
    if m.details.get("verification") == "failed":
        verdicts.append("missed")  # the restored copy does not hold what it should
    return "missed" if "missed" in verdicts else "met"


# steady state -------------------------------------------------------------------


def steady_state(
    env: Environment, part: str, options: DrillOptions, *, deadline_s: float = 15.0
) -> list[Check]:
    """The service answers like a client expects: the database is writable, the cache has a master."""
    from .preflight import steady_state_checks

    return steady_state_checks(env, part, options.cadence, deadline_s=deadline_s)
