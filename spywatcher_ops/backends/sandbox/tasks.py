"""The local sandbox: real PostgreSQL primary + standby and Redis with sentinels."""

# Only invoke and core.cli at module level: `inv --list` must not import psycopg,
# redis or rich. Each task imports its domain module when it runs.
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import DRY_RUN_HELP, JSON_HELP, YES_HELP, console, ops_task

if TYPE_CHECKING:  # task modules stay light for inv --list
    from spywatcher_ops.core.errors import NotReady

    from .lifecycle import SandboxReport

SANDBOX_ENV_HELP = "sandbox environment name from invoke.yaml (default: sandbox)"


def _render(out: Any, rep: Any, *, title: str) -> None:
    out.emit_json(rep.to_dict())
    if out.json_mode:
        return
    out.print(f"{title} ({rep.root})")
    if rep.database_url:
        out.print(f"database: {rep.database_url}  [{rep.replication} replication]")
    if rep.password_file:
        out.print(f"passwords: {rep.password_file} (mode 0600; see README, 'Connecting by hand')")
    rows = []
    for n in rep.database:
        lag = ""
        if n.get("replication"):
            lag = n["replication"]
            if "lag_bytes" in n:
                lag += f", {n.get('sync_state')}, lag {n['lag_bytes']} B / {n.get('lag_seconds', 0):.3f} s"
        rows.append(
            [
                n["name"],
                n["role"],
                n.get("instance", ""),
                n["port"],
                n.get("pid"),
                _alive(n),
                lag,
                n.get("action", ""),
            ]
        )
    if rows:
        out.table(["node", "role", "instance", "port", "pid", "alive", "replication", "action"], rows)
    if rep.cache:
        out.print(f"cache: sentinels {', '.join(rep.cache_sentinels)}")
        out.table(
            ["node", "role", "port", "pid", "alive"],
            [[n["name"], n["role"], n["port"], n.get("pid"), _alive(n)] for n in rep.cache],
        )
    ssh = rep.ssh_host or {}
    if ssh.get("address"):
        out.print(
            f"ssh host: {ssh['name']} at {ssh['address']}, "
            + ("answering" if ssh["running"] else "NOT answering (`inv sandbox.up` starts it)")
            + f", {ssh.get('pending_updates', 0)} pending update(s)"
        )
    elif ssh.get("why"):
        out.print(f"ssh host: none ({ssh['why']})")


def _alive(node: dict[str, Any]) -> str:
    """alive = answers (a query, a PING) within a short timeout; a frozen process exists and does not."""
    if node["alive"]:
        return "yes"
    process = node.get("process", "")
    if process.startswith("stopped"):
        return "NO (stopped)"
    return "NO (no answer)" if process == "running" else "NO"


@ops_task(help={"env": SANDBOX_ENV_HELP, "dry_run": DRY_RUN_HELP, "json": JSON_HELP})
def up(c: Context, env: str | None = None, dry_run: bool = False, json: bool = False) -> None:
    """Start the local sandbox (PostgreSQL primary + standby, Redis + sentinels), or repair what is down.

    The first run provisions everything under the state folder (ops.state_dir,
    git-ignored): PostgreSQL 15 with WAL archiving and a first base backup, a
    streaming standby (synchronous unless environments.sandbox.replication is
    asynchronous), Redis primary + replica + 3 sentinels, on free loopback ports.
    Later runs report what is running and restart or rebuild what is not.
    Example: inv sandbox.up
    """
    from spywatcher_ops.core.guards import approve

    from .lifecycle import plan_up, require_sandbox
    from .lifecycle import up as run_up

    out = console(json)
    e = environment(c, env)
    require_sandbox(e)
    plan = plan_up(e)
    if not approve(plan, e.env, out, dry_run=dry_run, yes=True):
        out.emit_json({"dry_run": True, "plan": plan.to_dict()})
        return
    from .lifecycle import status as run_status

    with e.operation("sandbox.up", {}) as op, out.progress(f"sandbox {e.name} up") as progress:
        rep = run_up(e, progress)
        op.result = {
            "database_url": rep.database_url,
            "nodes": [(n["name"], n["port"], n.get("pid")) for n in rep.database],
        }
    # "up" is said only after every process answered: a server up leaves running but stopped
    # (SIGSTOP) keeps its pid, and up adopts it as it is
    failure = _not_ready(run_status(e))
    _render(out, rep, title=f"sandbox {e.name} is up" if failure is None else f"sandbox {e.name} (not ready)")
    if failure is not None:
        raise failure


