"""`infra.redeploy`: the full rebuild, stage by stage, each timed, against targets.rto.infrastructure.

Stages, in order: infrastructure (terraform plan + apply of a saved plan),
cluster (the Kubernetes API answers), database (the existing restore into a
new instance, `db.verify` of it, `db.swap` into service), cache (every node
alive with a primary), applications (every deployment ready). A part the
environment does not have is skipped and says so.

The environment lock is held across the whole rebuild (the AWS lock renews
itself while held), so no other mutating task slips in between two stages.
Every stage start and end goes to the journal under the redeploy's operation;
each stage's own changes are journalled by the operation it runs (infra.apply,
db.restore, db.verify, db.swap: the swap guard reads them) without taking the
lock again. A failed stage stops the rebuild, saying what is done and what is
not; a rebuild that was killed is found by the next run, which says which
stages finished, and `--resume` skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from ..core.errors import BadInput, OperationFailed, OpsError, Refused, TimedOut, VerificationFailed
from ..core.journal import read, unfinished
from ..core.plan import Plan, Step
from ..core.ports import Progress, no_progress

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.journal import Operation
    from ..core.ports import Infrastructure

STAGES = ("infrastructure", "cluster", "database", "cache", "applications")
WHAT = {
    "infrastructure": "terraform plan + apply of the saved plan",
    "cluster": "the Kubernetes API answers",
    "database": "restore into a new instance, db.verify, db.swap into service",
    "cache": "every cache node alive, a primary elected",
    "applications": "every deployment ready",
}


class Skipped(Exception):
    """The environment has no such part; the stage is skipped, with the reason."""


@dataclass
class StageResult:
    name: str
    status: str  # ok | failed | skipped | not run | done earlier
    duration_s: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "status": self.status,
            "duration_s": self.duration_s,
            "detail": self.detail,
        }


@dataclass
class RedeployOutcome:
    plan: Plan
    applied: bool
    stages: list[StageResult] = field(default_factory=list)
    target_s: float | None = None
    earlier: dict[str, Any] | None = None  # the interrupted run found in the journal

    @property
    def total_s(self) -> float:
        return round(
            sum(s.duration_s or 0.0 for s in self.stages if s.status in ("ok", "failed", "skipped")), 3
        )

    @property
    def met(self) -> bool | None:
        if self.target_s is None or not self.stages:
            return None
        return all(s.status != "failed" for s in self.stages) and self.total_s <= self.target_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "plan": self.plan.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "total_s": self.total_s,
            "target_s": self.target_s,
            "met": self.met,
            "earlier_run": self.earlier,
        }


@dataclass
class RedeployContext:
    environment: Environment
    infra: Infrastructure
    to: str
    allow_destroy: list[str]
    on_line: Progress = no_progress
    progress: Progress = no_progress
    timeout_s: float = 1800.0
    # a drill holds the environment lock and its journal operation: stages then call the ports
    # under it (journalling into `held`) instead of operations that would take the lock again
    held: Callable[..., None] | None = None


class _UnderLock:
    """The environment as the stages of a rebuild that holds its lock see it: the operations they
    run (infra.apply, db.restore, db.swap) are journalled as usual but do not take the lock again
    (it is not re-entrant); everything else is the environment itself."""

    def __init__(self, environment: Environment) -> None:
        self._environment = environment

    def __getattr__(self, name: str) -> Any:
        return getattr(self._environment, name)

    @contextmanager
    def operation(self, name: str, args: dict[str, Any], *, mutating: bool = True) -> Iterator[Operation]:
        env = self._environment
        with env.journal.operation(name, env.name, args) as op:
            yield op


def under_lock(environment: Environment) -> Environment:
    return cast("Environment", _UnderLock(environment))


def earlier_run(environment: Environment) -> dict[str, Any] | None:
    """The newest redeploy that did not finish well: killed (no end record) or stopped by a failed
    stage. Its finished stages, from the journal."""
    records = read(environment.journal.path)
    runs = [r for r in records if r.get("event") == "start" and r.get("op") == "infra.redeploy"]
    if not runs:
        return None
    last = runs[-1]
    op_id = last["op_id"]
    killed = any(r["op_id"] == op_id for r in unfinished(records))
    end = next((r for r in records if r.get("event") == "end" and r.get("op_id") == op_id), None)
    if not killed and (end is None or end.get("outcome") == "ok"):
        return None
    done = [
        r["stage"]
        for r in records
        if r.get("op_id") == op_id and r.get("event") == "step" and r.get("status") in ("ok", "skipped")
    ]
    begun = [
        r["stage"]
        for r in records
        if r.get("op_id") == op_id and r.get("event") == "step" and r.get("status") == "started"
    ]
    cut = next((s for s in reversed(begun) if s not in done), None)
    return {
        "op_id": op_id,
        "started": last.get("at"),
        "killed": killed,
        "finished": done,
        "interrupted_in": cut,
        "outcome": None if killed else (end or {}).get("outcome"),
    }


def plan_redeploy(environment: Environment, stages: list[str], skip: list[str], to: str) -> Plan:
    plan = Plan(f"full rebuild of {environment.name}, stage by stage")
    for name in stages:
        params: dict[str, Any] = {"to": to} if name == "database" else {}
        if name in skip:
            plan.notes.append(f"{name}: finished by the interrupted run, skipped (--resume)")
            continue
        plan.add(Step("redeploy", name, params, why=WHAT[name]))
    return plan


def check_stages(raw: Any) -> list[str]:
    stages = list(raw or STAGES)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise BadInput(f"redeploy stages {bad}: unknown; accepted: {', '.join(STAGES)}")
    return [s for s in STAGES if s in stages]  # always in dependency order


def redeploy(
    ctx: RedeployContext, *, stages: list[str], resume: bool, approve: Callable[[Plan], bool]
) -> RedeployOutcome:
    environment = ctx.environment
    from ..core.timeparse import parse_restore_time

    if ctx.to != "latest":
        parse_restore_time(ctx.to, flag="--to", now=environment.clock.now(), future_ok=False)
    earlier = earlier_run(environment)
    skip = list(earlier["finished"]) if (earlier and resume) else []
    if resume and not earlier:
        raise BadInput(
            f"--resume: no interrupted or failed infra.redeploy of {environment.name} in the journal"
        )
    target = environment.settings.targets.rto.get("infrastructure")
    plan = plan_redeploy(environment, stages, skip, ctx.to)
    if earlier:
        what = "was killed" if earlier["killed"] else f"stopped ({earlier['outcome']})"
        plan.notes.insert(
            0,
            f"an earlier redeploy (started {earlier['started']}) {what}; finished stages: "
            f"{', '.join(earlier['finished']) or 'none'}"
            + (f"; it was in stage {earlier['interrupted_in']}" if earlier["interrupted_in"] else "")
            + ("" if resume else "; this run starts over (--resume skips the finished ones)"),
        )
    outcome = RedeployOutcome(plan, applied=False, target_s=target, earlier=earlier)
    if not approve(plan):
        return outcome
    outcome.applied = True
    clock = environment.clock
    runners: dict[str, Callable[[RedeployContext], str]] = {
        "infrastructure": stage_infrastructure,
        "cluster": stage_cluster,
        "database": stage_database,
        "cache": stage_cache,
        "applications": stage_applications,
    }
    args = {"to": ctx.to, "stages": stages, "resume_of": earlier["op_id"] if (earlier and resume) else None}
    # a drill (ctx.held) holds the lock and journals the stages' calls itself; otherwise the rebuild
    # takes the lock here, for all of its stages
    holds = ctx.held is None
    with environment.operation("infra.redeploy", args, mutating=holds) as op:
        if holds:
            ctx = replace(ctx, environment=under_lock(environment))
        if earlier:
            # the interrupted run is now accounted for: later runs do not report it again
            environment.journal.write(
                {
                    "event": "cleaned",
                    "op_id": earlier["op_id"],
                    "op": "infra.redeploy",
                    "env": environment.name,
                    "by": op.id,
                }
            )
        for i, name in enumerate(stages):
            if name in skip:
                outcome.stages.append(
                    StageResult(name, "done earlier", None, "finished by the interrupted run")
                )
                continue
            op.step("stage", "started", stage=name)
            ctx.progress(f"stage {name}: {WHAT[name]}")
            started = clock.monotonic()
            try:
                detail = runners[name](ctx)
                status = "ok"
            except Skipped as why:
                detail, status = str(why), "skipped"
            except (OpsError, KeyboardInterrupt) as exc:
                took = round(clock.monotonic() - started, 3)
                outcome.stages.append(StageResult(name, "failed", took, str(exc)))
                outcome.stages += [StageResult(n, "not run") for n in stages[i + 1 :]]
                op.step("stage", "failed", stage=name, duration_s=took, error=str(exc))
                op.result = outcome.to_dict()
                if isinstance(exc, KeyboardInterrupt):
                    raise
                done = [s.name for s in outcome.stages if s.status in ("ok", "skipped", "done earlier")]
                raise StageFailed(environment.name, name, exc, done, stages[i:], outcome) from exc
            took = round(clock.monotonic() - started, 3)
            op.step("stage", status, stage=name, duration_s=took, detail=detail)
            outcome.stages.append(StageResult(name, status, took, detail))
        op.result = {
            "stages": [s.to_dict() for s in outcome.stages],
            "total_s": outcome.total_s,
            "target_s": target,
            "met": outcome.met,
        }
        if outcome.met is False:
            op.outcome = "target-missed"
    return outcome


class StageFailed(OperationFailed):
    """A stage failed: the rebuild stopped there. Carries the outcome so the table can be shown."""

    def __init__(
        self,
        env: str,
        stage: str,
        exc: BaseException,
        done: list[str],
        left: list[str],
        outcome: RedeployOutcome,
    ) -> None:
        super().__init__(
            f"stage {stage} failed: {exc}; done: {', '.join(done) or 'nothing'}; not done: {', '.join(left)}",
            hint=f"fix the cause, then inv infra.redeploy --env {env} --resume",
        )
        self.outcome = outcome
        if isinstance(exc, Refused):  # a guard inside a stage (e.g. a stateful destroy) stays a refusal
            self.exit_code = exc.exit_code


# --- the stages ------------------------------------------------------------------


def stage_infrastructure(ctx: RedeployContext) -> str:
    from .apply import apply_saved, plan_and_apply
    from .plans import make_plan

    if ctx.held is not None:
        summary, done = plan_and_apply(
            ctx.environment, ctx.infra, allow_destroy=ctx.allow_destroy, step=ctx.held, on_line=ctx.on_line
        )
        if done is None:
            return "no changes: the infrastructure matches the configuration"
        t = summary.totals()
        return f"{t['add']} added, {t['change']} changed, {t['replace']} replaced, {t['destroy']} destroyed"
    saved = make_plan(ctx.environment, ctx.infra, allow_destroy=ctx.allow_destroy)
    if not saved.changes:
        return "no changes: the infrastructure matches the configuration"
    out = apply_saved(
        ctx.environment,
        ctx.infra,
        plan_file=str(saved.path),
        allow_destroy=ctx.allow_destroy,
        approve=lambda _plan: True,
        on_line=ctx.on_line,
    )
    t = saved.summary.totals()
    return (
        f"{t['add']} added, {t['change']} changed, {t['replace']} replaced, {t['destroy']} destroyed; "
        f"state serial {out.new_serial}"
    )


def stage_cluster(ctx: RedeployContext) -> str:
    cluster = ctx.environment.parts.cluster()
    if cluster is None:
        raise Skipped(f"{ctx.environment.name} has no Kubernetes cluster")
    found = cluster.deployments()
    return f"API answers ({cluster.describe_access()}); {len(found)} deployment(s)"


def stage_database(ctx: RedeployContext) -> str:
    """The existing restore, verify and swap: no second restore code path."""
    from ..recovery.restore import RestoreRequest, restore
    from ..recovery.swap import swap
    from ..recovery.verify import verify

    env = ctx.environment
    if ctx.held is not None:
        return _database_held(ctx)
    restored = restore(env, RestoreRequest(to=ctx.to), approve=lambda _plan: True, progress=ctx.progress)
    report = verify(env, restored.new_id, as_of=restored.restore_point)
    if not report.ok:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failed)
        raise VerificationFailed(
            f"restored {restored.new_id} failed db.verify ({failed}); it was not put in service"
        )
    swapped = swap(env, restored.new_id, approve=lambda _plan: True, progress=ctx.progress)
    point = restored.restore_point.isoformat() if restored.restore_point else "latest"
    return (
        f"{restored.new_id} restored to {point} in {restored.duration_s} s, verified, in service "
        f"(the old one is {swapped.replaced_as})"
    )


def _database_held(ctx: RedeployContext) -> str:
    """The same port calls db.restore and db.swap make (restore into a new instance, swap it under
    the serving name), without their operations: the drill holds the lock and journals them."""
    from ..core.timeparse import parse_restore_time
    from ..recovery.common import free_name
    from ..recovery.verify import verify

    env, say = ctx.environment, ctx.held
    assert say is not None
    db = env.database
    source = db.instance_id()
    taken = {i.id.lower() for i in db.instances()}
    new_id = free_name(source, "rebuilt", env.clock.now(), taken)
    to_time = parse_restore_time(ctx.to, flag="--to", now=env.clock.now())
    plan = db.plan_restore(new_id, to_time=to_time, snapshot_id=None)
    say("restore", "started", new_instance=new_id, to=ctx.to)
    instance = db.restore(plan, progress=ctx.progress)
    say("restore", "available", new_instance=new_id, endpoint=f"{instance.host}:{instance.port}")
    report = verify(env, new_id, as_of=to_time)
    if not report.ok:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failed)
        raise VerificationFailed(f"restored {new_id} failed db.verify ({failed}); it was not put in service")
    replaced_as = free_name(source, "replaced", env.clock.now(), taken | {new_id.lower()})
    result = db.swap(db.plan_swap(new_id, replaced_as), progress=ctx.progress)
    say("swap", "ok", instance=result.instance, replaced_as=result.replaced_as)
    return f"{new_id} restored to {ctx.to}, verified, in service (the old one is {result.replaced_as})"


def _wait(ctx: RedeployContext, what: str, check: Callable[[], tuple[bool, str]]) -> str:
    clock = ctx.environment.clock
    deadline = clock.monotonic() + ctx.timeout_s
    while True:
        ok, detail = check()
        if ok:
            return detail
        if clock.monotonic() > deadline:
            raise TimedOut(f"{what} not ready after {ctx.timeout_s:.0f} s: {detail}")
        ctx.progress(f"waiting for {what}: {detail}")
        clock.sleep(0.5)


def stage_cache(ctx: RedeployContext) -> str:
    cache = ctx.environment.cache

    def ready() -> tuple[bool, str]:
        try:
            nodes = cache.status()
        except OpsError as exc:
            return False, str(exc)
        down = [n.id for n in nodes if not n.alive]
        primary = [n for n in nodes if n.role == "primary" and n.alive]
        if nodes and primary and not down:
            return (
                True,
                f"{len(nodes)} node(s) alive, primary {primary[0].id} at {primary[0].host}:{primary[0].port}",
            )
        return False, f"down: {', '.join(down) or 'none'}; primary: {primary[0].id if primary else 'none'}"

    return _wait(ctx, "the cache", ready)


def stage_applications(ctx: RedeployContext) -> str:
    cluster = ctx.environment.parts.cluster()
    if cluster is None:
        raise Skipped(f"{ctx.environment.name} has no Kubernetes cluster")

    def ready() -> tuple[bool, str]:
        waiting = []
        deployments = cluster.deployments()
        for d in deployments:
            want = int((d.get("spec") or {}).get("replicas") or 0)
            have = int((d.get("status") or {}).get("readyReplicas") or 0)
            if have < want:
                waiting.append(f"{d['metadata']['name']} {have}/{want}")
        return (not waiting, ", ".join(waiting) or f"{len(deployments)} deployment(s) ready")

    return _wait(ctx, "the applications", ready)
