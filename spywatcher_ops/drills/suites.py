"""Drill suites: declarative YAML files in the top-level `drills/` folder.

A suite names the scenarios to run, their parameters, target overrides and the
environments it may run on; `inv dr.drill --suite NAME` runs `drills/NAME.yaml`
and `inv dr.check` validates every file (`file:line: what is wrong; accepted:
...`, exit 2). The format is documented in drills/README.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import PROJECT_ROOT, Settings, Targets
from ..core.errors import BadInput
from ..core.yamllines import Node, YamlError, compose
from .scenario import DrillOptions, Scenario

SUITE_KEYS = ("description", "environments", "scenarios", "params", "targets", "timeout_s", "stable")
TARGET_KINDS = ("rto", "rpo")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    environments: list[str]
    scenarios: list[str]
    params: dict[str, str] = field(default_factory=dict)
    targets: dict[str, dict[str, float]] = field(default_factory=dict)  # {"rto": {"database": 45.0}}
    timeout_s: float | None = None
    stable: int | None = None

    def check_env(self, env: str) -> None:
        if env not in self.environments:
            raise BadInput(
                f"--suite {self.name}: runs on {', '.join(self.environments)}, not on {env}",
                hint=f"pick one with --env, or add {env} to environments: in {self.path.name}",
            )

    def settings_for(self, settings: Settings) -> Settings:
        """The settings with this suite's target overrides on top of the environment's."""
        rto = {**settings.targets.rto, **self.targets.get("rto", {})}
        rpo = {**settings.targets.rpo, **self.targets.get("rpo", {})}
        return dataclasses.replace(settings, targets=Targets(rto=rto, rpo=rpo))


def suites_dir(settings: Settings) -> Path:
    """ops.drills.suites_dir (relative to the project), default the top-level drills/."""
    raw = settings.section("drills").get("suites_dir") or "drills"
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def suite_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def find(name: str, settings: Settings, scenarios: dict[str, Scenario]) -> Suite:
    folder = suites_dir(settings)
    path = folder / f"{name}.yaml"
    known = [p.stem for p in suite_files(folder)]
    if "/" in name or not path.is_file():
        raise BadInput(f"--suite {name}: no such suite in {folder}; known: {', '.join(known) or 'none'}")
    suite, problems = read(path, settings, scenarios)
    if problems or suite is None:
        raise BadInput(f"--suite {name}: {problems[0]}", hint="inv dr.check lists every problem")
    return suite


def check_all(settings: Settings, scenarios: dict[str, Scenario]) -> tuple[list[Suite], list[Problem]]:
    suites, problems = [], []
    for path in suite_files(suites_dir(settings)):
        suite, found = read(path, settings, scenarios)
        problems += found
        if suite is not None and not found:
            suites.append(suite)
    return suites, problems


def read(
    path: Path, settings: Settings, scenarios: dict[str, Scenario]
) -> tuple[Suite | None, list[Problem]]:
    """The suite in `path` and every problem found in it (all of them, not just the first)."""
    problems: list[Problem] = []

    def bad(line: int, message: str) -> None:
        problems.append(Problem(f"drills/{path.name}", line, message))

    try:
        root = compose(path.read_text(encoding="utf-8"))
    except YamlError as exc:
        bad(exc.line, exc.message)
        return None, problems
    if root is None or not isinstance(root.value, dict):
        bad(root.line if root else 1, f"a suite is a mapping with keys {', '.join(SUITE_KEYS)}")
        return None, problems
    keys: dict[str, tuple[Node, int]] = root.value
    for key, (_node, line) in keys.items():
        if key not in SUITE_KEYS:
            bad(line, f"{key}: unknown key; accepted: {', '.join(SUITE_KEYS)}")
    for required in ("environments", "scenarios"):
        if required not in keys:
            bad(1, f"{required}: missing; every suite says {required}")
    envs = _names(keys.get("environments"), "environments", sorted(settings.environments), bad)
    names = _names(keys.get("scenarios"), "scenarios", list(scenarios), bad)
    kinds = {settings.environments[e].kind for e in envs}
    if "scenarios" in keys:
        for name, line in zip(names, _lines(keys["scenarios"][0]), strict=False):
            for kind in sorted(kinds - set(scenarios[name].kinds)):
                bad(
                    line,
                    f"scenarios: {name} does not run on {kind} environments "
                    f"(environments: {', '.join(envs)}); it runs on {', '.join(scenarios[name].kinds)}",
                )
    chosen = [scenarios[n] for n in names]
    params = _params(keys.get("params"), chosen, bad)
    targets = _targets(keys.get("targets"), settings, chosen, bad)
    timeout = _number(keys.get("timeout_s"), "timeout_s", 1, 7200, bad)
    stable = _number(keys.get("stable"), "stable", 1, 100, bad)
    description = keys["description"][0].value if "description" in keys else ""
    suite = Suite(
        path.stem,
        path,
        str(description or ""),
        envs,
        names,
        params,
        targets,
        float(timeout) if timeout is not None else None,
        int(stable) if stable is not None else None,
    )
    return suite, problems


def _lines(node: Node) -> list[int]:
    return [item.line for item in node.value] if isinstance(node.value, list) else []


def _names(entry: tuple[Node, int] | None, key: str, known: Iterable[str], bad: Any) -> list[str]:
    if entry is None:
        return []
    node, line = entry
    known = list(known)
    if not isinstance(node.value, list) or not node.value:
        bad(line, f"{key}: a list of names, e.g. [{', '.join(known[:2])}]")
        return []
    out = []
    for item in node.value:
        if not isinstance(item.value, str) or item.value not in known:
            bad(item.line, f"{key}: {item.value!r}: unknown; accepted: {', '.join(known)}")
        else:
            out.append(item.value)
    return out


def _params(entry: tuple[Node, int] | None, chosen: list[Scenario], bad: Any) -> dict[str, str]:
    if entry is None:
        return {}
    node, line = entry
    accepted = {k: v for sc in chosen for k, v in sc.params.items()}
    listing = ", ".join(f"{k} ({v})" for k, v in sorted(accepted.items())) or "none for these scenarios"
    if not isinstance(node.value, dict):
        bad(line, f"params: a mapping KEY: VALUE; accepted: {listing}")
        return {}
    params = {}
    for key, (value, key_line) in node.value.items():
        if key not in accepted:
            bad(key_line, f"params: {key}: no scenario of this suite reads it; accepted: {listing}")
        elif isinstance(value.value, dict | list) or value.value is None:
            bad(value.line, f"params: {key}: a single value, e.g. {key}: 3")
        else:
            params[key] = str(value.value)
    for sc in chosen:
        try:
            sc.check_params(params)
        except BadInput as exc:
            bad(line, f"params: {exc}")
    return params


def _targets(
    entry: tuple[Node, int] | None, settings: Settings, chosen: list[Scenario], bad: Any
) -> dict[str, dict[str, float]]:
    if entry is None:
        return {}
    node, line = entry
    keys = sorted(
        {
            *settings.targets.rto,
            *settings.targets.rpo,
            *(k for sc in chosen for k in (sc.rto_key, sc.rpo_key) if k),
        }
    )
    example = "{rto: {database: 45}, rpo: {database: 0}}"
    if not isinstance(node.value, dict):
        bad(line, f"targets: a mapping like {example}")
        return {}
    out: dict[str, dict[str, float]] = {}
    for kind, (inner, kind_line) in node.value.items():
        if kind not in TARGET_KINDS:
            bad(kind_line, f"targets: {kind}: unknown; accepted: {', '.join(TARGET_KINDS)}")
            continue
        if not isinstance(inner.value, dict):
            bad(inner.line, f"targets: {kind}: a mapping of part to seconds, e.g. {{database: 45}}")
            continue
        for part, (seconds, part_line) in inner.value.items():
            value = seconds.value
            if part not in keys:
                bad(part_line, f"targets: {kind}: {part}: unknown target; accepted: {', '.join(keys)}")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                bad(seconds.line, f"targets: {kind}: {part}: {value!r}: a number of seconds >= 0, e.g. 60")
            else:
                out.setdefault(kind, {})[part] = float(value)
    return out


def _number(entry: tuple[Node, int] | None, key: str, low: int, high: int, bad: Any) -> float | None:
    if entry is None:
        return None
    node, _line = entry
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        bad(node.line, f"{key}: {value!r}: a number from {low} to {high}")
        return None
    return float(value)


def options_for(suite: Suite, base: DrillOptions, *, keep_stability: bool = False) -> DrillOptions:
    """The run's options with the suite's parameters, timeout and stability; what the command
    line gave (`base`: --param, --timeout, --stable when `keep_stability`) wins."""
    stability = base.stability
    if suite.stable is not None and not keep_stability:
        stability = dataclasses.replace(stability, stable_count=suite.stable)
    return dataclasses.replace(
        base,
        params={**suite.params, **base.params},
        timeout_s=base.timeout_s if base.timeout_s is not None else suite.timeout_s,
        stability=stability,
    )
