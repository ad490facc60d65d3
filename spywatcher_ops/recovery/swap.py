"""Put a restored instance under the original name; the old one is kept, renamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInput
from ..core.plan import Plan
from ..core.ports import Progress, SwapResult
from .common import Approver, free_name, known_instance

if TYPE_CHECKING:
    from ..core.environment import Environment

LONG_LIVED = "connections opened before the swap keep talking to the old instance until they reconnect"


@dataclass(frozen=True)
class SwapOutcome:
    plan: Plan
    applied: bool
    replaced_as: str
    result: SwapResult | None = None
    duration_s: float | None = None

    @property
    def warnings(self) -> list[str]:
        """What the provider's plan says about reaching the new instance (e.g. DNS propagation)."""
        return [*self.plan.notes, LONG_LIVED]

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {"applied": self.applied, "replaced_as": self.replaced_as, "duration_s": self.duration_s,
                "instance": r.instance if r else None, "reverse_command": r.reverse_command if r else None,
                "warnings": self.warnings, "plan": self.plan.to_dict()}


def swap(environment: Environment, instance: str | None, *, approve: Approver, progress: Progress) -> SwapOutcome:
    database = environment.database
    source = database.instance_id()
    new = known_instance(environment, instance, flag="--instance")
    if new.id.lower() == source.lower():
        raise BadInput(f"--instance {instance}: that is already the serving instance; name a restored one")
    clock = environment.clock
    taken = {i.id.lower() for i in database.instances()}
    replaced_as = free_name(source, "replaced", clock.now(), taken)
    plan = database.plan_swap(new.id, replaced_as)
    if not approve(plan):
        return SwapOutcome(plan, False, replaced_as)
    with environment.operation("db.swap", {"instance": new.id, "replaced_as": replaced_as}) as op:
        started = clock.monotonic()
        result = database.swap(plan, progress=progress)
        duration = round(clock.monotonic() - started, 1)
        if not result.reverse_command:
            result = SwapResult(result.instance, result.replaced_as,
                                f"inv db.swap --env {environment.name} --instance {result.replaced_as}")
        op.result = {"instance": result.instance, "replaced_as": result.replaced_as,
                     "reverse_command": result.reverse_command}
    return SwapOutcome(plan, True, replaced_as, result, duration)
