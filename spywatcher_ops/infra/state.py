"""`infra.state` and `infra.state-restore`: the state's versions, and rolling the state back.

A rollback writes the chosen version's content as a NEW state version (serial
one above the current, same lineage) with `terraform state push`, through
Terraform's own lock: the current version stays in the bucket's history, so
the rollback can itself be rolled back. A version of another lineage belongs
to another state and is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInput, NotReady, OperationFailed, Refused
from ..core.plan import Plan, Step
from ..core.ports import StateVersion

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..core.environment import Environment
    from ..core.ports import Infrastructure


def instances(state: dict[str, Any] | None) -> dict[str, Any]:
    """address -> attributes of every resource instance in a state document."""
    out: dict[str, Any] = {}
    for r in (state or {}).get("resources") or []:
        base = ".".join(
            p
            for p in (
                r.get("module"),
                "data" if r.get("mode") == "data" else None,
                r.get("type"),
                r.get("name"),
            )
            if p
        )
        for inst in r.get("instances") or []:
            key = inst.get("index_key")
            addr = base if key is None else f"{base}[{json.dumps(key)}]"
            out[addr] = inst.get("attributes")
    return out


def state_diff(current: dict[str, Any] | None, target: dict[str, Any] | None) -> list[str]:
    """What rolling `current` back to `target` changes, one line per resource instance:
    `+ addr` comes back, `- addr` goes away, `~ addr` has other attributes."""
    now, then = instances(current), instances(target)
    lines = [f"+ {a}" for a in sorted(set(then) - set(now))]
    lines += [f"- {a}" for a in sorted(set(now) - set(then))]
    lines += [f"~ {a}" for a in sorted(set(now) & set(then)) if now[a] != then[a]]
    if (current or {}).get("outputs") != (target or {}).get("outputs"):
        lines.append("~ outputs")
    return lines


@dataclass
class StateView:
    info: dict[str, Any]
    current: dict[str, Any] | None
    versions: list[StateVersion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        cur = self.current or {}
        return {
            **self.info,
            "serial": cur.get("serial"),
            "lineage": cur.get("lineage"),
            "resources": sorted(instances(self.current)),
            "versions": [
                {
                    "id": v.id,
                    "modified": v.modified,
                    "size_bytes": v.size_bytes,
                    "serial": v.serial,
                    "lineage": v.lineage,
                    "latest": v.latest,
                }
                for v in self.versions
            ],
        }


def show_state(infra: Infrastructure, *, versions: bool) -> StateView:
    return StateView(infra.describe(), infra.state(), infra.state_versions() if versions else [])


@dataclass
class RestoreOutcome:
    plan: Plan
    applied: bool
    diff: list[str]
    kept: str | None = None
    new_serial: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "plan": self.plan.to_dict(),
            "diff": self.diff,
            "kept_version": self.kept,
            "new_serial": self.new_serial,
        }


def restore_state(
    environment: Environment, infra: Infrastructure, *, version: str, approve: Callable[[Plan], bool]
) -> RestoreOutcome:
    env = environment.name
    if not version or not version.strip():
        raise BadInput(f"--version: give a version id from inv infra.state --env {env} --versions")
    infra.prepare()
    current = infra.state()
    if current is None:
        raise NotReady(f"{env} has no Terraform state yet; nothing to roll back")
    target = infra.state_version(version)
    if target.get("lineage") != current.get("lineage"):
        raise Refused(
            f"--version {version}: lineage {target.get('lineage')} is not the current state's "
            f"({current.get('lineage')}); it is another state, not an earlier version of this one"
        )
    diff = state_diff(current, target)
    if not diff:
        raise BadInput(
            f"--version {version}: same resources and outputs as the current state "
            f"(serial {current.get('serial')}); nothing to roll back"
        )
    new_serial = int(current.get("serial") or 0) + 1
    plan = Plan(f"roll the Terraform state of {env} back to version {version}")
    plan.add(
        Step(
            "terraform",
            "state push",
            {
                "version": version,
                "from_serial": target.get("serial"),
                "new_serial": new_serial,
                "lineage": current.get("lineage"),
            },
            why="writes that version's content as a new state version; the current one is kept",
        )
    )
    plan.notes.extend(f"state change: {line}" for line in diff)
    plan.notes.append("only the state changes: real resources stay as they are until the next apply")
    if not approve(plan):
        return RestoreOutcome(plan, applied=False, diff=diff)
    with environment.operation("infra.state-restore", {"version": version}) as op:
        current = infra.state()  # again, under the lock
        if current is None or current.get("lineage") != target.get("lineage"):
            raise Refused("the state changed while waiting for the confirmation; run the command again")
        new_serial = int(current.get("serial") or 0) + 1
        kept = infra.backup_state(f"before-restore-{version}")
        op.step("kept", "ok", version=kept, serial=current.get("serial"))
        infra.push_state({**target, "serial": new_serial})
        after = infra.state()
        # terraform may count the push itself (serial + 1 again): what matters is newer and same content
        if not after or int(after.get("serial") or 0) < new_serial or state_diff(after, target):
            raise OperationFailed(
                f"state push reported success but the state is serial "
                f"{(after or {}).get('serial')}, not the restored version; kept version: {kept}"
            )
        new_serial = int(after["serial"])
        op.result = {"restored": version, "kept_version": kept, "new_serial": new_serial}
    return RestoreOutcome(plan, applied=True, diff=diff, kept=kept, new_serial=new_serial)
