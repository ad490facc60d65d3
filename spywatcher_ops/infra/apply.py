"""`infra.apply`: apply a saved plan, after every check that can refuse it.

Refused before anything runs: a plan made for another environment or
workspace, a stale plan (the state moved on since), a stateful destroy not
named by --allow-destroy, a state bucket without versioning. Then, under the
environment lock and in the journal: the state backup (the current state
version id), terraform's streamed output, and what it applied or where it failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.clock import utc_stamp
from ..core.errors import NotReady, OperationFailed, Refused
from ..core.plan import Plan, Step
from ..core.ports import Progress
from .plans import find_saved
from .summary import PlanSummary, check_allow, prior_state, summarize

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..core.environment import Environment
    from ..core.ports import Infrastructure


@dataclass
class ApplyOutcome:
    plan: Plan
    plan_file: Path
    summary: PlanSummary
    applied: bool
    backup: dict[str, Any] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    new_serial: int | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "plan_file": str(self.plan_file),
            "plan": self.plan.to_dict(),
            "summary": self.summary.to_dict(),
            "state_backup": self.backup,
            "resources": self.done,
            "new_serial": self.new_serial,
            "duration_s": self.duration_s,
        }


def check_fresh(plan_file: Path, current: dict[str, Any] | None, env: str) -> None:
    serial, lineage = prior_state(plan_file)
    now_serial = current.get("serial") if current else None
    now_lineage = (current.get("lineage") or None) if current else None
    if current is None and lineage is None:
        return
    if lineage != now_lineage or serial != now_serial:
        raise Refused(
            f"--plan {plan_file.name}: stale; it was made against state serial {serial} "
            f"(lineage {lineage}), the state is now serial {now_serial} (lineage {now_lineage})",
            hint=f"make a new plan: inv infra.plan --env {env}",
        )


def check_versioning(infra: Infrastructure) -> str:
    status = infra.versioning()
    if status not in ("Enabled", "local"):
        d = infra.describe()
        raise NotReady(
            f"state bucket of {d['state']}: versioning is {status}; apply refused (without versions "
            "a bad apply cannot be rolled back)",
            hint="turn it on: aws s3api put-bucket-versioning --bucket BUCKET "
            "--versioning-configuration Status=Enabled",
        )
    return status


def apply_saved(
    environment: Environment,
    infra: Infrastructure,
    *,
    plan_file: str | None,
    allow_destroy: list[str],
    approve: Callable[[Plan], bool],
    on_line: Progress,
) -> ApplyOutcome:
    allow = check_allow(allow_destroy)
    env = environment.name
    path, meta = find_saved(infra, env, plan_file)
    if meta.get("env") != env:
        raise Refused(f"--plan {path.name}: made for environment {meta.get('env')}, not {env}")
    if meta.get("workspace") != infra.workspace():
        raise Refused(
            f"--plan {path.name}: made for workspace {meta.get('workspace')}, this environment uses "
            f"{infra.workspace()}",
            hint=f"make a new plan: inv infra.plan --env {env}",
        )
    infra.prepare()
    summary = summarize(infra.show(path), infra.stateful(), allow)
    if summary.blocked:
        names = ", ".join(f"{c.address} ({c.action})" for c in summary.blocked)
        flags = " ".join(f"--allow-destroy {c.address}" for c in summary.blocked)
        raise Refused(
            f"the plan would {'/'.join(sorted({c.action for c in summary.blocked}))} stateful "
            f"resource(s): {names}; apply refused",
            hint=f"if that is intended, add {flags}",
        )
    check_fresh(path, infra.state(), env)
    versioning = check_versioning(infra)
    totals = summary.totals()
    plan = Plan(f"terraform apply of {path.name} to {env}")
    plan.add(
        Step(
            "terraform",
            "apply",
            {"plan": str(path), "workspace": infra.workspace(), **totals},
            why="the saved plan, exactly as `inv infra.plan` showed it",
        )
    )
    for c in summary.dangerous:
        plan.notes.append(f"STATEFUL {c.action.upper()}: {c.address} (allowed by --allow-destroy)")
    if not approve(plan):
        return ApplyOutcome(plan, path, summary, applied=False)
    args = {"plan": str(path), "allow_destroy": allow, **totals}
    clock = environment.clock
    with environment.operation("infra.apply", args) as op:
        started = clock.monotonic()
        # the state backup: S3 keeps every version; the id of the current one is the way back
        current = infra.state()
        check_fresh(path, current, env)  # again, under the lock
        backup = {
            "versioning": versioning,
            "serial": current.get("serial") if current else None,
            "lineage": current.get("lineage") if current else None,
        }
        backup["version"] = infra.backup_state(utc_stamp(clock.now()))
        op.step("state-backup", "ok", **backup)
        result = infra.apply(path, on_line=on_line)
        duration = round(clock.monotonic() - started, 3)
        op.step(
            "apply",
            "ok" if result.code == 0 else "failed",
            applied=result.applied,
            failed=result.failed,
            errors=result.errors,
            exit_code=result.code,
        )
        if result.code != 0:
            where = ", ".join(result.failed) or "an unnamed resource"
            done = "; ".join(result.applied) or "nothing"
            back = (
                f"; state before the apply: version {backup['version']} (inv infra.state-restore --env {env} "
                f"--version {backup['version']})"
                if backup.get("version")
                else ""
            )
            raise OperationFailed(
                f"terraform apply failed at {where}: {' | '.join(result.errors) or 'see output'}"
                f"; applied before it: {done}{back}"
            )
        after = infra.state()
        new_serial = after.get("serial") if after else None
        if summary.changes and (after is None or new_serial == backup["serial"]):
            raise OperationFailed(
                f"terraform apply exited 0 but the state did not change (serial {new_serial})"
            )
        op.result = {"applied": result.applied, "new_serial": new_serial, "state_backup": backup}
    return ApplyOutcome(
        plan,
        path,
        summary,
        applied=True,
        backup=backup,
        done=result.applied,
        new_serial=new_serial,
        duration_s=duration,
    )
