"""Application deployments on EKS: status, scale, restart, rollback, logs."""

from __future__ import annotations

from typing import Any

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

DEPLOYMENT_HELP = "backend or frontend, e.g. --deployment backend"
TIMEOUT_HELP = "seconds to wait for the rollout to finish before failing, e.g. 600 (default 300)"


def _interval(c: Context) -> float:
    return float((settings(c).section("aws")).get("poll_seconds", 3))


def _mutating(c: Context, env: str | None, deployment: str, timeout: int, json: bool) -> tuple[Any, Any]:
    """What scale, restart and rollback check before any call: (console, environment)."""
    from ..core.errors import BadInput
    from .deployments import full_name

    if not deployment:
        raise BadInput("--deployment is required; known: backend, frontend")
    check_timeout(timeout)
    con = console(json)
    environ = environment(c, env)
    full_name(environ.cluster, deployment)  # an unknown deployment is bad input, listing the known ones
    return con, environ


def _approver(env: Any, con: Any, *, dry_run: bool, yes: bool) -> Any:
    from ..core.guards import approve

    return lambda plan: approve(plan, env.env, con, dry_run=dry_run, yes=yes)


@ops_task(auto_shortflags=False, help={"env": ENV_HELP, "json": JSON_HELP})
def status(c: Context, env: str | None = None, json: bool = False) -> None:
    """Show each deployment: replicas, pods per node and zone, HPA, PDBs, recent warnings.

    Example: inv app.status --env staging
    """
    from .deployments import status as app_status

    con = console(json)
    environ = environment(c, env)
    data = app_status(environ)
    con.emit_json(data)
    render.app_status(con, data)


@ops_task(
    auto_shortflags=False,
    help={
        "env": ENV_HELP,
        "deployment": DEPLOYMENT_HELP,
        "replicas": "the replica count to set, e.g. 5 (must be within the HPA's bounds)",
        "force": "set a count outside the HPA's min-max bounds anyway",
        "timeout": TIMEOUT_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def scale(
    c: Context,
    deployment: str = "",
    replicas: int = -1,
    env: str | None = None,
    force: bool = False,
    timeout: int = 300,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Scale a deployment (within its HPA bounds) and wait for the rollout.

    Example: inv app.scale --deployment backend --replicas 6 --env staging --dry-run
    """
    from ..core.errors import BadInput
    from .deployments import scale as do_scale

    if deployment and replicas < 0:
        raise BadInput(f"--replicas {replicas}: give the replica count to set, e.g. --replicas 5")
    con, environ = _mutating(c, env, deployment, timeout, json)
    with con.progress(f"scaling {deployment}") as update:
        data = do_scale(
            environ,
            deployment,
            replicas,
            force=force,
            timeout=timeout,
            interval=_interval(c),
            approve=_approver(environ, con, dry_run=dry_run, yes=yes),
            progress=update,
        )
    con.emit_json(data)
    render.mutation(con, data, f"{data['name']} scaled from {data.get('previous')} to {replicas} replicas")


@ops_task(
    auto_shortflags=False,
    help={
        "env": ENV_HELP,
        "deployment": DEPLOYMENT_HELP,
        "timeout": TIMEOUT_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def restart(
    c: Context,
    deployment: str = "",
    env: str | None = None,
    timeout: int = 300,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Rolling restart of a deployment's pods (PDB-friendly) and wait for it.

    Example: inv app.restart --deployment backend --env staging
    """
    from .deployments import restart as do_restart

    con, environ = _mutating(c, env, deployment, timeout, json)
    with con.progress(f"restarting {deployment}") as update:
        data = do_restart(
            environ,
            deployment,
            timeout=timeout,
            interval=_interval(c),
            approve=_approver(environ, con, dry_run=dry_run, yes=yes),
            progress=update,
        )
    con.emit_json(data)
    render.mutation(
        con, data, f"{data['name']} restarted; {data.get('ready')} of {data.get('desired')} ready"
    )


@ops_task(
    auto_shortflags=False,
    help={
        "env": ENV_HELP,
        "deployment": DEPLOYMENT_HELP,
        "to_revision": "ReplicaSet revision to restore, e.g. 3 (default: the one before the current)",
        "timeout": TIMEOUT_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "json": JSON_HELP,
    },
)
def rollback(
    c: Context,
    deployment: str = "",
    to_revision: int = 0,
    env: str | None = None,
    timeout: int = 300,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Roll a deployment back to an earlier revision (image shown) and wait for it.

    Example: inv app.rollback --deployment backend --env staging --dry-run
    """
    from .deployments import rollback as do_rollback

    con, environ = _mutating(c, env, deployment, timeout, json)
    with con.progress(f"rolling back {deployment}") as update:
        data = do_rollback(
            environ,
            deployment,
            to_revision=to_revision,
            timeout=timeout,
            interval=_interval(c),
            approve=_approver(environ, con, dry_run=dry_run, yes=yes),
            progress=update,
        )
    con.emit_json(data)
    render.mutation(
        con,
        data,
        f"{data['name']} restored revision {data['restored_revision']} "
        f"({', '.join(data['images'])}); was revision {data['from_revision']}",
    )


@ops_task(
    auto_shortflags=False,
    help={
        "env": ENV_HELP,
        "deployment": DEPLOYMENT_HELP,
        "since": "how far back, e.g. 10m, 90s, 2h (default 10m)",
        "tail": "at most this many lines per pod, e.g. 200 (default: all)",
        "json": JSON_HELP,
    },
)
def logs(
    c: Context,
    deployment: str = "",
    since: str = "10m",
    tail: int = 0,
    env: str | None = None,
    json: bool = False,
) -> None:
    """Print recent log lines of every pod of a deployment.

    Example: inv app.logs --deployment backend --since 30m --env staging
    """
    from ..core.errors import BadInput
    from ..core.timeparse import parse_duration
    from .deployments import full_name
    from .deployments import logs as app_logs

    if not deployment:
        raise BadInput("--deployment is required; known: backend, frontend")
    seconds = int(parse_duration(since, flag="--since").total_seconds())
    if seconds < 1:
        raise BadInput(f"--since {since}: must be at least 1s, e.g. 10m")
    if tail < 0:
        raise BadInput(f"--tail {tail}: must be a positive number of lines, or 0 for all")
    con = console(json)
    environ = environment(c, env)
    full_name(environ.cluster, deployment)
    data = app_logs(environ, deployment, since_seconds=seconds, tail=tail or None)
    con.emit_json(data)
    for pod in data:
        if pod.get("error"):  # one unreadable pod (not started yet...) does not hide the others
            con.print(f"[{pod['pod']}] (no logs: {pod['error']})")
        for line in pod["lines"]:
            con.print(f"[{pod['pod']}] {line}")
    if not any(p["lines"] for p in data):
        con.info(f"no log lines from {deployment} in the last {since}")
