"""Cache (Redis / ElastiCache) status and failover."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoke import Context

from ..backends.table import environment
from ..core.cli import DRY_RUN_HELP, ENV_HELP, JSON_HELP, YES_HELP, console, ops_task
from ..core.clock import iso

if TYPE_CHECKING:  # `inv --list` imports this module: keep it to invoke and core.cli
    from ..core.console import Console
    from ..core.ports import CacheNode, FailoverResult

NODE_GROUP_HELP = (
    "node group (shard) to fail over, e.g. 0001; needed only when the replication group has "
    "several (the sandbox has one, named after the sentinel master)"
)

SENTINEL_PHASES = ("+sdown", "+odown", "+elected-leader", "+promoted-slave", "+switch-master")


@ops_task(help={"env": ENV_HELP, "json": JSON_HELP})
def status(c: Context, env: str | None = None, json: bool = False) -> None:
    """Show cache nodes: role, address, health, replication lag.

    Example: inv cache.status --env staging --json
    """
    out = console(json)
    environment_ = environment(c, env)
    nodes = environment_.cache.status()
    render_status(out, environment_.name, environment_.kind, nodes)


@ops_task(
    help={
        "env": ENV_HELP,
        "node_group": NODE_GROUP_HELP,
        "yes": YES_HELP,
        "dry_run": DRY_RUN_HELP,
        "json": JSON_HELP,
    }
)
def failover(
    c: Context,
    env: str | None = None,
    node_group: str | None = None,
    yes: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Fail over the cache to its replica; wait for writes.

    Sandbox: SIGKILL the Redis primary, wait for the sentinels to promote the
    replica and for a sentinel-following client to write, then restart the old
    primary as a replica. AWS: ElastiCache TestFailover (refused when the
    24-hour quota is used up), then wait for ElastiCache's failover events.
    Example: inv cache.failover --env staging --dry-run
    """
    out = console(json)
    environment_ = environment(c, env)
    cache = environment_.cache
    plan = cache.plan_failover(node_group=node_group)
    from ..core.guards import approve

    if not approve(plan, environment_.env, out, dry_run=dry_run, yes=yes, confirm=True):
        out.emit_json({"dry_run": True, "plan": plan.to_dict()})
        return
    with environment_.operation("cache.failover", {"node_group": node_group}) as op:
        with out.progress(f"cache failover on {environment_.name}") as update:
            result = cache.failover(plan, progress=update)
        op.result = failover_dict(result)
    render_failover(out, result)


# rendering ---------------------------------------------------------------------
def node_dict(node: CacheNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "role": node.role,
        "host": node.host,
        "port": node.port,
        "alive": node.alive,
        "details": node.details,
    }


def render_status(out: Console, env: str, kind: str, nodes: list[CacheNode]) -> None:
    out.emit_json({"env": env, "kind": kind, "nodes": [node_dict(n) for n in nodes]})
    if kind == "aws":
        first = nodes[0].details if nodes else {}
        out.print(
            f"replication group {first.get('replication_group', '?')}: {first.get('group_status', '?')}; "
            f"automatic failover {first.get('automatic_failover', '?')}; Multi-AZ {first.get('multi_az', '?')}; "
            f"cluster mode {first.get('cluster_mode', '?')}"
        )
        rows = [
            [
                n.details.get("node_group"),
                n.id,
                n.role,
                f"{n.host}:{n.port}" if n.host else "",
                n.details.get("status"),
                "yes" if n.alive else "NO",
                n.details.get("zone"),
            ]
            for n in nodes
        ]
        out.table(
            ["shard", "node", "role", "address", "status", "alive", "zone"], rows, title=f"cache on {env}"
        )
        return
    rows = []
    for n in nodes:
        d = n.details
        lag = f"{d.get('lag_bytes')} B/{d.get('lag_s')} s" if n.role == "replica" else ""
        link = d.get("link") or ""
        if n.role == "sentinel" and n.alive:
            link = f"master {d.get('master', '')}"
        rows.append([n.id, n.role, n.port, "yes" if n.alive else "NO", d.get("offset", ""), lag, link])
    hosts = ", ".join(sorted({n.host for n in nodes}))
    # pids, flags and sentinel peer counts are in --json
    out.table(
        ["node", "role", "port", "alive", "offset", "lag", "link"], rows, title=f"cache on {env} ({hosts})"
    )


def failover_dict(result: FailoverResult) -> dict[str, Any]:
    return {
        "old_primary": result.old_primary,
        "new_primary": result.new_primary,
        "started": iso(result.started),
        "finished": iso(result.finished),
        "duration_s": round((result.finished - result.started).total_seconds(), 3),
        "events": [
            {
                "at": iso(e.at),
                "after_s": _after(e.at, result.started),
                "source": e.source,
                "code": e.code,
                "message": e.message,
            }
            for e in result.events
        ],
    }


def render_failover(out: Console, result: FailoverResult) -> None:
    data = failover_dict(result)
    out.emit_json(data)
    # Sentinels log a dozen state changes; the table keeps the phases (all are in --json).
    rows = [
        [f"{e['after_s']:+.3f}", (e["at"] or "")[11:23], e["code"] or "", e["source"]]
        for e in data["events"]
        if not e["source"].startswith("sentinel") or e["code"] in SENTINEL_PHASES
    ]
    out.table(["after s", "UTC", "event", "source"], rows, title="failover timeline")
    out.ok(
        f"{result.new_primary} is the primary (was {result.old_primary}); "
        f"clients wrote again {data['duration_s']:.3f} s after the failover started"
    )


def _after(at: datetime, start: datetime) -> float:
    return round((at - start).total_seconds(), 3)
