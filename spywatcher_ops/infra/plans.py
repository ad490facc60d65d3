"""`infra.plan`: init, plan to a saved file, summary; and finding a saved plan again.

Each plan file `<stamp>.tfplan` gets a `<stamp>.json` beside it saying which
environment, workspace and configuration it was made for, and its summary;
`latest` names the newest. Only such a file is ever applied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.clock import iso, utc_stamp
from ..core.errors import BadInput
from .summary import PlanSummary, check_allow, prior_state, summarize

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import Infrastructure

KEEP_PLANS = 20


@dataclass
class SavedPlan:
    path: Path
    meta: dict[str, Any]
    summary: PlanSummary
    changes: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": str(self.path),
            "changes": self.changes,
            **{
                k: self.meta[k]
                for k in ("env", "workspace", "dir", "created", "terraform", "prior_serial", "prior_lineage")
            },
            "summary": self.summary.to_dict(),
        }


def make_plan(
    environment: Environment,
    infra: Infrastructure,
    *,
    allow_destroy: list[str],
    destroy: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> SavedPlan:
    """`meanwhile`: the caller's work that does not need the plan (its renderer's imports), done
    while terraform plans instead of after it."""
    allow = check_allow(allow_destroy)
    with environment.operation(
        "infra.plan", {"allow_destroy": allow, "destroy": destroy}, mutating=False
    ) as op:
        infra.prepare()
        folder = infra.plans_dir()
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # plans hold state values
        stamp = utc_stamp(environment.clock.now())
        path = folder / f"{stamp}.tfplan"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{stamp}-{n}.tfplan"
        planned = infra.plan(path, destroy=destroy, meanwhile=lambda: _meanwhile(folder, meanwhile))
        changes = planned["changes"]
        summary = summarize(planned, infra.stateful(), allow)
        serial, lineage = prior_state(path)
        info = infra.describe()  # after the plan: its output named the terraform version
        meta = {
            "env": environment.name,
            "workspace": infra.workspace(),
            "dir": info["dir"],
            "created": iso(environment.clock.now()),
            "terraform": info["terraform"],
            "prior_serial": serial,
            "prior_lineage": lineage,
            "totals": summary.totals(),
            "blocked": [c.address for c in summary.blocked],
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        (folder / "latest").write_text(path.name + "\n")
        op.result = {"plan": str(path), "totals": summary.totals(), "blocked": meta["blocked"]}
    return SavedPlan(path, meta, summary, changes)


def _meanwhile(folder: Path, caller: Callable[[], object] | None) -> None:
    """While terraform plans: what does not need the new plan, off the wall clock."""
    import zipfile  # noqa: F401  (prior_state reads the plan file with it: 2-3 ms)

    _prune(folder, KEEP_PLANS - 1)  # the plan being made is the newest (unlinks: ~3 ms each here)
    if caller is not None:
        caller()


def _prune(folder: Path, keep: int) -> None:
    plans = sorted(folder.glob("*.tfplan"), key=lambda p: p.stat().st_mtime)
    for old in plans[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def find_saved(infra: Infrastructure, env: str, plan: str | None) -> tuple[Path, dict[str, Any]]:
    """The plan file to apply (--plan, or the newest made by infra.plan) and its metadata."""
    folder = infra.plans_dir()
    if plan:
        path = Path(plan).expanduser().resolve()
    else:
        pointer = folder / "latest"
        if not pointer.exists():
            raise BadInput(f"no saved plan for {env}; make one with: inv infra.plan --env {env}")
        path = folder / pointer.read_text().strip()
    if not path.is_file():
        raise BadInput(f"--plan {path}: no such file; make one with: inv infra.plan --env {env}")
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise BadInput(
            f"--plan {path}: not a plan made by inv infra.plan (no {meta_path.name} beside it); "
            f"make one with: inv infra.plan --env {env}"
        ) from None
    return path, meta
