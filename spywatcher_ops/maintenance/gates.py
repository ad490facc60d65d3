"""The run's pre-checks a plan configures (`prechecks:` in the plan, or per
environment, maintenance/README.md), asked with the fixed ones of prechecks.py
before anything changes:

- the standby fit to take over: answering, in recovery, replaying the primary's
  newest WAL within `standby_max_lag_s` (a frozen standby keeps its pid and
  looks healthy from the primary: only asking it shows it);
- `infra_drift`: the environment's Terraform configuration against the real
  infrastructure (`inv infra.drift`): a drifted resource refuses the run, by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import OpsError
from . import prechecks
from .steps import Check, Setting

if TYPE_CHECKING:
    from ..core.environment import Environment

SETTINGS: dict[str, Setting] = {
    "standby_max_lag_s": Setting(
        float,
        5.0,
        "seconds the standby may take to replay a WAL record the primary writes at the pre-check",
        0.1,
        600,
    ),
    "infra_drift": Setting(
        bool,
        False,
        "refuse the run when inv infra.drift finds resources that differ from the Terraform code",
    ),
}
DRIFT_NAMES_SHOWN = 10


def defaults() -> dict[str, Any]:
    return {k: s.default for k, s in SETTINGS.items()}


def standby(env: Environment, max_lag_s: float) -> Check:
    try:
        found = env.parts.maintenance().standby_ready(max_lag_s)
    except OpsError as exc:
        return Check("standby ready", "failed", exc.message, hint=exc.hint)
    return Check("standby ready", "ok", found)


def drift(env: Environment) -> Check:
    from ..infra.drift import detect_drift

    infra = env.parts.infrastructure()
    if infra is None:
        return Check(
            "infrastructure drift",
            "failed",
            f"{env.name} has no Terraform configuration to compare",
            hint=f"set ops.environments.{env.name}.terraform.dir, or infra_drift: false in the plan",
        )
    try:
        report = detect_drift(env, infra)
    except OpsError as exc:
        return Check("infrastructure drift", "failed", f"infra.drift failed: {exc.message}", hint=exc.hint)
    if not report.drifted:
        return Check("infrastructure drift", "ok", f"none ({report.duration_s:.1f} s)")
    names = [c.address for c in report.summary.changes] or [c.address for c in report.summary.drift]
    more = len(names) - DRIFT_NAMES_SHOWN
    # Never applied: the resources are not Terraform's yet, which is not the same news as drift.
    what = (
        "not under Terraform yet (no state), would be created"
        if report.no_state
        else "differ from the Terraform code"
    )
    return Check(
        "infrastructure drift",
        "failed",
        f"{len(names)} resource(s) {what}: "
        + ", ".join(names[:DRIFT_NAMES_SHOWN])
        + (f" and {more} more" if more > 0 else ""),
        hint=f"see `inv infra.drift --env {env.name}`; reconcile (inv infra.plan / infra.apply) before maintenance",
    )


def run_checks(
    env: Environment, runs: list[dict[str, Any]], *, needs_cache: bool, settings: dict[str, Any]
) -> list[Check]:
    """The fixed pre-checks, then the configured ones. The standby is asked only when the
    database answered (its failure says more); drift only when the plan asks for it."""
    conf = {**defaults(), **settings}
    checks = prechecks.all_checks(env, runs, needs_cache=needs_cache)
    db = next((c for c in checks if c.name == "database healthy"), None)
    if db is not None and db.ok:
        checks.append(standby(env, float(conf["standby_max_lag_s"])))
    if conf["infra_drift"]:
        checks.append(drift(env))
    return checks
