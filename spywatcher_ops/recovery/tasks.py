"""Database snapshots, point-in-time restore, verify, swap and failover."""

# Only invoke and core.cli at module level: `inv --list` must not import boto3,
# psycopg or rich. Each task imports its domain module when it runs.
from __future__ import annotations

from typing import Any

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import (
    DRY_RUN_HELP,
    ENV_HELP,
    JSON_HELP,
    YES_HELP,
    console,
    ops_task,
)
from spywatcher_ops.core.errors import VerificationFailed


def _approver(env: Any, out: Any, *, dry_run: bool, yes: bool, confirm: bool = False) -> Any:
    from spywatcher_ops.core.guards import approve

    return lambda plan: approve(plan, env.env, out, dry_run=dry_run, yes=yes, confirm=confirm)


def _dry(out: Any, outcome: Any) -> bool:
    """Render a dry run (the plan was shown by the guard); True when nothing was applied."""
    if outcome.applied:
        return False
    out.emit_json({"dry_run": True, **outcome.to_dict()})
    return True


@ops_task(
    help={
        "env": ENV_HELP,
        "label": "what the snapshot is for; part of its name and its Purpose tag, e.g. pre-deploy (default: manual)",
        "copy_to_region": "also copy it to this region, encrypted with environments.<env>.kms_keys[region], e.g. us-west-2",
        "wait": "wait until the snapshot is available (default); --no-wait returns once it is started",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    }
)
def snapshot(
    c: Context,
    env: str | None = None,
    label: str = "manual",
    copy_to_region: str | None = None,
    wait: bool = True,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Take a manual database snapshot now (tagged, waited on), e.g. before a risky change.

    The snapshot is named {project}-{environment}-{label}-{UTC stamp} and tagged
    Environment, Project, CostCenter, ManagedBy=spywatcher-ops and Purpose.
    Example: inv db.snapshot --env staging --label pre-deploy --copy-to-region us-west-2
    """
    from .snapshot import take_snapshot
    from .snapshots import human_size

    out = console(json)
    e = environment(c, env)
    with out.progress(f"snapshot of {e.name}") as progress:
        outcome = take_snapshot(
            e,
            label=label,
            copy_to_region=copy_to_region,
            wait=wait,
            approve=_approver(e, out, dry_run=dry_run, yes=yes),
            progress=progress,
        )
    if _dry(out, outcome):
        return
    snap = outcome.snapshot
    assert snap is not None
    out.emit_json(outcome.to_dict())
    out.print(
        f"snapshot {snap.id}: {snap.status}, size {human_size(snap.size_bytes)}, "
        f"took {outcome.duration_s:.1f} s"
    )
    if outcome.copy_to_region:
        out.print(f"copy {snap.id} in {outcome.copy_to_region}: available")


@ops_task(help={"env": ENV_HELP, "json": JSON_HELP})
def snapshots(c: Context, env: str | None = None, json: bool = False) -> None:
    """List the database's snapshots (manual and automated): age, size, status, ours or not.

    Example: inv db.snapshots --env staging --json
    """
    from spywatcher_ops.core.clock import iso

    from .snapshots import human_age, human_size, list_snapshots

    out = console(json)
    found = list_snapshots(environment(c, env))
    out.emit_json([r.to_dict() for r in found])
    out.table(
        ["id", "type", "created (UTC)", "age", "size", "status", "made by us"],
        [
            [
                r.snapshot.id,
                r.snapshot.kind,
                iso(r.snapshot.created),
                human_age(r.age_s),
                human_size(r.snapshot.size_bytes),
                r.snapshot.status,
                "yes" if r.snapshot.ours else "no",
            ]
            for r in found
        ],
        title=f"{len(found)} snapshot(s)",
        whole=["id"],
    )


@ops_task(help={"env": ENV_HELP, "dry_run": DRY_RUN_HELP, "yes": YES_HELP, "json": JSON_HELP})
def prune(
    c: Context, env: str | None = None, dry_run: bool = False, yes: bool = False, json: bool = False
) -> None:
    """Delete old snapshots this toolkit made, per ops.retention (7 days, keep at least 3, never the newest).

    Only manual snapshots tagged ManagedBy=spywatcher-ops are candidates; the
    plan (what goes, and why each other one stays) is shown first.
    Example: inv db.prune --env staging --dry-run
    """
    from spywatcher_ops.core.clock import iso

    from .prune import prune as run_prune

    out = console(json)
    e = environment(c, env)
    outcome = run_prune(e, approve=_approver(e, out, dry_run=dry_run, yes=yes))
    decision = outcome.decision
    out.table(
        ["id", "created (UTC)", "decision"],
        [[s.id, iso(s.created), "DELETE"] for s in decision.delete]
        + [[s.id, iso(s.created), f"keep: {why}"] for s, why in decision.keep],
        title=f"retention {outcome.retention_days} days, keep at least {outcome.keep_min}",
        whole=["id"],
    )
    out.emit_json({"dry_run": dry_run, **outcome.to_dict()})
    if not decision.delete:
        out.print("nothing to prune")
    elif outcome.applied:
        out.print(f"deleted {len(decision.delete)} snapshot(s)")


@ops_task(help={"env": ENV_HELP, "json": JSON_HELP})
def window(c: Context, env: str | None = None, json: bool = False) -> None:
    """Show the restorable window (earliest and latest restorable time) and the backup retention.

    Example: inv db.window --env staging
    """
    from spywatcher_ops.core.clock import iso

    from .window import restorable_window

    out = console(json)
    w = restorable_window(environment(c, env))
    out.emit_json(
        {
            "earliest": iso(w.earliest),
            "latest": iso(w.latest),
            "retention_days": w.retention_days,
            "gap": w.gap,
        }
    )
    out.print(f"earliest restorable: {iso(w.earliest)}")
    out.print(f"latest restorable:   {iso(w.latest)}")
    out.print(f"backup retention:    {w.retention_days} days")
    if w.gap:
        out.warn(
            f"the WAL archive has a gap: segment {w.gap} is missing, so nothing after "
            f"{iso(w.latest)} can be restored from the newest base backup; take a new snapshot "
            "(inv db.snapshot) to restore later points"
        )


@ops_task(
    help={
        "env": ENV_HELP,
        "to": "restore point: ISO 8601 time with a zone inside the window (inv db.window), "
        "e.g. 2026-11-25T14:03:00Z, or 'latest'",
        "from_snapshot": "restore this snapshot instead of a point in time (not with --to), "
        "e.g. spywatcher-staging-pre-deploy-20261125t140300z",
        "name": "identifier of the NEW instance (1-63 letters, digits, hyphens); "
        "default {instance}-restored-{UTC stamp}",
        "verify": "run db.verify on the new instance when it is available",
        "keep_failed": "if the restore fails or is interrupted, keep the new instance (stopped, marked failed) "
        "for inspection instead of rolling it back; remove it later with inv db.delete --instance NAME",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    }
)
def restore(
    c: Context,
    env: str | None = None,
    to: str | None = None,
    from_snapshot: str | None = None,
    name: str | None = None,
    verify: bool = False,
    keep_failed: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Restore the database to a point in time, into a new instance with the source's settings.

    The source is never touched. The new instance gets the source's subnet
    group, security groups, parameter group, Multi-AZ, class, storage, KMS key,
    tags, deletion protection and monitoring. The time is checked against the
    restorable window before any call.
    Example: inv db.restore --env staging --to 2026-11-25T14:03:00Z --name spywatcher-staging-db-fix --verify
    """
    from .restore import RestoreRequest
    from .restore import restore as run_restore

    out = console(json)
    e = environment(c, env)
    request = RestoreRequest(to=to, from_snapshot=from_snapshot, name=name, keep_failed=keep_failed)
    with out.progress(f"restore into a new instance on {e.name}") as progress:
        outcome = run_restore(
            e, request, approve=_approver(e, out, dry_run=dry_run, yes=yes), progress=progress
        )
    if _dry(out, outcome):
        return
    inst = outcome.instance
    assert inst is not None
    data = outcome.to_dict()
    report = None
    if verify:
        from .verify import verify as run_verify

        report = run_verify(e, inst.id, as_of=outcome.restore_point)
        data["verify"] = report.to_dict()
    out.emit_json(data)
    out.print(
        f"restored {inst.id}: {inst.status} at {inst.host}:{inst.port}, took {outcome.duration_s:.1f} s"
    )
    out.print(f"check it:      inv db.verify --env {e.name} --instance {inst.id}")
    out.print(f"put it in use: inv db.swap --env {e.name} --instance {inst.id}")
    if report is not None:
        _render_report(out, report)


def _render_report(out: Any, report: Any) -> None:
    for check in report.checks:
        if check.ok is False:
            out.failed(f"{check.name}: {check.detail}", check.hint)
        elif check.ok is None:
            out.print(f"SKIPPED {check.name}: {check.detail}")
        else:
            out.ok(f"{check.name}: {check.detail}")
    if not report.ok:
        names = ", ".join(c.name for c in report.failed)
        raise VerificationFailed(f"{report.instance}: {len(report.failed)} check(s) failed: {names}")


@ops_task(
    help={
        "env": ENV_HELP,
        "instance": "the instance to check, e.g. spywatcher-staging-db-restored-20261125t1500z",
        "json": JSON_HELP,
    }
)
def verify(c: Context, env: str | None = None, instance: str | None = None, json: bool = False) -> None:
    """Check a database instance (TLS on AWS): version, schema, tables, data freshness, counts vs source.

    Prints OK or FAILED (with a hint) per check; exit 1 when one failed.
    Example: inv db.verify --env staging --instance spywatcher-staging-db-restored-20261125t150000z
    """
    from .verify import verify as run_verify

    out = console(json)
    e = environment(c, env)
    report = run_verify(e, instance)
    out.emit_json(report.to_dict())
    out.print(f"verify {report.instance} ({report.target})")
    _render_report(out, report)


@ops_task(
    help={
        "env": ENV_HELP,
        "instance": "the restored instance to put under the original name, "
        "e.g. spywatcher-staging-db-restored-20261125t150000z",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    }
)
def swap(
    c: Context,
    env: str | None = None,
    instance: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Put a restored instance under the original name; the old one is kept as {name}-replaced-{stamp}.

    Only an available instance with a passed db.verify recorded since it was restored (or the
    instance an earlier swap replaced) is put in service; exit 2 otherwise, nothing touched.
    Asks for confirmation. Waits for both renames and prints the command that reverses it; a
    swap that fails once started puts the original back by itself (exit 4).
    Example: inv db.swap --env staging --instance spywatcher-staging-db-restored-20261125t150000z
    """
    from .swap import swap as run_swap

    out = console(json)
    e = environment(c, env)
    with out.progress(f"swap on {e.name}") as progress:
        outcome = run_swap(
            e, instance, approve=_approver(e, out, dry_run=dry_run, yes=yes, confirm=True), progress=progress
        )
    if _dry(out, outcome):
        return
    result = outcome.result
    assert result is not None
    out.emit_json(outcome.to_dict())
    out.print(
        f"{result.instance} is now the restored instance; the previous one is {result.replaced_as} "
        f"(took {outcome.duration_s:.1f} s)"
    )
    for warning in outcome.warnings:
        out.warn(warning)
    out.print(f"to reverse: {result.reverse_command}")


@ops_task(
    help={
        "env": ENV_HELP,
        "instance": "the instance to delete: one this toolkit created, never the live one, "
        "e.g. spywatcher-staging-db-restored-20261125t150000z",
        "final_snapshot": "take a final snapshot {instance}-final-{stamp} before deleting (AWS; default); "
        "--no-final-snapshot skips it. The sandbox keeps none and says so",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    }
)
def delete(
    c: Context,
    env: str | None = None,
    instance: str | None = None,
    final_snapshot: bool = True,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Delete a database instance this toolkit created (a restore, a failed restore, a replaced one).

    Refuses the live instance and any instance the toolkit did not create (exit 2).
    Asks for confirmation; on AWS a final snapshot is taken unless --no-final-snapshot.
    Example: inv db.delete --env staging --instance spywatcher-staging-db-restored-20261125t150000z
    """
    from .delete import delete as run_delete

    out = console(json)
    e = environment(c, env)
    with out.progress(f"delete on {e.name}") as progress:
        outcome = run_delete(
            e,
            instance,
            final_snapshot=final_snapshot,
            approve=_approver(e, out, dry_run=dry_run, yes=yes, confirm=True),
            progress=progress,
        )
    if _dry(out, outcome):
        return
    out.emit_json(outcome.to_dict())
    kept = f"; final snapshot {outcome.final_snapshot}" if outcome.final_snapshot else ""
    out.print(f"deleted {outcome.instance} (took {outcome.duration_s:.1f} s){kept}")


@ops_task(help={"env": ENV_HELP, "dry_run": DRY_RUN_HELP, "yes": YES_HELP, "json": JSON_HELP})
def failover(
    c: Context, env: str | None = None, dry_run: bool = False, yes: bool = False, json: bool = False
) -> None:
    """Force a Multi-AZ failover of the database to its standby; prints the provider's events.

    Asks for confirmation; connections drop while the standby takes over.
    Example: inv db.failover --env staging --yes
    """
    from spywatcher_ops.core.clock import iso

    from .failover import failover as run_failover

    out = console(json)
    e = environment(c, env)
    with out.progress(f"failover on {e.name}") as progress:
        outcome = run_failover(
            e, approve=_approver(e, out, dry_run=dry_run, yes=yes, confirm=True), progress=progress
        )
    if _dry(out, outcome):
        return
    result = outcome.result
    assert result is not None
    out.emit_json(outcome.to_dict())
    out.print(f"failover done in {outcome.duration_s:.1f} s: {result.old_primary} -> {result.new_primary}")
    for warning in result.warnings:
        out.warn(warning)
    if not result.events:
        out.print("no provider events reported yet for this failover")
    for event in result.events:
        code = f"{event.code} " if event.code else ""
        out.print(f"  {iso(event.at)}  {code}{event.message}")