@ops_task(help={"env": SANDBOX_ENV_HELP, "json": JSON_HELP})
def status(c: Context, env: str | None = None, json: bool = False) -> None:
    """Show every sandbox process: role, port, pid, alive (answering), replication lag. Exit 3 if one is down.

    Example: inv sandbox.status --json
    """
    from spywatcher_ops.core.errors import NotReady

    from .lifecycle import require_sandbox
    from .lifecycle import status as run_status

    out = console(json)
    e = environment(c, env)
    require_sandbox(e)
    rep = run_status(e)
    if not rep.database and not rep.cache:
        raise NotReady(
            f"the sandbox {e.name} is not set up (nothing in {rep.root})", hint="run `inv sandbox.up`"
        )
    _render(out, rep, title=f"sandbox {e.name}")
    failure = _not_ready(rep)
    if failure is not None:
        raise failure


def _not_ready(rep: SandboxReport) -> NotReady | None:
    """Why the sandbox is not ready (a process not answering, a part missing), or None."""
    from spywatcher_ops.core.errors import NotReady

    down = [
        n["name"] + (f" (process: {n['process']})" if n.get("process") else "")
        for n in rep.database + rep.cache
        if not n["alive"] and n.get("desired", "running") == "running"
    ]
    if down:
        return NotReady(
            f"not answering: {', '.join(down)}",
            hint="`inv sandbox.up` restarts or rebuilds what is not running; "
            "a stopped (SIGSTOP) process needs SIGCONT or a restart",
        )
    if rep.problems:
        return NotReady("; ".join(rep.problems))
    return None


@ops_task(
    help={
        "env": SANDBOX_ENV_HELP,
        "purge": "also delete every database, WAL archive, base backup and Redis file",
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP + "; --purge asks otherwise",
        "json": JSON_HELP,
    }
)
def down(
    c: Context,
    env: str | None = None,
    purge: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    json: bool = False,
) -> None:
    """Stop every sandbox process (data kept); --purge also deletes the sandbox's data.

    Example: inv sandbox.down --purge --yes
    """
    from spywatcher_ops.core.guards import approve

    from .lifecycle import down as run_down
    from .lifecycle import plan_down, require_sandbox

    out = console(json)
    e = environment(c, env)
    require_sandbox(e)
    plan = plan_down(e, purge=purge)
    if not approve(plan, e.env, out, dry_run=dry_run, yes=yes, confirm=purge):
        out.emit_json({"dry_run": True, "plan": plan.to_dict()})
        return
    with e.operation("sandbox.down", {"purge": purge}) as op:
        result = run_down(e, purge=purge)
        op.result = result
    out.emit_json(result)
    kept = result.get("kept", [])
    if purge:
        out.print("sandbox stopped; what it created is deleted" + (", except:" if kept else ""))
    else:
        out.print("sandbox stopped; `inv sandbox.up` starts it again")
    for note in kept:
        out.print(note)


@ops_task(help={"env": SANDBOX_ENV_HELP, "dry_run": DRY_RUN_HELP, "yes": YES_HELP, "json": JSON_HELP})
def reset(
    c: Context, env: str | None = None, dry_run: bool = False, yes: bool = False, json: bool = False
) -> None:
    """Delete the sandbox and build a fresh empty one (all sandbox data is lost).

    Example: inv sandbox.reset --yes
    """
    from spywatcher_ops.core.guards import approve

    from .lifecycle import plan_down, require_sandbox
    from .lifecycle import reset as run_reset

    out = console(json)
    e = environment(c, env)
    require_sandbox(e)
    plan = plan_down(e, purge=True)
    plan.title = f"reset: {plan.title}, then provision it again"
    if not approve(plan, e.env, out, dry_run=dry_run, yes=yes, confirm=True):
        out.emit_json({"dry_run": True, "plan": plan.to_dict()})
        return
    with e.operation("sandbox.reset", {}) as op, out.progress(f"sandbox {e.name} reset") as progress:
        rep = run_reset(e, progress)
        op.result = {"database_url": rep.database_url}
    _render(out, rep, title=f"sandbox {e.name} was reset")
