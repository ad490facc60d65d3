"""EKS cluster nodes: list, drain with PodDisruptionBudgets respected, uncordon."""

from __future__ import annotations

from invoke import Context

from ..backends.table import environment
from ..core.cli import (
    DRY_RUN_HELP,
    ENV_HELP,
    JSON_HELP,
    YES_HELP,
    check_timeout,
    console,
    ops_task,
    settings,
)
from . import render

# NODE is positional (the issue's `inv cluster.drain NODE`); invoke still accepts `--node NODE`.
NODE_HELP = (
    "node name as `inv cluster.nodes` shows it, e.g. ip-10-0-1-10.ec2.internal (positional, or --node NAME)"
)


@ops_task(auto_shortflags=False, help={"env": ENV_HELP, "json": JSON_HELP})
def nodes(c: Context, env: str | None = None, json: bool = False) -> None:
    """List nodes: zone, kubelet version, AMI, cordoned, pod count.

    Example: inv cluster.nodes --env staging --json
    """
    from .nodes import listing

    con = console(json)
    data = listing(environment(c, env))
    con.emit_json(data)
    render.nodes(con, data)


# `node` defaults to None: invoke only fills a positional whose value is still None
@ops_task(
    auto_shortflags=False,
    positional=["node"],
    help={
        "env": ENV_HELP,
        "node": NODE_HELP,
        "timeout": "seconds to get every pod evicted and running elsewhere before uncordoning and giving up, e.g. 600 (default 300)",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def drain(
    c: Context,
    node: str | None = None,
    env: str | None = None,
    timeout: int = 300,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Cordon a node and evict its pods, respecting PDBs; uncordon if it cannot finish.

    Example: inv cluster.drain ip-10-0-1-10.ec2.internal --env staging
    """
    from ..core.errors import BadInput
    from ..core.guards import approve
    from .nodes import drain as do_drain

    if not node or not node.strip():
        raise BadInput(
            f"NODE {node!r}: give a node name, e.g. inv cluster.drain ip-10-0-1-10.ec2.internal; "
            "list them with `inv cluster.nodes`"
        )
    check_timeout(timeout)
    con = console(json)
    environ = environment(c, env)
    interval = float(settings(c).section("aws").get("poll_seconds", 3))
    with con.progress(f"draining {node}") as update:
        data = do_drain(
            environ,
            node,
            timeout=timeout,
            interval=interval,
            progress=update,
            approve=lambda plan: approve(plan, environ.env, con, dry_run=dry_run, yes=yes),
        )
    con.emit_json(data)
    render.mutation(
        con,
        data,
        f"{node} drained: {len(data.get('evicted', []))} pods evicted, "
        f"{len(data['left_alone'])} DaemonSet/static pods left; the node stays cordoned",
    )


@ops_task(
    auto_shortflags=False,
    positional=["node"],
    help={"env": ENV_HELP, "node": NODE_HELP, "dry_run": DRY_RUN_HELP, "yes": YES_HELP, "json": JSON_HELP},
)
def uncordon(
    c: Context,
    node: str | None = None,
    env: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Make a cordoned node schedulable again.

    Example: inv cluster.uncordon ip-10-0-1-10.ec2.internal --env staging
    """
    from ..core.errors import BadInput
    from ..core.guards import approve
    from .nodes import uncordon as do_uncordon

    if not node or not node.strip():
        raise BadInput(
            f"NODE {node!r}: give a node name, e.g. inv cluster.uncordon ip-10-0-1-10.ec2.internal; "
            "list them with `inv cluster.nodes`"
        )
    con = console(json)
    environ = environment(c, env)
    data = do_uncordon(
        environ, node, approve=lambda plan: approve(plan, environ.env, con, dry_run=dry_run, yes=yes)
    )
    con.emit_json(data)
    if data["dry_run"]:
        return
    if data["changed"]:
        con.ok(f"{node} is schedulable again")
    else:
        con.ok(f"{node} was already schedulable; nothing to do")
