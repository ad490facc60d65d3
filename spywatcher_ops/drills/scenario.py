"""What a drill scenario is, and the context the runner hands it.

A scenario injects one fault into an environment and says how it is judged.
The runner (runner.py) owns the lifecycle: preflight -> probes start -> steady
state -> `inject` -> wait for recovery or the hard timeout -> `rollback`
(always) -> steady-state re-check -> report. A scenario only implements the
parts that differ; `Scenario` gives defaults for the rest.

Adding a scenario in a module of its own (the built-in ones live in
drills/scenarios/, one module per family):

    # <your package>/my_scenarios.py
    from spywatcher_ops.drills.scenarios.registry import register
    from spywatcher_ops.drills.scenario import Scenario, Fault

    @register
    class AppPodLoss(Scenario):
        name = "app-pod-loss"
        injects = "deletes one backend pod"
        part = "application"
        rto_key, rpo_key = "application", "application"
        kinds = ("aws",)
        probes = ("http-read",)        # or provide make_probes()
        def inject(self, ctx): ...     # returns a Fault

and list the module in `registry.SCENARIO_MODULES` (or in config:
`ops.drills.scenario_modules: [my.module]`). Scenarios that need a probe the
drill package does not have override `make_probes(ctx)` and return objects
implementing `probes.Probe`. Whatever `inject` changes and must be undone
after a crash is journaled with `ctx.undo(kind, **data)`; the matching
handler is registered with `cleanup.undo_handler(kind)` so the next
`dr.drill` / `dr.preflight` can undo it if the drill was killed halfway.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.plan import Plan, Step
from ..core.ports import no_progress
from .measure import Stability
from .probes import Anchor, Cadence

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.journal import Operation
    from .probes import Probe


@dataclass
class Check:
    """One preflight or steady-state check: `ok`, `failed` (blocks the drill) or `warn`."""

    name: str
    status: str
    detail: str = ""
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass
class DrillOptions:
    timeout_s: float | None = None  # hard timeout after the fault; None: the scenario's own
    keep: bool = False  # keep instances a restore drill created
    stability: Stability = field(default_factory=Stability)
    cadence: Cadence = field(default_factory=Cadence)
    steady_count: int = 5  # good attempts per probe before the fault (the RPO needs writes before it)
    steady_timeout_s: float = 10.0
    params: dict[str, Any] = field(default_factory=dict)  # scenario parameters, e.g. stall_s


@dataclass
class Fault:
    """What was injected and when (epoch seconds on the drill's anchor)."""

    at: float
    description: str
    done_at: float | None = None  # the provider said the failover/restore finished
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class TimelineEvent:
    at: float  # epoch seconds
    kind: str  # fault, provider, first-failure, recovered, restore-started, ...
    source: str
    message: str
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.at,
            "kind": self.kind,
            "source": self.source,
            "message": self.message,
            "code": self.code,
        }


@dataclass
class DrillContext:
    env: Environment
    op: Operation
    run_id: str
    anchor: Anchor
    options: DrillOptions
    progress: Callable[[str], None] = no_progress
    events: list[TimelineEvent] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)  # set when the drill aborts
    pending_undo: dict[str, str] = field(default_factory=dict)  # undo id -> kind, until undone

    def now(self) -> float:
        return self.anchor.now()

    def sleep(self, seconds: float) -> bool:
        """Sleep in an injection; returns False early when the drill is aborted."""
        return not self.cancelled.wait(max(0.0, seconds))

    def when(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, UTC)

    def step(self, name: str, status: str, **data: Any) -> None:
        self.op.step(name, status, **data)

    def event(
        self,
        kind: str,
        message: str,
        *,
        at: float | None = None,
        source: str = "drill",
        code: str | None = None,
    ) -> TimelineEvent:
        ev = TimelineEvent(self.now() if at is None else at, kind, source, message, code)
        self.events.append(ev)
        self.op.step("event", "ok", **ev.to_dict())
        return ev

    def undo(self, kind: str, **data: Any) -> str:
        """Journal something to undo if this drill dies before its rollback."""
        undo_id = uuid.uuid4().hex[:8]
        self.op.step("undo", "pending", undo={"id": undo_id, "kind": kind, **data})
        self.pending_undo[undo_id] = kind
        return undo_id

    def undone(self, undo_id: str, detail: str = "") -> None:
        self.op.step("undone", "ok", undo_id=undo_id, detail=detail)
        self.pending_undo.pop(undo_id, None)

    def undone_kind(self, kind: str, detail: str) -> None:
        """Mark every pending entry of `kind` undone (what a probe's own cleanup removed)."""
        for undo_id, k in list(self.pending_undo.items()):
            if k == kind:
                self.undone(undo_id, detail)

    def probe(self, name: str) -> Probe | None:
        return next((p for p in self.probes if p.name == name), None)


