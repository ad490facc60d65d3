"""The provisioners of the sandbox's Terraform configuration (deploy/terraform/sandbox).

Its `terraform_data` resources call this module through local-exec:

    python -m spywatcher_ops.backends.terraform_sandbox --env sandbox --config FILE up|destroy database|cache

`up database` provisions the PostgreSQL pair from nothing, or repairs it; when
the servers' data is gone (the sandbox was destroyed) it leaves the database to
the restore, which rebuilds it from the backup store. `destroy database` is the
disaster: SIGKILL every server and delete the live data folders, keeping the
base backups, the WAL archive and the state that lists them (the backup store,
the sandbox's stand-in for cross-region snapshot copies). `up cache` starts or
repairs Redis and its sentinels; `destroy cache` stops and deletes them.
FILE is the toolkit's merged configuration, written by `inv` for Terraform.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.environment import Environment


def _environment(name: str, config_file: str) -> Environment:
    import yaml

    from ..core.config import load
    from .table import build

    with open(config_file) as f:
        return build(load(yaml.safe_load(f)), name)


def _say(text: str) -> None:
    print(text, flush=True)


def up_database(env: Environment) -> None:
    from .sandbox.postgres.database import pg_sandbox

    box = pg_sandbox(env)
    box.preflight()
    state = box.statefile.load()
    if state and state.get("instances"):
        main = state["instances"][state["main"]]
        primary = state["nodes"].get(main.get("primary") or "", {})
        if not Path(primary.get("data", "/nonexistent"), "PG_VERSION").exists():
            backups = len(list((Path(state["pg_base"]) / "backups").glob("*")))
            _say(
                f"database servers: their data is gone; the database is restored from the backup store "
                f"({backups} base backup(s), WAL archive {main.get('lineage')}) by the restore stage"
            )
            return
    for report in box.up(_say):
        _say(f"database server {report.name}: {report.role}, {report.action}")


def destroy_database(env: Environment) -> None:
    from .sandbox.postgres.database import pg_sandbox
    from .sandbox.postgres.processes import stop_all

    box = pg_sandbox(env)
    with box.statefile.editing() as state:
        if not state or not state.get("nodes"):
            _say("database servers: none")
            return
        killed = stop_all(box.user(state), state, kill=True)
        deleted = []
        for node in state["nodes"].values():
            data = Path(node["data"])
            if data.exists():
                shutil.rmtree(data)
                deleted.append(str(data))
    _say(
        f"database servers killed: {', '.join(killed) or 'none running'}; live data deleted: "
        f"{len(deleted)} folder(s); kept: base backups, WAL archive, state"
    )


def up_cache(env: Environment) -> None:
    from .sandbox.redis.cache import SandboxCache

    for node in SandboxCache(env).redis.up():
        _say(f"cache {node.id}: {node.role} on {node.host}:{node.port}, alive {node.alive}")


def destroy_cache(env: Environment) -> None:
    from .sandbox.redis.cache import SandboxCache

    note = SandboxCache(env).redis.purge()
    _say(f"cache: stopped and deleted{'; ' + note if note else ''}")


ACTIONS: dict[tuple[str, str], Any] = {
    ("up", "database"): up_database,
    ("destroy", "database"): destroy_database,
    ("up", "cache"): up_cache,
    ("destroy", "cache"): destroy_cache,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spywatcher_ops.backends.terraform_sandbox")
    parser.add_argument("--env", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("action", choices=["up", "destroy"])
    parser.add_argument("part", choices=["database", "cache"])
    args = parser.parse_args(argv)
    from ..core.errors import OpsError

    try:
        env = _environment(args.env, args.config)
        if env.kind != "sandbox":
            raise SystemExit(f"--env {args.env}: is {env.kind}; these provisioners build the sandbox only")
        ACTIONS[(args.action, args.part)](env)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
