"""Typed view of the `ops` section of invoke's config, and environment lookup.

invoke merges invoke.yaml, user config, INVOKE_OPS_* variables and -f files;
this module only reads the merged result and checks it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadInput

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KINDS = ("sandbox", "aws")
ENV_PREFIX = "INVOKE_"


@dataclass(frozen=True)
class Targets:
    rto: dict[str, float]
    rpo: dict[str, float]


@dataclass(frozen=True)
class EnvSettings:
    name: str
    kind: str
    production: bool
    allow_drills: bool
    region: str | None
    profile: str | None
    raw: dict[str, Any]

    def resource(self, project: str, resource: str) -> str:
        """`{project}-{environment}-{resource}`, unless overridden for this environment."""
        overrides = self.raw.get("resources") or {}
        return str(overrides.get(resource) or f"{project}-{self.name}-{resource}")


@dataclass(frozen=True)
class Settings:
    project: str
    cost_center: str
    default_env: str
    state_dir: Path
    environments: dict[str, EnvSettings]
    targets: Targets
    retention_days: int
    retention_keep_min: int
    raw: dict[str, Any] = field(repr=False)

    def env(self, name: str | None) -> EnvSettings:
        chosen = name or self.default_env
        if chosen not in self.environments:
            known = ", ".join(sorted(self.environments))
            raise BadInput(f"--env {chosen}: unknown environment; known: {known}")
        return self.environments[chosen]

    def section(self, key: str) -> dict[str, Any]:
        value = self.raw.get(key) or {}
        return dict(value)


def _plain(value: Any) -> Any:
    """invoke's DataProxy -> plain dicts/lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load(config: Any) -> Settings:
    """Build Settings from an invoke Config (or any mapping with an `ops` key). The merged
    `ops` section is checked against core/schema.py first: an unknown key or a wrong type is
    BadInput naming the key, the file or variable it came from, and the accepted keys."""
    from .schema import validate

    raw = _plain(config.get("ops") or {})
    if not raw:
        raise BadInput("no `ops` section in the invoke configuration; is invoke.yaml next to tasks.py?")
    validate(raw, sources(config))
    project = str(raw.get("project", "spywatcher"))
    envs: dict[str, EnvSettings] = {}
    for name, spec in (raw.get("environments") or {}).items():
        spec = dict(spec or {})
        kind = spec.get("kind", "aws")
        if kind not in KINDS:
            raise BadInput(f"environments.{name}.kind {kind}: unknown kind; accepted: {', '.join(KINDS)}")
        envs[name] = EnvSettings(
            name=name,
            kind=kind,
            production=bool(spec.get("production", False)),
            allow_drills=bool(spec.get("allow_drills", not spec.get("production", False))),
            region=spec.get("region"),
            profile=spec.get("profile"),
            raw=spec,
        )
    state_dir = Path(os.path.expanduser(str(raw.get("state_dir", ".ops"))))
    if not state_dir.is_absolute():
        state_dir = PROJECT_ROOT / state_dir
    targets = raw.get("targets") or {}
    retention = raw.get("retention") or {}
    return Settings(
        project=project,
        cost_center=str(raw.get("cost_center", "engineering")),
        default_env=str(raw.get("default_env", "sandbox")),
        state_dir=state_dir,
        environments=envs,
        targets=Targets(
            rto={k: _target(f"ops.targets.rto.{k}", v) for k, v in (targets.get("rto") or {}).items()},
            rpo={k: _target(f"ops.targets.rpo.{k}", v) for k, v in (targets.get("rpo") or {}).items()},
        ),
        retention_days=int(retention.get("days", 7)),
        retention_keep_min=int(retention.get("keep_min", 3)),
        raw=raw,
    )


def _target(key: str, value: Any, source: str | None = None) -> float:
    """A recovery target in seconds: finite and not negative (nan, inf or -1 would judge every
    drill met or missed whatever it measured)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise BadInput(f"{source or key}={value}: {key} must be a number of seconds, 0 or more, e.g. 60.0")
    return seconds


def check_environ(environ: Mapping[str, str], shipped: Mapping[str, Any] | None = None) -> None:
    """INVOKE_OPS_* variables invoke could not cast, as BadInput naming the variable and key.

    invoke converts a variable to the type of the default it overrides (int("abc") or
    int("0.5") raised inside invoke, before any task: a traceback). Checked against the
    shipped invoke.yaml, whose numbers are floats where a fraction makes sense (targets)."""
    if shipped is None:
        import yaml

        shipped = yaml.safe_load((PROJECT_ROOT / "invoke.yaml").read_text(encoding="utf-8")) or {}
    for path, default in _leaves(shipped, ()):
        name = ENV_PREFIX + "_".join(path).upper()
        if name not in environ or isinstance(default, bool):
            continue
        value, key = environ[name], ".".join(path)
        if isinstance(default, list):
            raise BadInput(f"{name}: {key} is a list; set it in a config file (inv -f FILE), not a variable")
        if isinstance(default, int | float):
            kind = int if isinstance(default, int) else float
            try:
                kind(value)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise BadInput(f"{name}={value}: {key} must be {what}, e.g. {default}") from None
            if "targets" in path[:2]:
                _target(key, value, source=name)


def _leaves(tree: Mapping[str, Any], path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.extend(_leaves(value, (*path, str(key))))
        else:
            out.append(((*path, str(key)), value))
    return out


# Where each value came from ------------------------------------------------------


def _layers(config: Any) -> list[tuple[str, Any, str | None]]:
    """invoke's configuration layers, lowest priority first: (attribute, label, kind)."""

    def rel(path: Any) -> str:
        if not path:
            return "?"
        p = Path(str(path))
        try:
            return str(p.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(p)

    return [
        ("_defaults", "invoke default", None),
        ("_collection", "tasks.py", None),
        ("_system", rel(getattr(config, "_system_path", None)), None),
        ("_user", rel(getattr(config, "_user_path", None)), None),
        ("_project", rel(getattr(config, "_project_path", None)), None),
        ("_env", "", "env"),
        ("_runtime", "-f " + rel(getattr(config, "_runtime_path", None)), None),
        ("_overrides", "set at run time", None),
        ("_modifications", "set at run time", None),
    ]


def sources(config: Any) -> dict[tuple[str, ...], str]:
    """ops key path -> where its value came from (the highest-priority layer that sets it):
    a file (invoke.yaml, ~/.invoke.yaml, -f FILE), an INVOKE_OPS_* variable, or run time.
    Empty for a plain mapping (tests), whose values have no file."""
    found: dict[tuple[str, ...], str] = {}
    for attr, label, kind in _layers(config):
        layer = getattr(config, attr, None)
        if not isinstance(layer, Mapping) or not isinstance(layer.get("ops"), Mapping):
            continue
        for path in _paths(_plain(layer["ops"]), ()):
            found[path] = ENV_PREFIX + "_".join(("ops", *path)).upper() if kind == "env" else label
    return found


def _paths(tree: Mapping[str, Any], path: tuple[str, ...]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in tree.items():
        here = (*path, str(key))
        out.append(here)
        if isinstance(value, Mapping):
            out.extend(_paths(value, here))
    return out
