"""What the failover scenarios of the database and cache families share: the opening
(both kinds, in the default suite, recovery within 60 s), the failover asked of the
part's port with the fault instant moved to the one the provider reports, and the
failover-result step in the journal. No scenario is registered here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.plan import Plan
from ..runner import mark_fault
from ..scenario import DrillContext, DrillOptions, Fault, Scenario

if TYPE_CHECKING:
    from ...core.environment import Environment
    from ...core.ports import Cache, Database, FailoverResult


def at_provider_fault(ctx: DrillContext, fault: Fault, events: list[Any]) -> None:
    """Move the fault instant from "we asked" to "it happened" when the provider
    reports the instant (the sandbox's `fault` event: the SIGKILL itself)."""
    killed = [e.at.timestamp() for e in events if e.code == "fault"]
    if killed and fault.at <= killed[0] <= (fault.done_at or ctx.now()):
        fault.details["requested_at"] = fault.at
        fault.at = killed[0]
        ctx.step("fault", "injected", t=fault.at, description=fault.description, **fault.details)


def failover_result(ctx: DrillContext, result: Any) -> None:
    """Journal what a port's failover() reported (old and new primary, its own start and end)."""
    ctx.step(
        "failover-result",
        "ok",
        old_primary=result.old_primary,
        new_primary=result.new_primary,
        started=result.started,
        finished=result.finished,
    )


class PartFailover(Scenario):
    """A failover of the part's port (env.database or env.cache), on both kinds of environment.
    Subclasses set `part` and the part's probes, and give `port`."""

    kinds = ("sandbox", "aws")
    default_for = ("sandbox", "aws")
    timeout_s = 60.0

    def port(self, env: Environment) -> Database | Cache:
        raise NotImplementedError

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        return self.port(env).plan_failover()

    def failover(self, ctx: DrillContext) -> tuple[Fault, FailoverResult]:
        """The fault is the failover itself: marked when asked, moved to the provider's instant."""
        port = self.port(ctx.env)
        plan = port.plan_failover()
        fault = mark_fault(ctx, plan.title)
        result = port.failover(plan, progress=ctx.progress)
        fault.done_at = ctx.now()
        at_provider_fault(ctx, fault, result.events)
        return fault, result

    def inject(self, ctx: DrillContext) -> Fault:
        fault, result = self.failover(ctx)
        failover_result(ctx, result)
        return fault
