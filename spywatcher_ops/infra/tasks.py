"""Terraform: plan, apply a saved plan, drift, state versions and rollback, timed redeploy."""

# Only invoke and core.cli at module level: `inv --list` must not import boto3 or rich.
from __future__ import annotations

from typing import Any

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import DRY_RUN_HELP, ENV_HELP, JSON_HELP, YES_HELP, console, ops_task

ALLOW_HELP = (
    "a stateful resource the plan may destroy or replace, as the plan names it, e.g. "
    "aws_db_instance.main; repeat for several"
)


def _infra(e: Any) -> Any:
    from spywatcher_ops.core.errors import Unsupported

    infra = e.parts.infrastructure()
    if infra is None:
        raise Unsupported(f"environment {e.name} has no Terraform configuration")
    return infra


def _warm(out: Any) -> None:
    """The renderer's start-up (rich: ~25 ms), done while terraform plans instead of after it;
    none when the output is not a terminal (core/plain.py writes what rich would, without it)."""
    import sys

    from spywatcher_ops.core import plain

    if out.plain and plain.usable(sys.stdout) and plain.usable(sys.stderr):
        return  # a summary plain.py cannot reproduce (markup, non-ASCII) still gets rich, after
    if not out.json_mode:
        import rich.table  # noqa: F401  (Console.table imports it)

        out.out.render_str("ready")  # the consoles, built; markup and emoji tables loaded
        _ = out.err


def _render_summary(out: Any, summary: Any) -> None:
    counts = summary.counts()
    if counts:
        out.table(
            ["resource type", "add", "change", "replace", "destroy"],
            [[t, c["add"], c["change"], c["replace"], c["destroy"]] for t, c in counts.items()],
            whole=["resource type"],
        )
    else:
        out.print("no changes: the infrastructure matches the configuration")
    for c in summary.dangerous:
        if c.allowed:
            out.print(f"STATEFUL {c.action.upper()}: {c.address} (allowed by --allow-destroy)")
        else:
            out.failed(
                f"STATEFUL {c.action.upper()}: {c.address}",
                f"apply refuses it unless --allow-destroy {c.address}",
            )
    for c in summary.drift:
        out.print(f"changed outside Terraform: {c.address} ({c.action})")


@ops_task(
    help={
        "env": ENV_HELP,
        "allow_destroy": ALLOW_HELP,
        "destroy": "plan the destruction of everything the "
        "configuration manages (terraform plan -destroy); apply it with infra.apply",
        "json": JSON_HELP,
    },
    iterable=["allow_destroy"],
)
def plan(
    c: Context,
    env: str | None = None,
    allow_destroy: list[str] | None = None,
    destroy: bool = False,
    json: bool = False,
) -> None:
    """Terraform plan into a saved plan file; changes per resource type.

    Runs init (with the environment's backend settings) and `terraform plan -out`,
    and reads its JSON output: adds / changes / replaces / destroys per
    resource type (infra.apply reads the saved file again with `show -json`). A destroy or replace of a stateful resource (ops.terraform
    .stateful) is highlighted; `inv infra.apply` refuses it unless
    --allow-destroy names it. Example: inv infra.plan --env staging
    """
    from spywatcher_ops.infra.plans import make_plan

    out = console(json)
    out.plain = True  # the summary without rich where it is plain text (CPU: ~25 ms less)
    e = environment(c, env)
    infra = _infra(e)
    saved = make_plan(
        e, infra, allow_destroy=list(allow_destroy or []), destroy=destroy, meanwhile=lambda: _warm(out)
    )
    info = infra.describe()
    out.info(
        f"terraform {info['terraform']} in {info['dir']}, workspace {info['workspace']}, state {info['state']}"
    )
    out.emit_json(saved.to_dict())
    _render_summary(out, saved.summary)
    if saved.changes:
        flags = "".join(f" --allow-destroy {ch.address}" for ch in saved.summary.dangerous)
        out.print(f"saved plan: {saved.path}")
        out.print(f"apply it:   inv infra.apply --env {e.name}{flags}")


