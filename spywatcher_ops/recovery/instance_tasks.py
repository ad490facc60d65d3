"""db.instances (and, next to it, the other tasks of issue 16 on the database): kept apart from
recovery/tasks.py so the root collection adds them to the `db` namespace."""

# Only invoke and core.cli at module level: `inv --list` must not import boto3, psycopg or rich.
from __future__ import annotations

import sys
from typing import Any

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
        "restart": "then restart the deployments that read the secret (app.restart, asks first), e.g. --restart; "
        "without it they are listed and, at a terminal, offered",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def rotate_credentials(
    c: Context,
    env: str | None = None,
    restart: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
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
    if not restart and not json and not yes and sys.stdin.isatty():
        restart = input(f"Restart {', '.join(outcome.restart)} now? [y/N] ").strip().lower() in ("y", "yes")
    if restart:
        from .credentials import restart_readers

        with out.progress(f"restarting {', '.join(outcome.restart)}") as progress:
            done = restart_readers(
                e,
                outcome,
                progress=progress,
                approve=lambda plan: approve(plan, e.env, out, dry_run=False, yes=yes),
            )
        for data in done:
            out.ok(f"{data['name']} restarted; {data.get('ready')} of {data.get('desired')} ready")


WHEN_HELP = (
    "now (apply and wait, measuring the client impact) or window (the next maintenance window), e.g. now"
)
TIMEOUT_HELP = "seconds to wait for the resize to finish, e.g. 3600 (default)"


def _resize(
    c: Context,
    env: str | None,
    part: str,
    value: str | None,
    known: dict[str, float],
    option: str,
    run: Any,
    when: str,
    timeout: int,
    dry_run: bool,
    yes: bool,
    json: bool,
) -> None:
    """What db.resize and cache.resize share: check the input, build the environment, run, render."""
    from spywatcher_ops.core.cli import check_timeout
    from spywatcher_ops.core.guards import approve

    from .resize import check_class, check_when

    check_class(value, known, option)
    check_when(when)
    check_timeout(timeout)
    out = console(json)
    e = environment(c, env)
    with out.progress(f"{part} resize on {e.name}") as progress:
        outcome = run(
            e,
            str(value),
            when,
            progress=progress,
            timeout=timeout,
            approve=lambda plan: approve(plan, e.env, out, dry_run=dry_run, yes=yes, confirm=True),
        )
    _render_resize(out, outcome, e.name)


def _render_resize(out: Any, outcome: Any, env: str) -> None:
    from spywatcher_ops.maintenance.impact import sentence

    out.emit_json({"dry_run": not outcome.applied, **outcome.to_dict()})
    if not outcome.applied:
        return
    if outcome.pending:
        out.ok(f"{outcome.resource}: {outcome.new} queued for the maintenance window (was {outcome.old})")
        return
    out.ok(f"{outcome.resource}: now {outcome.new} (was {outcome.old}); took {outcome.duration_s:.1f} s")
    if "not_measured" in outcome.impact:
        out.warn(f"client impact not measured: {outcome.impact['not_measured']}")
    else:
        out.print(f"client impact: {sentence('the resize', outcome.impact, {})}")


@ops_task(
    help={
        "env": ENV_HELP,
        "class_": "the new RDS instance class, e.g. db.t3.large (on the sandbox: its memory settings)",
        "when": WHEN_HELP,
        "timeout": TIMEOUT_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def resize(
    c: Context,
    env: str | None = None,
    class_: str | None = None,
    when: str = "now",
    timeout: int = 3600,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Change the database's instance class, now or in the maintenance window; report the client impact.

    AWS: modify_db_instance (Multi-AZ: the standby first, then a failover).
    Sandbox: the class becomes PostgreSQL memory settings applied by the
    maintenance job's rolling restart. A class that does not exist is exit 2.
    Example: inv db.resize --env staging --class db.t3.large --when window
    """
    from .classes import DB_CLASSES
    from .resize import db_resize

    _resize(c, env, "database", class_, DB_CLASSES, "--class", db_resize, when, timeout, dry_run, yes, json)


@ops_task(
    name="resize",
    help={
        "env": ENV_HELP,
        "node_type": "the new ElastiCache node type, e.g. cache.t3.medium",
        "when": WHEN_HELP,
        "timeout": TIMEOUT_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def cache_resize(
    c: Context,
    env: str | None = None,
    node_type: str | None = None,
    when: str = "now",
    timeout: int = 3600,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Change the cache's node type (ElastiCache), now or in the maintenance window; report the client impact.

    A node type that does not exist is exit 2; the sandbox's Redis has no node type (exit 2).
    Example: inv cache.resize --env staging --node-type cache.t3.medium
    """
    from .classes import CACHE_NODE_TYPES
    from .resize import cache_resize as run_resize

    _resize(
        c,
        env,
        "cache",
        node_type,
        CACHE_NODE_TYPES,
        "--node-type",
        run_resize,
        when,
        timeout,
        dry_run,
        yes,
        json,
    )
