"""What a saved plan would do, read from `terraform show -json`, and the destroy guard.

Counts per resource type (add / change / replace / destroy), every change by
address, and the stateful resources (config `stateful`: types, or TYPE.NAME
addresses) a plan would destroy or replace: those block the apply unless
`--allow-destroy TYPE.NAME` names each one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BadInput

ACTIONS = ("add", "change", "replace", "destroy")
_ADDRESS = re.compile(r"^(module\.[\w-]+(\[[^\]]+\])?\.)*(data\.)?[a-zA-Z][\w-]*\.[\w-]+(\[[^\]]+\])?$")


def action_of(actions: list[str]) -> str | None:
    """Terraform's action list -> one of ACTIONS, or None for no-op / read / forget."""
    kinds = set(actions)
    if kinds == {"create"}:
        return "add"
    if kinds == {"update"}:
        return "change"
    if kinds == {"delete", "create"}:
        return "replace"
    if kinds == {"delete"}:
        return "destroy"
    return None


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    name: str
    action: str
    stateful: bool = False
    allowed: bool = False  # named by --allow-destroy

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "type": self.type,
            "name": self.name,
            "action": self.action,
            "stateful": self.stateful,
            "allowed": self.allowed,
        }


@dataclass
class PlanSummary:
    changes: list[Change] = field(default_factory=list)
    drift: list[Change] = field(default_factory=list)  # changed outside Terraform (refresh)

    def counts(self) -> dict[str, dict[str, int]]:
        """{type: {add, change, replace, destroy}}, types sorted."""
        out: dict[str, dict[str, int]] = {}
        for c in self.changes:
            out.setdefault(c.type, dict.fromkeys(ACTIONS, 0))[c.action] += 1
        return dict(sorted(out.items()))

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(ACTIONS, 0)
        for c in self.changes:
            totals[c.action] += 1
        return totals

    @property
    def dangerous(self) -> list[Change]:
        return [c for c in self.changes if c.stateful and c.action in ("replace", "destroy")]

    @property
    def blocked(self) -> list[Change]:
        return [c for c in self.dangerous if not c.allowed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals(),
            "by_type": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
            "stateful_destroys": [c.to_dict() for c in self.dangerous],
            "blocked": [c.address for c in self.blocked],
            "drift": [c.to_dict() for c in self.drift],
        }


def _bare(address: str) -> str:
    """module.a.aws_db_instance.main[0] -> aws_db_instance.main (what --allow-destroy names)."""
    parts = re.sub(r"\[[^\]]*\]", "", address).split(".")
    return ".".join(parts[-2:])


def is_stateful(rtype: str, address: str, stateful: list[str]) -> bool:
    return rtype in stateful or address in stateful or _bare(address) in stateful


def check_allow(values: list[str]) -> list[str]:
    for v in values:
        if not _ADDRESS.match(v):
            raise BadInput(
                f"--allow-destroy {v}: not a resource address; use TYPE.NAME as the plan names it, "
                "e.g. aws_db_instance.main"
            )
    return list(values)


def _allowed(address: str, allow: list[str]) -> bool:
    return address in allow or _bare(address) in allow


def summarize(plan_json: dict[str, Any], stateful: list[str], allow: list[str]) -> PlanSummary:
    summary = PlanSummary()
    for rc in plan_json.get("resource_changes") or []:
        if rc.get("mode") == "data":
            continue
        action = action_of(list((rc.get("change") or {}).get("actions") or []))
        if action is None:
            continue
        address = str(rc["address"])
        summary.changes.append(
            Change(
                address,
                str(rc["type"]),
                str(rc["name"]),
                action,
                stateful=is_stateful(str(rc["type"]), address, stateful),
                allowed=_allowed(address, allow),
            )
        )
    for rc in plan_json.get("resource_drift") or []:
        actions = list((rc.get("change") or {}).get("actions") or [])
        summary.drift.append(
            Change(
                str(rc["address"]),
                str(rc.get("type", "")),
                str(rc.get("name", "")),
                action_of(actions) or "+".join(actions),
            )
        )
    return summary


def prior_state(plan_file: Path) -> tuple[int | None, str | None]:
    """(serial, lineage) of the state a saved plan was made against: the `tfstate` member of the
    plan file (a zip). Lineage '' / serial 0 means there was no state yet."""
    import zipfile  # here: `make_plan` imports it while terraform plans

    try:
        with zipfile.ZipFile(plan_file) as z:
            doc = json.loads(z.read("tfstate"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BadInput(f"--plan {plan_file}: not a saved Terraform plan ({exc})") from None
    return doc.get("serial"), doc.get("lineage") or None
