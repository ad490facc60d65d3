"""db.instances (and, next to it, the other tasks of issue 16 on the database): kept apart from
recovery/tasks.py so the root collection adds them to the `db` namespace."""

# Only invoke and core.cli at module level: `inv --list` must not import boto3, psycopg or rich.
from __future__ import annotations

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import ENV_HELP, JSON_HELP, console, ops_task


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
