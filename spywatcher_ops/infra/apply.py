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
    guard(summary)
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
    with environment.operation("infra.apply", args) as op:
        done = execute(
            environment, infra, path, summary, versioning=versioning, step=op.step, on_line=on_line
        )
        op.result = {"applied": done.applied, "new_serial": done.new_serial, "state_backup": done.backup}
    return ApplyOutcome(
        plan,
        path,
        summary,
        applied=True,
        backup=done.backup,
        done=done.applied,
        new_serial=done.new_serial,
        duration_s=done.duration_s,
    )


@dataclass
class Executed:
    applied: list[str]
    backup: dict[str, Any]
    new_serial: int | None
    duration_s: float


def execute(
    environment: Environment,
    infra: Infrastructure,
    path: Path,
    summary: PlanSummary,
    *,
    versioning: str,
    step: Callable[..., None],
    on_line: Progress,
) -> Executed:
    """Apply a checked saved plan inside an operation the caller holds (its lock and journal):
    the state backup first, then terraform's streamed apply, then the state read back."""
    clock = environment.clock
    env = environment.name
    started = clock.monotonic()
    current = infra.state()
    check_fresh(path, current, env)  # again, under the lock
    backup = {
        "versioning": versioning,
        "serial": current.get("serial") if current else None,
        "lineage": current.get("lineage") if current else None,
    }
    # S3 keeps every version: the id of the current one is the way back; locally, a copy
    backup["version"] = infra.backup_state(utc_stamp(clock.now()))
    step("state-backup", "ok", **backup)
    result = infra.apply(path, on_line=on_line)
    duration = round(clock.monotonic() - started, 3)
    step(
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
        raise OperationFailed(f"terraform apply exited 0 but the state did not change (serial {new_serial})")
    return Executed(result.applied, backup, new_serial, duration)


def guard(summary: PlanSummary) -> None:
    """Refuse a plan that destroys or replaces a stateful resource --allow-destroy does not name."""
    if summary.blocked:
        names = ", ".join(f"{c.address} ({c.action})" for c in summary.blocked)
        flags = " ".join(f"--allow-destroy {c.address}" for c in summary.blocked)
        raise Refused(
            f"the plan would {'/'.join(sorted({c.action for c in summary.blocked}))} stateful "
            f"resource(s): {names}; apply refused",
            hint=f"if that is intended, add {flags}",
        )


def plan_and_apply(
    environment: Environment,
    infra: Infrastructure,
    *,
    allow_destroy: list[str],
    step: Callable[..., None],
    on_line: Progress,
    destroy: bool = False,
    before_apply: Callable[[PlanSummary], None] | None = None,
) -> tuple[PlanSummary, Executed | None]:
    """Plan to a file and apply exactly that file, with every guard, inside an operation the caller
    already holds (a drill: its lock and journal). Nothing to change: (summary, None)."""
    allow = check_allow(allow_destroy)
    infra.prepare()
    folder = infra.plans_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{'destroy' if destroy else 'apply'}-{utc_stamp(environment.clock.now())}.tfplan"
    try:
        planned = infra.plan(path, destroy=destroy)
        changes = planned["changes"]
        summary = summarize(planned, infra.stateful(), allow) if changes else PlanSummary()
        step("plan", "ok", plan=str(path), destroy=destroy, totals=summary.totals())
        if not changes:
            return summary, None
        guard(summary)
        versioning = check_versioning(infra)
        if before_apply is not None:
            before_apply(summary)
        return summary, execute(
            environment, infra, path, summary, versioning=versioning, step=step, on_line=on_line
        )
    finally:
        path.unlink(missing_ok=True)
