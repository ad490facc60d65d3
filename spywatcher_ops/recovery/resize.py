"""Manual vertical scaling of the database and the cache, now or in the maintenance window,
with the client impact measured by the drill probes (readers: a resize writes nothing).

- RDS: `modify_db_instance(DBInstanceClass=..., ApplyImmediately=now)`; Multi-AZ applies it to
  the standby first and fails over, so clients see one short failover.
- ElastiCache: `modify_replication_group(CacheNodeType=..., ApplyImmediately=now)`.
- Sandbox database: the class becomes PostgreSQL memory settings (shared_buffers at 25 % of the
  class's memory, as RDS does, scaled 1:16 so the sandbox fits on a laptop), queued as
  pending-reboot changes and applied with the maintenance job's rolling restart (standby first,
  clean switchover, old primary follows); `--when window` leaves them for `inv maint.run`.

A class the toolkit does not know is refused before any call (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInput, TimedOut, Unsupported
from ..core.plan import Plan, Step
from ..core.ports import Progress, Scaling, no_progress
from ..core.waiting import wait_for
from .classes import CACHE_NODE_TYPES, DB_CLASSES

if TYPE_CHECKING:
    from ..core.environment import Environment

WHEN = ("now", "window")
SANDBOX_SCALE = 16  # sandbox memory = class memory / 16
Approve = Callable[[Plan], bool]


@dataclass
class ResizeOutcome:
    applied: bool
    plan: Plan
    part: str  # "database" | "cache"
    resource: str
    old: str
    new: str
    when: str
    pending: bool = False  # queued for the maintenance window, not applied yet
    impact: dict[str, Any] = field(default_factory=dict)  # probe -> impairment (maintenance/impact.py)
    duration_s: float = 0.0
    settings: dict[str, str] = field(default_factory=dict)  # sandbox: the PostgreSQL settings applied

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "part": self.part,
            "resource": self.resource,
            "old": self.old,
            "new": self.new,
            "when": self.when,
            "pending": self.pending,
            "impact": self.impact,
            "duration_s": round(self.duration_s, 3),
            "settings": self.settings,
            "plan": self.plan.to_dict(),
        }


def check_class(value: str | None, known: dict[str, float], option: str) -> str:
    if not value:
        raise BadInput(f"{option} is required, e.g. {option} {_examples(known)}")
    if value not in known:
        raise BadInput(
            f"{option} {value}: not a class the toolkit knows; accepted: {', '.join(sorted(known))}"
        )
    return value


def _examples(known: dict[str, float]) -> str:
    return "db.t3.large" if "db.t3.large" in known else "cache.t3.medium"


def check_when(when: str) -> str:
    if when not in WHEN:
        raise BadInput(f"--when {when}: use now (apply and wait) or window (the next maintenance window)")
    return when


def sandbox_settings(db_class: str) -> dict[str, str]:
    memory_mb = DB_CLASSES[db_class] * 1024 / SANDBOX_SCALE
    return {"shared_buffers": f"{max(16, int(memory_mb * 0.25))}MB"}


def _interval(environment: Environment) -> float:
    return float(environment.settings.section("aws").get("poll_seconds", 3))


# -- database ------------------------------------------------------------------------------
def plan_db_resize(environment: Environment, db_class: str, when: str) -> tuple[Plan, dict[str, Any]]:
    check_class(db_class, DB_CLASSES, "--class")
    check_when(when)
    db = environment.database
    instance = db.instance_id()
    if environment.kind == "sandbox":
        settings = sandbox_settings(db_class)
        current = _sandbox_class(environment)
        if _sandbox_has(environment, settings):
            # as on RDS: a resize to what runs already would restart both nodes for nothing
            raise BadInput(
                f"--class {db_class}: {instance} already runs with "
                f"{', '.join(f'{k}={v}' for k, v in settings.items())}; nothing to do"
            )
        plan = Plan(
            f"resize {instance} to {db_class} ({when}): {', '.join(f'{k}={v}' for k, v in settings.items())}"
        )
        for name, value in settings.items():
            plan.add(
                Step(
                    "sandbox",
                    "queue_change",
                    {"parameter": name, "value": value},
                    why=f"pending-reboot, like an RDS parameter group ({db_class} scaled 1:{SANDBOX_SCALE})",
                )
            )
        if when == "now":
            plan.add(Step("sandbox", "restart_standby", {"parameters": settings}, why="the standby first"))
            plan.add(Step("sandbox", "switchover", {}, why="clean switchover: nothing lost, a short pause"))
            plan.add(
                Step(
                    "sandbox",
                    "restart_as_standby",
                    {"parameters": settings},
                    why="the old primary follows the new one",
                )
            )
        else:
            plan.notes.append(
                "applied by the next `inv maint.run` in the window (`inv maint.pending` shows it)"
            )
        return plan, {"instance": instance, "old": current, "settings": settings}
    sizing = environment.scaling.database_size(instance)
    current = sizing.size
    if current == db_class:
        raise BadInput(f"--class {db_class}: {instance} already is {db_class}; nothing to do")
    plan = Plan(f"resize {instance} from {current} to {db_class} ({when})")
    plan.add(
        Step(
            "rds",
            "modify_db_instance",
            {
                "DBInstanceIdentifier": instance,
                "DBInstanceClass": db_class,
                "ApplyImmediately": when == "now",
            },
            why="Multi-AZ: the standby is resized first, then a failover"
            if sizing.multi_az
            else "single-AZ: the instance is unavailable while it is resized",
        )
    )
    if when == "window":
        plan.notes.append(f"applied in the instance's maintenance window ({sizing.window})")
    return plan, {"instance": instance, "old": current}


def _sandbox_class(environment: Environment) -> str:
    """What the sandbox runs with now, in the terms of the settings a class maps to."""
    import psycopg

    db: Any = environment.database
    with psycopg.connect(**db.admin_connection().kwargs(), connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('shared_buffers')").fetchone()
    return f"shared_buffers={row[0] if row else '?'}"


def _sandbox_has(environment: Environment, settings: dict[str, str]) -> bool:
    """Whether the primary runs with these memory settings now (compared as sizes: 1GB == 1024MB)."""
    import psycopg

    db: Any = environment.database
    with psycopg.connect(**db.admin_connection().kwargs(), connect_timeout=5, autocommit=True) as conn:
        for name, value in settings.items():
            row = conn.execute(
                "SELECT pg_size_bytes(current_setting(%s)) = pg_size_bytes(%s)", (name, value)
            ).fetchone()
            if not (row and row[0]):
                return False
    return True


def db_resize(
    environment: Environment,
    db_class: str,
    when: str,
    *,
    approve: Approve,
    progress: Progress = no_progress,
    timeout: float = 3600,
) -> ResizeOutcome:
    plan, ctx = plan_db_resize(environment, db_class, when)
    outcome = ResizeOutcome(
        False, plan, "database", ctx["instance"], ctx["old"], db_class, when, settings=ctx.get("settings", {})
    )
    if not approve(plan):
        return outcome
    started = environment.clock.monotonic()
    with environment.operation("db.resize", {"class": db_class, "when": when}) as op:
        if environment.kind == "sandbox":
            maintenance = environment.parts.maintenance()
            for name, value in ctx["settings"].items():
                op.step("queue_change", "ok", change=maintenance.queue_change(name, value))
            if when == "now":
                with Measure(environment, cache=False) as measure:
                    result = maintenance.database_maintenance(
                        maintenance.plan_database_maintenance(), progress=progress
                    )
                outcome.impact = measure.impact
                op.step("rolling_restart", "ok", details=result.details)
            outcome.pending = when == "window"
        else:
            scaling = environment.scaling
            with Measure(environment, cache=False, enabled=when == "now") as measure:
                scaling.resize_database(ctx["instance"], db_class, now=when == "now")
                op.step("modify_db_instance", "ok", klass=db_class, apply_immediately=when == "now")
                if when == "now":
                    _wait_db(environment, scaling, ctx["instance"], db_class, timeout, progress)
            outcome.impact = measure.impact
            outcome.pending = when == "window"
        outcome.applied = True
        outcome.duration_s = environment.clock.monotonic() - started
        op.result = {"old": ctx["old"], "new": db_class, "when": when, "impact": outcome.impact}
    return outcome


def _wait_db(
    environment: Environment,
    scaling: Scaling,
    instance: str,
    db_class: str,
    timeout: float,
    progress: Progress,
) -> None:
    def resized() -> tuple[bool, None, str]:
        now = scaling.database_size(instance)
        return now.status == "available" and now.size == db_class, None, f"{now.status}, class {now.size}"

    try:
        wait_for(
            resized,
            clock=environment.clock,
            timeout=timeout,
            interval=_interval(environment),
            what=f"{instance} to be available as {db_class}",
            progress=progress,
        )
    except TimedOut as exc:
        raise TimedOut(
            f"{exc}; the change is applied by RDS and goes on: watch it with inv db.instances"
        ) from None


# -- cache ---------------------------------------------------------------------------------
def plan_cache_resize(environment: Environment, node_type: str, when: str) -> tuple[Plan, dict[str, Any]]:
    check_class(node_type, CACHE_NODE_TYPES, "--node-type")
    check_when(when)
    scaling = environment.parts.scaling()
    if scaling is None:
        raise Unsupported(
            f"environment {environment.name} ({environment.kind}): its Redis has no node type; "
            "cache.resize scales ElastiCache (an aws environment)"
        )
    sizing = scaling.cache_size()
    group_id, current = sizing.resource, sizing.size
    if current == node_type:
        raise BadInput(f"--node-type {node_type}: {group_id} already is {node_type}; nothing to do")
    plan = Plan(f"resize {group_id} from {current} to {node_type} ({when})")
    plan.add(
        Step(
            "elasticache",
            "modify_replication_group",
            {
                "ReplicationGroupId": group_id,
                "CacheNodeType": node_type,
                "ApplyImmediately": when == "now",
            },
            why="ElastiCache adds nodes of the new type, syncs them and switches (a short failover)",
        )
    )
    return plan, {"group": group_id, "old": current}


def cache_resize(
    environment: Environment,
    node_type: str,
    when: str,
    *,
    approve: Approve,
    progress: Progress = no_progress,
    timeout: float = 3600,
    measure: bool = True,
) -> ResizeOutcome:
    plan, ctx = plan_cache_resize(environment, node_type, when)
    outcome = ResizeOutcome(False, plan, "cache", ctx["group"], ctx["old"], node_type, when)
    if not approve(plan):
        return outcome
    started = environment.clock.monotonic()
    scaling = environment.scaling
    with environment.operation("cache.resize", {"node_type": node_type, "when": when}) as op:
        with Measure(environment, cache=True, enabled=measure and when == "now") as measured:
            scaling.resize_cache(ctx["group"], node_type, now=when == "now")
            op.step("modify_replication_group", "ok", node_type=node_type, apply_immediately=when == "now")
            if when == "now":

                def resized() -> tuple[bool, None, str]:
                    now = scaling.cache_size()
                    return (
                        now.status == "available" and now.size == node_type,
                        None,
                        f"{now.status}, {now.size}",
                    )

                wait_for(
                    resized,
                    clock=environment.clock,
                    timeout=timeout,
                    interval=_interval(environment),
                    what=f"{ctx['group']} to be available as {node_type}",
                    progress=progress,
                )
        outcome.impact = measured.impact
        outcome.applied, outcome.pending = True, when == "window"
        outcome.duration_s = environment.clock.monotonic() - started
        op.result = {"old": ctx["old"], "new": node_type, "when": when, "impact": outcome.impact}
    return outcome


# -- client impact ---------------------------------------------------------------------------
class Measure:
    """Reader probes (the drills' own) around the change; `impact` is what clients felt.
    A probe that cannot start (unreachable endpoint) is reported as not measured."""

    def __init__(self, environment: Environment, *, cache: bool, enabled: bool = True) -> None:
        self.environment, self.cache, self.enabled = environment, cache, enabled
        self.probes: list[Any] = []
        self.impact: dict[str, Any] = {}
        self.t0 = 0.0

    def __enter__(self) -> Measure:
        if not self.enabled:
            return self
        from ..drills.probes import Anchor, Cadence, PgReader, RedisReader

        self.cadence = Cadence()
        self.anchor = Anchor.from_clock(self.environment.clock)
        try:
            if self.cache:
                self.probes = [RedisReader(self.environment.cache.endpoint(), self.anchor, self.cadence)]
            else:
                self.probes = [PgReader(self.environment.database.connection(), self.anchor, self.cadence)]
        except Exception as exc:  # noqa: BLE001 - no measurement is reported as such, not as a failure
            self.impact = {"not_measured": str(exc)[:200]}
            return self
        for p in self.probes:
            p.start()
        self.t0 = self.anchor.now()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.probes:
            return
        import time

        from ..maintenance.impact import impairment

        time.sleep(self.cadence.interval * 3)  # a few attempts after the change: did clients come back?
        t1 = self.anchor.now()
        for p in self.probes:
            p.stop()
        self.impact = {
            p.name: impairment(p.attempts(), self.t0, t1, self.cadence.interval) for p in self.probes
        }
