"""The configuration as the toolkit sees it: merged, checked, and where each value came from."""

# Only invoke and core.cli at module level: `inv --list` stays light.
from __future__ import annotations

from typing import Any

from invoke import Context

from spywatcher_ops.core.cli import JSON_HELP, console, ops_task


def merged_view(config: Any, env: str | None = None) -> list[dict[str, Any]]:
    """Every leaf key of the merged `ops` section with its value and source, plus the schema's
    defaults for keys nobody set. With `env`, only that environment under `environments`."""
    from spywatcher_ops.core.config import _plain, load, sources
    from spywatcher_ops.core.schema import defaults

    settings = load(config)  # checks the schema first: a bad key is exit 2 here too
    if env is not None:
        settings.env(env)  # an unknown name is exit 2 listing the known ones
    raw = _plain(config.get("ops") or {})
    where = sources(config)
    rows: list[dict[str, Any]] = []

    def walk(tree: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in tree.items():
            here = (*path, str(key))
            if env is not None and len(here) == 2 and here[0] == "environments" and here[1] != env:
                continue
            if isinstance(value, dict) and value:
                walk(value, here)
            else:
                rows.append(
                    {
                        "key": ".".join(("ops", *here)),
                        "value": value,
                        "source": where.get(here) or _nearest(here, where),
                    }
                )

    walk(raw, ())
    seen = {r["key"] for r in rows}
    for path, value in defaults().items():
        key = ".".join(("ops", *path))
        if key not in seen and not any(s.startswith(key + ".") for s in seen):
            rows.append({"key": key, "value": value, "source": "default"})
    return sorted(rows, key=lambda r: r["key"])


def _nearest(path: tuple[str, ...], where: dict[tuple[str, ...], str]) -> str:
    for n in range(len(path) - 1, 0, -1):
        if path[:n] in where:
            return where[path[:n]]
    return "default"


@ops_task(
    help={"env": "show only this environment's settings under environments, e.g. staging", "json": JSON_HELP}
)
def show(c: Context, env: str | None = None, json: bool = False) -> None:
    """Print the merged configuration, each value with where it came from (file, variable, default).

    Checks it against the schema first: an unknown key or a wrong type is exit 2 naming the
    key, the file and the accepted keys.
    Example: inv config.show --env staging
    """
    import json as json_

    out = console(json)
    rows = merged_view(c.config, env)
    out.emit_json({"config": {r["key"]: {"value": r["value"], "source": r["source"]} for r in rows}})
    width = max((len(r["key"]) for r in rows), default=0)
    for r in rows:
        value = json_.dumps(r["value"], default=str) if not isinstance(r["value"], str) else r["value"]
        out.print(f"{r['key'].ljust(width)}  {value}  ({r['source']})")
