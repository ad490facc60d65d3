"""Every database instance of an environment: the live one and those this toolkit made
(restores, the instances a swap replaced), so a restore made for an investigation is not
forgotten and keeps costing money. Read-only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..core.ports import Instance

if TYPE_CHECKING:
    from ..core.environment import Environment


@dataclass(frozen=True)
class InstanceRow:
    id: str
    status: str
    created: str | None
    operation: str  # what made it: "live", "db.restore of ... to ...", "db.swap: replaced on ..."
    endpoint: str
    cost_class: str
    live: bool
    ours: bool  # made by this toolkit: the only ones db.delete accepts
    delete_command: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _belongs(inst: Instance, env: str, project: str) -> bool:
    tags = inst.details.get("tags") or {}
    return tags.get("Environment") == env or inst.id.startswith(f"{project}-{env}-")


def _operation(inst: Instance, live: str) -> str:
    tags = inst.details.get("tags") or {}
    if inst.id == live:
        return "live: serves the application"
    if "-replaced-" in inst.id:  # first: what it was made by matters less than why it no longer serves
        return f"db.swap: the instance {live} replaced"
    if inst.details.get("origin"):  # the sandbox records what a restore started from
        return f"db.restore of {inst.details['origin']}"
    if tags.get("RestoredFrom"):
        return f"db.restore of {tags['RestoredFrom']} to {tags.get('RestorePoint', '?')}"
    return "not made by this toolkit"


def _cost_class(inst: Instance, kind: str) -> str:
    if kind == "sandbox":
        return "local processes (no charge)"
    d = inst.details
    parts = [str(d.get("class") or "?"), "Multi-AZ (x2)" if inst.multi_az else "single-AZ"]
    if d.get("allocated_gib"):
        parts.append(f"{d['allocated_gib']} GiB {d.get('storage_type') or ''}".strip())
    return ", ".join(parts)


def list_instances(environment: Environment) -> list[InstanceRow]:
    db = environment.database
    live = db.instance_id()
    project = environment.settings.project
    # the sandbox's state is that environment's own: every instance in it belongs (a restore
    # named `x` too); a cloud account is shared, so there tags or the name decide
    sandbox = environment.kind == "sandbox"
    mine = [i for i in db.instances() if i.id == live or sandbox or _belongs(i, environment.name, project)]
    rows = []
    for inst in mine:
        is_live = inst.id == live
        ours = inst.created_by_us  # what db.delete accepts: a db.delete command is offered for nothing else
        rows.append(
            InstanceRow(
                id=inst.id,
                status=inst.status,
                created=inst.details.get("created"),
                operation=_operation(inst, live),
                endpoint=f"{inst.host}:{inst.port}" if inst.host else "",
                cost_class=_cost_class(inst, environment.kind),
                live=is_live,
                ours=bool(ours),
                delete_command=None
                if is_live or not ours
                else f"inv db.delete --env {environment.name} --instance {inst.id}",
            )
        )
    rows.sort(key=lambda r: r.created or "", reverse=True)  # newest first (ISO 8601 UTC sorts as text)
    rows.sort(key=lambda r: not r.live)  # stable: the live one on top
    return rows
