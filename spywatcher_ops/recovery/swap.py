"""Put a restored instance under the original name; the old one is kept, renamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInput, Refused
from ..core.plan import Plan
from ..core.ports import Instance, Progress, SwapResult
from .common import Approver, free_name, known_instance

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class SwapOutcome:
    plan: Plan
    applied: bool
    replaced_as: str
    result: SwapResult | None = None
    duration_s: float | None = None

    @property
    def warnings(self) -> list[str]:
        """What the provider's plan says about reaching the new instance (DNS propagation, what
        happens to connections opened before the swap: each backend says what is true of it)."""
        return list(self.plan.notes)

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "applied": self.applied,
            "replaced_as": self.replaced_as,
            "duration_s": self.duration_s,
            "instance": r.instance if r else None,
            "reverse_command": r.reverse_command if r else None,
            "warnings": self.warnings,
            "plan": self.plan.to_dict(),
        }


def standing(records: list[dict[str, Any]], instance_id: str) -> str | None:
    """What the journal says about `instance_id` now: "verified" (a passed db.verify since it
    was last created, swapped or deleted), "replaced" (a successful db.swap took it out of
    service, untouched since), or None."""
    state: str | None = None
    target = instance_id.lower()
    for rec in records:
        op, event = rec.get("op"), rec.get("event")
        args, result = rec.get("args") or {}, rec.get("result") or {}
        if (
            event == "start"
            and op in ("db.restore", "db.swap", "db.delete")
            and target in {str(args.get(k, "")).lower() for k in ("name", "instance", "replaced_as")}
        ):
            state = None  # rebuilt, moved or deleted: an earlier verification says nothing about it now
        elif event == "end" and op == "db.verify" and str(result.get("instance", "")).lower() == target:
            state = "verified" if rec.get("outcome") == "ok" and result.get("ok") else None
        elif (
            event == "end"
            and op == "db.swap"
            and rec.get("outcome") == "ok"
            and str(result.get("replaced_as", "")).lower() == target
        ):
            state = "replaced"
    return state


def check_swappable(environment: Environment, new: Instance) -> str:
    """The guard: only an available instance with a recorded, passed `db.verify` (or a pair
    this toolkit swapped out, to reverse a swap) is put in service. Refused otherwise (exit 2)."""
    from ..core.journal import read

    how = standing(read(environment.journal.path), new.id)
    flag = f"--instance {new.id}"
    if how == "replaced":
        if new.status not in ("available", "stopped"):
            raise Refused(
                f"{flag}: it was swapped out earlier but is {new.status} now; it is not put in service"
            )
        return "it served before and was swapped out by db.swap (reverse)"
    if new.status != "available":
        raise Refused(
            f"{flag}: the instance is {new.status}, not available; only an available, verified "
            "instance is put in service",
            hint=f"restore again, or inspect it; `inv db.delete --env {environment.name} --instance "
            f"{new.id}` removes it",
        )
    if how != "verified":
        raise Refused(
            f"{flag}: no passed db.verify of it is recorded since it was last created or touched by "
            "db.restore, db.swap (a rolled-back one too: it ran on the endpoint) or db.delete; "
            "it is not put in service unchecked",
            hint=f"run `inv db.verify --env {environment.name} --instance {new.id}` first",
        )
    return "available, and verified by db.verify"


def swap(
    environment: Environment, instance: str | None, *, approve: Approver, progress: Progress
) -> SwapOutcome:
    database = environment.database
    source = database.instance_id()
    new = known_instance(environment, instance, flag="--instance")
    if new.id.lower() == source.lower():
        raise BadInput(f"--instance {instance}: that is already the serving instance; name a restored one")
    why = check_swappable(environment, new)
    clock = environment.clock
    taken = {i.id.lower() for i in database.instances()}
    replaced_as = free_name(source, "replaced", clock.now(), taken)
    plan = database.plan_swap(new.id, replaced_as)
    if not approve(plan):
        return SwapOutcome(plan, False, replaced_as)
    with environment.operation(
        "db.swap", {"instance": new.id, "replaced_as": replaced_as, "guard": why}
    ) as op:
        started = clock.monotonic()
        result = database.swap(plan, progress=progress)
        duration = round(clock.monotonic() - started, 1)
        if not result.reverse_command:
            result = SwapResult(
                result.instance,
                result.replaced_as,
                f"inv db.swap --env {environment.name} --instance {result.replaced_as}",
            )
        op.result = {
            "instance": result.instance,
            "replaced_as": result.replaced_as,
            "reverse_command": result.reverse_command,
        }
    return SwapOutcome(plan, True, replaced_as, result, duration)
