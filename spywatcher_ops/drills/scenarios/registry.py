"""The scenario registry: modules register their scenarios at import.

`SCENARIO_MODULES` lists the modules that hold scenarios; configuration can
add more (`ops.drills.scenario_modules: [package.module]`). A module listed
here that does not exist yet is skipped (another team may list theirs before
it lands); any other import error is raised, not hidden.
See drills/scenario.py for how to write one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, TypeVar

from ...core.errors import BadInput
from ..scenario import Scenario

SCENARIO_MODULES: list[str] = [  # one module per family; the default suite runs in this order
    "spywatcher_ops.drills.scenarios.database",  # db-failover
    "spywatcher_ops.drills.scenarios.cache",  # cache-failover
    "spywatcher_ops.drills.scenarios.proofs",  # pitr-restore, snapshot-restore, db-stall, db-async-loss
    "spywatcher_ops.drills.scenarios.application",  # on EKS: app-pod-loss, node-loss, zone-loss
    "spywatcher_ops.drills.scenarios.rebuild",  # full-rebuild (sandbox; not in the default suite)
]

_REGISTRY: dict[str, Scenario] = {}
T = TypeVar("T")


def register(cls: T) -> T:
    """Class decorator (or call with an instance): add a scenario under its name."""
    obj: Any = cls() if isinstance(cls, type) else cls
    if not isinstance(obj, Scenario):
        raise TypeError(f"{cls!r} is not a drills.scenario.Scenario")
    _REGISTRY[obj.name] = obj
    return cls


def load(extra_modules: Iterable[str] = ()) -> dict[str, Scenario]:
    for module in [*SCENARIO_MODULES, *extra_modules]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (exc.name == module or module.startswith(exc.name + ".")):
                continue  # that module is not there (yet)
            raise
    return dict(_REGISTRY)  # registration order: the default suite runs in this order


def get(name: str, kind: str, extra_modules: Iterable[str] = (), *, source: str = "--scenario") -> Scenario:
    """`source`: where the name came from, for the error (a flag, or a config key)."""
    scenarios = load(extra_modules)
    if name not in scenarios:
        raise BadInput(f"{source} {name}: unknown scenario; known: {', '.join(scenarios)}")
    scenario = scenarios[name]
    if kind not in scenario.kinds:
        supported = ", ".join(n for n, s in scenarios.items() if kind in s.kinds)
        why = scenario.unsupported.get(kind) or f"not supported on {kind} environments"
        raise BadInput(
            f"{source} {name}: {why} (it runs on {', '.join(scenario.kinds)} environments); "
            f"for {kind}: {supported}"
        )
    return scenario


def default_suite(env: Any, extra_modules: Iterable[str] = ()) -> list[Scenario]:
    """`environments.<env>.drill_suite` when configured, else every scenario whose
    in_default_suite(env) says so, in registration order."""
    configured = env.env.raw.get("drill_suite")
    if configured:
        if isinstance(configured, str):
            configured = [n.strip() for n in configured.split(",") if n.strip()]
        return [
            get(str(n), env.kind, extra_modules, source=f"environments.{env.name}.drill_suite:")
            for n in configured
        ]
    return [s for s in load(extra_modules).values() if s.in_default_suite(env)]
