"""db.instances (and, next to it, the other tasks of issue 16 on the database): kept apart from
recovery/tasks.py so the root collection adds them to the `db` namespace."""

# Only invoke and core.cli at module level: `inv --list` must not import boto3, psycopg or rich.
from __future__ import annotations

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import DRY_RUN_HELP, ENV_HELP, JSON_HELP, YES_HELP, console, ops_task


@ops_task(help={"env": ENV_HELP, "json": JSON_HELP})
def instances(c: Context, env: str | None = None, json: bool = False) -> None:
    """Every database instance of the environment: the live one and those the toolkit restored.

    Name, status, created, by which operation, endpoint and cost class; each
    instance the toolkit made that no longer serves comes with its db.delete
    command, so a restore made for an investigation is not forgotten. Read-only.
    Example: inv db.instances --env staging
    """
    from .instances import list_instances

    out = console(json)
    e = environment(c, env)
    rows = list_instances(e)
    out.emit_json({"env": e.name, "instances": [r.to_dict() for r in rows]})
    out.table(
        ["instance", "status", "created (UTC)", "made by", "endpoint", "cost class"],
        [
            [r.id, r.status, (r.created or "-")[:19].replace("T", " "), r.operation, r.endpoint, r.cost_class]
            for r in rows
        ],
        title=f"{len(rows)} database instance(s) on {e.name}",
        whole=["instance"],
    )
    extra = [r for r in rows if r.delete_command]
    if extra:
        out.print(f"{len(extra)} instance(s) made by the toolkit no longer serve; when they are not needed:")
        for r in extra:
            out.print(f"  {r.delete_command}")


@ops_task(
    name="rotate-credentials",
    help={
        "env": ENV_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def rotate_credentials(
    c: Context, env: str | None = None, dry_run: bool = False, yes: bool = False, json: bool = False
) -> None:
    """Rotate the database password (Secrets Manager), verify a login with it, then make it current.

    With rotation configured on the secret, its rotation runs; otherwise a new
    random password is stored AWSPENDING, set on the database, logged in with,
    and only then moved to AWSCURRENT. A new password that does not log in is
    undone: the old one stays current (exit 4), nobody is locked out. Prints
    the deployments to restart so they read the new password.
    Example: inv db.rotate-credentials --env staging --dry-run
    """
    from spywatcher_ops.core.guards import approve

    from .credentials import rotate

    out = console(json)
    e = environment(c, env)
    with out.progress(f"password rotation on {e.name}") as progress:
        outcome = rotate(
            e,
            approve=lambda plan: approve(plan, e.env, out, dry_run=dry_run, yes=yes, confirm=True),
            progress=progress,
        )
    out.emit_json({"dry_run": not outcome.applied, **outcome.to_dict()})
    if not outcome.applied:
        return
    where = (
        f"AWSCURRENT in {outcome.secret} (version {outcome.new_version})"
        if e.kind == "aws"
        else f"current in {outcome.secret}"
    )
    out.ok(
        f"{outcome.username}: new password set ({outcome.method}), logged in with, and {where}; "
        f"took {outcome.duration_s:.1f} s"
    )
    if not outcome.restart:
        out.print("no deployments to restart here: clients that connect through the toolkit read the new one")
        return
    out.print("restart what reads the secret at start, so it uses the new password:")
    for short in outcome.restart:
        out.print(f"  inv app.restart --env {e.name} --deployment {short}")