@dataclass
class Measured:
    """A scenario's result in numbers; the runner adds targets and verdicts."""

    rto_s: float | None
    rpo_s: float | None
    lost_writes: int | None = None
    rto_basis: str = ""  # how RTO was measured, one line
    rpo_basis: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Scenario:
    """Base class with the defaults; subclasses set the attributes and `inject`."""

    name = "scenario"
    injects = ""  # what the fault is, one line
    part = "database"  # database | cache | application | infrastructure
    rto_key = "database"  # key in ops.targets.rto
    rpo_key: str | None = "database"  # key in ops.targets.rpo (None: RPO not judged)
    kinds: tuple[str, ...] = ("sandbox", "aws")  # environment kinds that support it
    default_for: tuple[str, ...] = ()  # kinds whose default suite includes it
    default_needs: str | None = None  # a setting it needs to be in the default suite (shown by dr.scenarios)
    unsupported: dict[str, str] = {}  # kind -> why it cannot run there, for the error message
    # --param keys it reads -> what is accepted; `check_params` validates them before anything runs
    params: dict[str, str] = {}
    probes: tuple[str, ...] = ("db-write", "db-read")
    judged_by: tuple[str, ...] = ("db-write",)  # probes whose recovery is the RTO
    aws_actions: tuple[str, ...] = ()  # IAM actions it calls on aws (the preflight simulates them)
    timeout_s = 120.0  # hard timeout after the fault, per environment kind below
    timeout_aws_s = 1800.0

    # description -------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "injects": self.injects,
            "part": self.part,
            "rto_target": self.rto_key,
            "rpo_target": self.rpo_key,
            "environments": list(self.kinds),
            "probes": list(self.probes),
        }

    def check_params(self, params: dict[str, str]) -> None:
        """Raise BadInput for a value of one of self.params that can never work (no environment needed).
        Unknown keys are checked by the caller, across the whole suite."""

    def check_params_on(self, kind: str, params: dict[str, str]) -> None:
        """Like check_params, for what depends on the kind of environment (e.g. a param only one
        kind reads, or one a kind needs): BadInput before anything runs."""

    def aws_actions_for(self, env: Environment) -> tuple[str, ...]:
        """The IAM actions on this environment (some depend on its set-up)."""
        return self.aws_actions

    def in_default_suite(self, env: Environment) -> bool:
        """Whether `inv dr.drill` without --scenario runs it on `env`."""
        return env.kind in self.default_for

    def hard_timeout(self, env: Environment, options: DrillOptions) -> float:
        if options.timeout_s is not None:
            return options.timeout_s
        return self.timeout_aws_s if env.kind == "aws" else self.timeout_s

    # preflight -----------------------------------------------------------------
    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        """Scenario-specific preflight checks (read-only)."""
        return []

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        plan = Plan(f"drill {self.name} on {env.name}")
        plan.add(Step("drill", self.name, {"injects": self.injects}, why="the fault this drill injects"))
        return plan

    # lifecycle -----------------------------------------------------------------
    def setup(self, ctx: DrillContext) -> None:
        """Before the probes start (e.g. create the drill table)."""

    def inject(self, ctx: DrillContext) -> Fault:
        raise NotImplementedError

    def finished(self, ctx: DrillContext, fault: Fault) -> bool:
        """Extra condition (besides probe recovery) before the drill stops waiting."""
        return True

    def rollback(self, ctx: DrillContext, fault: Fault | None) -> None:
        """Always called, after success, failure, timeout or a signal."""

    def recheck(self, env: Environment) -> list[Check]:
        """Scenario-specific steady-state checks after the rollback (e.g. the standby is back)."""
        return []

    def measure(self, ctx: DrillContext, fault: Fault, probe_results: dict[str, Any]) -> Measured:
        """Default: failover measurement from the probes (runner.failover_measure)."""
        from .runner import failover_measure

        return failover_measure(ctx, fault, probe_results, self.judged_by)

    def provider_events(self, ctx: DrillContext, since: datetime) -> list[Any]:
        """Provider events for the timeline (core ports' events(since))."""
        part = ctx.env.cache if self.part == "cache" else ctx.env.database
        return list(part.events(since))

    def make_probes(self, ctx: DrillContext) -> list[Probe]:
        from .runner import api_watch, standard_probes

        return standard_probes(ctx, self.probes) + api_watch(ctx, self.probes)