@ops_task(
    help={
        "env": ENV_HELP,
        "plan": "the saved plan file to apply (default: the newest from inv infra.plan), "
        "e.g. .ops/terraform/staging/plans/20261125T140300Z.tfplan",
        "allow_destroy": ALLOW_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
    iterable=["allow_destroy"],
)
def apply(
    c: Context,
    env: str | None = None,
    plan: str | None = None,
    allow_destroy: list[str] | None = None,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Apply a saved Terraform plan (never a fresh one), guarded and journalled.

    Refused: a plan for another environment or workspace, a stale plan (the
    state changed since), a stateful destroy not named by --allow-destroy, a
    state bucket without versioning. Terraform's output is streamed.
    Example: inv infra.apply --env staging --allow-destroy aws_db_instance.old
    """
    from spywatcher_ops.core.guards import approve

    from .apply import apply_saved

    out = console(json)
    e = environment(c, env)
    infra = _infra(e)
    outcome = apply_saved(
        e,
        infra,
        plan_file=plan,
        allow_destroy=list(allow_destroy or []),
        approve=lambda p: approve(p, e.env, out, dry_run=dry_run, yes=yes, confirm=True),
        on_line=out.info,
    )
    out.emit_json({"dry_run": not outcome.applied, **outcome.to_dict()})
    if not outcome.applied:
        return
    out.print(
        f"applied {outcome.plan_file.name} in {outcome.duration_s:.1f} s: {len(outcome.done)} resource(s); "
        f"state serial {outcome.backup.get('serial')} -> {outcome.new_serial}"
    )
    if outcome.backup.get("version"):
        out.print(
            f"state before it: version {outcome.backup['version']} "
            f"(inv infra.state-restore --env {e.name} --version {outcome.backup['version']})"
        )


@ops_task(help={"env": ENV_HELP, "json": JSON_HELP})
def drift(c: Context, env: str | None = None, json: bool = False) -> None:
    """Check the infrastructure against its Terraform code; exit 1 on drift.

    `terraform plan -detailed-exitcode` into a throw-away plan; lists every
    resource that differs. Changes nothing. Example: inv infra.drift --env production
    """
    from spywatcher_ops.core.errors import VerificationFailed

    from .drift import detect_drift

    out = console(json)
    e = environment(c, env)
    report = detect_drift(e, _infra(e))
    out.emit_json(report.to_dict())
    if not report.drifted:
        out.ok(f"{e.name}: no drift ({report.duration_s:.1f} s)")
        return
    changes = report.summary.changes
    if report.no_state:  # never applied: the code's resources are not Terraform's yet
        added = sum(ch.action == "add" for ch in changes)
        what = f"not under Terraform yet (no state): {added} resource(s) would be created"
    else:
        what = f"drift in {len(changes)} resource(s)"
    out.table(
        ["resource", "type", "would"],
        [[ch.address, ch.type, ch.action] for ch in changes],
        title=f"{e.name}: {len(changes)} resource(s) differ" if not report.no_state else f"{e.name}: {what}",
        whole=["resource"],
    )
    for ch in report.summary.drift:
        out.print(f"changed outside Terraform: {ch.address} ({ch.action})")
    raise VerificationFailed(f"{e.name}: {what}: " + ", ".join(ch.address for ch in changes[:10]))


@ops_task(
    help={
        "env": ENV_HELP,
        "versions": "also list the state's stored versions (time, size, serial, lineage)",
        "json": JSON_HELP,
    }
)
def state(c: Context, env: str | None = None, versions: bool = False, json: bool = False) -> None:
    """Show the Terraform state (serial, lineage, resources) and its versions.

    Example: inv infra.state --env staging --versions
    """
    from spywatcher_ops.core.clock import iso

    from .state import show_state

    out = console(json)
    e = environment(c, env)
    view = show_state(_infra(e), versions=versions)
    data = view.to_dict()
    out.emit_json(data)
    out.print(f"state:     {data['state']} (workspace {data['workspace']}, terraform {data['terraform']})")
    if view.current is None:
        out.print("no state yet (nothing applied)")
    else:
        out.print(f"serial {data['serial']}, lineage {data['lineage']}, {len(data['resources'])} resource(s)")
        for addr in data["resources"]:
            out.print(f"  {addr}")
    if versions:
        out.table(
            ["version", "modified (UTC)", "size", "serial", "lineage", "current"],
            [
                [v.id, iso(v.modified), v.size_bytes, v.serial, v.lineage, "yes" if v.latest else ""]
                for v in view.versions
            ],
            title=f"{len(view.versions)} version(s)",
            whole=["version"],
        )


@ops_task(
    help={
        "env": ENV_HELP,
        "version": "the state version to go back to, from inv infra.state --versions, "
        "e.g. 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    }
)
def state_restore(
    c: Context,
    env: str | None = None,
    version: str = "",
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Roll the Terraform state back to an earlier version; the current is kept.

    Shows what differs first and asks. Only the state changes; the next
    infra.plan shows what it takes to make the resources match it again.
    Example: inv infra.state-restore --env staging --version 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY
    """
    from spywatcher_ops.core.guards import approve

    from .state import restore_state

    out = console(json)
    e = environment(c, env)
    outcome = restore_state(
        e,
        _infra(e),
        version=version,
        approve=lambda p: approve(p, e.env, out, dry_run=dry_run, yes=yes, confirm=True),
    )
    out.emit_json({"dry_run": not outcome.applied, **outcome.to_dict()})
    if outcome.applied:
        out.print(
            f"state rolled back to {version}: now serial {outcome.new_serial}; "
            f"the version before it is kept: {outcome.kept}"
        )


@ops_task(
    help={
        "env": ENV_HELP,
        "to": "restore the database to this time (ISO 8601 with a zone, e.g. "
        "2026-11-25T14:03:00Z) or 'latest' (default)",
        "resume": "skip the stages an interrupted or failed earlier run finished (from the journal)",
        "allow_destroy": ALLOW_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
    iterable=["allow_destroy"],
)
def redeploy(
    c: Context,
    env: str | None = None,
    to: str = "latest",
    resume: bool = False,
    allow_destroy: list[str] | None = None,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Full rebuild, stage by stage, each timed against targets.rto.infrastructure.

    Stages: infrastructure (terraform plan + apply), cluster, database (restore,
    db.verify, db.swap), cache, applications; a part the environment lacks is
    skipped. The environment lock is held for the whole rebuild. A failed stage
    stops it saying what is done and not; a killed one is reported by the next
    run, and --resume skips what finished.
    Example: inv infra.redeploy --env staging --to 2026-11-25T14:03:00Z
    """
    from spywatcher_ops.core.errors import TargetMissed
    from spywatcher_ops.core.guards import approve

    from .redeploy import RedeployContext, StageFailed, check_stages
    from .redeploy import redeploy as run_redeploy

    out = console(json)
    e = environment(c, env)
    infra = _infra(e)
    tf = e.env.raw.get("terraform") or {}
    common = e.settings.section("terraform")
    stages = check_stages(tf.get("redeploy_stages"))
    ctx = RedeployContext(
        e,
        infra,
        to,
        list(allow_destroy or []),
        on_line=out.info,
        progress=_changes(out.info),
        timeout_s=float(common.get("stage_timeout_seconds", 1800)),
    )
    try:
        outcome = run_redeploy(
            ctx,
            stages=stages,
            resume=resume,
            approve=lambda p: approve(p, e.env, out, dry_run=dry_run, yes=yes, confirm=True),
        )
    except StageFailed as failed:
        _render_stages(out, failed.outcome)
        raise
    if not outcome.applied:
        out.emit_json({"dry_run": True, **outcome.to_dict()})
        return
    _render_stages(out, outcome)
    if outcome.met is False:
        raise TargetMissed(
            f"rebuild took {outcome.total_s:.1f} s, over targets.rto.infrastructure {outcome.target_s:.0f} s"
        )


def _render_stages(out: Any, outcome: Any) -> None:
    out.emit_json(outcome.to_dict())
    rows = [
        [s.name, s.status, "" if s.duration_s is None else f"{s.duration_s:.1f}", s.detail]
        for s in outcome.stages
    ]
    target = outcome.target_s
    verdict = "" if outcome.met is None else ("MET" if outcome.met else "MISSED")
    rows.append(["total", verdict, f"{outcome.total_s:.1f}", f"target {target:.0f} s" if target else ""])
    out.table(["stage", "status", "seconds", "detail"], rows, title="rebuild, stage by stage")


def _changes(say: Any) -> Any:
    """A progress callback that prints a status only when it differs from the last one."""
    last = [""]

    def update(status: str) -> None:
        if status != last[0]:
            last[0] = status
            say(status)

    return update
