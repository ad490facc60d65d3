"""Maintenance plans: YAML files in the top-level `maintenance/` folder.

Loaded with PyYAML's composer, not `safe_load`, so every value keeps the line
it came from: a bad plan is reported as `file:line: what is wrong; accepted: ...`.
The format is documented in maintenance/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import PROJECT_ROOT
from ..core.errors import BadInput
from ..core.yamllines import Node, YamlError, compose
from .steps import STEPS, StepType

PLANS_DIR = PROJECT_ROOT / "maintenance"
DEFAULT_PLAN = "sunday"
PLAN_KEYS = ("description", "max_errors", "prechecks", "environments")
ENV_KEYS = ("window", "max_errors", "prechecks", "steps")
STEP_RESERVED = ("step",)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class PlannedStep:
    step: str
    settings: dict[str, Any]
    line: int
    index: int  # position in the environment's list, 1-based

    @property
    def type(self) -> StepType:
        return STEPS[self.step]


@dataclass
class EnvPlan:
    plan: str
    env: str
    window: Any  # None, 'always' or a mapping (see window.spec_from)
    max_errors: int
    steps: list[PlannedStep] = field(default_factory=list)
    prechecks: dict[str, Any] = field(default_factory=dict)  # the run's configurable ones (gates.py)


@dataclass
class MaintenancePlan:
    name: str
    path: Path
    description: str
    max_errors: int
    environments: dict[str, EnvPlan]

    def for_env(self, env: str) -> EnvPlan:
        if env not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise BadInput(
                f"plan {self.name} has no steps for environment {env}; it covers: {known}",
                hint=f"add `environments: {{{env}: {{steps: [...]}}}}` to {self.path.name}",
            )
        return self.environments[env]


# loading and checking ------------------------------------------------------------


def shown(path: Path) -> str:
    """How a plan file or folder is named in messages: relative to the project when it is
    inside it (maintenance/sunday.yaml), else as configured (ops.maintenance.plans_dir)."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def plan_files(folder: Path = PLANS_DIR) -> list[Path]:
    if not folder.is_dir():
        raise BadInput(
            f"ops.maintenance.plans_dir {shown(folder)}: not a folder; it must hold the plans (*.yaml)",
            hint="the default is the top-level maintenance/ folder",
        )
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def plan_path(name: str, folder: Path = PLANS_DIR) -> Path:
    path = folder / f"{name}.yaml"
    if not name or "/" in name or not path.is_file():
        known = ", ".join(p.stem for p in plan_files(folder)) or "none"
        raise BadInput(f"--plan {name}: no such plan in {shown(folder)}/; known: {known}")
    return path


def _int_field(value: Node, where: str, fname: str, problems: list[Problem]) -> int:
    v = value.value
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        problems.append(Problem(fname, value.line, f"{where} {v!r}: use a whole number >= 0, e.g. 0"))
        return 0
    return int(v)


def _prechecks(
    node: Node, where: str, fname: str, problems: list[Problem], base: dict[str, Any]
) -> dict[str, Any]:
    """`prechecks:` of the plan or of an environment (over the plan's): gates.SETTINGS."""
    from .gates import SETTINGS

    out = dict(base)
    if not isinstance(node.value, dict):
        problems.append(
            Problem(
                fname, node.line, f"{where}: a mapping of {', '.join(SETTINGS)}, e.g. {{infra_drift: true}}"
            )
        )
        return out
    for key, (value, line) in node.value.items():
        setting = SETTINGS.get(key)
        if setting is None:
            problems.append(
                Problem(fname, line, f"{where}: unknown pre-check {key!r}; accepted: {', '.join(SETTINGS)}")
            )
            continue
        error = setting.check(value.plain())
        if error:
            problems.append(Problem(fname, value.line, f"{where}.{key} {value.plain()!r}: {error}"))
            continue
        out[key] = value.plain()
    return out


def parse(text: str, path: Path, kinds: dict[str, str]) -> tuple[MaintenancePlan | None, list[Problem]]:
    """Check a plan's text against the steps and the environments' kinds (name -> kind).
    Returns the plan (None when it is unusable) and every problem found."""
    fname = shown(path)
    problems: list[Problem] = []
    try:
        root = compose(text)
    except YamlError as exc:
        return None, [Problem(fname, exc.line, exc.message)]
    if root is None or not isinstance(root.value, dict):
        return None, [
            Problem(
                fname,
                1 if root is None else root.line,
                "a plan is a mapping with keys: " + ", ".join(PLAN_KEYS),
            )
        ]
    top = root.value
    for key, (_node, line) in top.items():
        if key not in PLAN_KEYS:
            problems.append(Problem(fname, line, f"unknown key {key!r}; accepted: {', '.join(PLAN_KEYS)}"))
    description = str(top["description"][0].plain()) if "description" in top else ""
    max_errors = _int_field(top["max_errors"][0], "max_errors", fname, problems) if "max_errors" in top else 0
    checks = _prechecks(top["prechecks"][0], "prechecks", fname, problems, {}) if "prechecks" in top else {}
    envs_node = top.get("environments", (None, root.line))[0]
    if envs_node is None or not isinstance(envs_node.value, dict) or not envs_node.value:
        problems.append(
            Problem(
                fname,
                envs_node.line if envs_node else root.line,
                "`environments` must map environment names to {steps: [...]}",
            )
        )
        return None, problems
    environments: dict[str, EnvPlan] = {}
    for env, (spec, line) in envs_node.value.items():
        if env not in kinds:
            problems.append(
                Problem(fname, line, f"unknown environment {env!r}; known: {', '.join(sorted(kinds))}")
            )
            continue
        env_plan = _env_plan(path.stem, env, kinds[env], spec, max_errors, fname, problems, checks)
        if env_plan is not None:
            environments[env] = env_plan
    plan = MaintenancePlan(path.stem, path, description, max_errors, environments)
    return plan, problems


def _env_plan(
    plan: str,
    env: str,
    kind: str,
    spec: Node,
    max_errors: int,
    fname: str,
    problems: list[Problem],
    checks: dict[str, Any],
) -> EnvPlan | None:
    if not isinstance(spec.value, dict):
        problems.append(
            Problem(fname, spec.line, f"environments.{env}: a mapping with keys {', '.join(ENV_KEYS)}")
        )
        return None
    for key, (_n, line) in spec.value.items():
        if key not in ENV_KEYS:
            problems.append(
                Problem(
                    fname, line, f"environments.{env}: unknown key {key!r}; accepted: {', '.join(ENV_KEYS)}"
                )
            )
    window = None
    if "window" in spec.value:
        wnode = spec.value["window"][0]
        window = wnode.plain()
        from .window import spec_from

        try:
            spec_from({}, window)
        except BadInput as exc:
            problems.append(Problem(fname, wnode.line, f"environments.{env}.{exc.message}"))
    if "max_errors" in spec.value:
        max_errors = _int_field(
            spec.value["max_errors"][0], f"environments.{env}.max_errors", fname, problems
        )
    if "prechecks" in spec.value:
        checks = _prechecks(
            spec.value["prechecks"][0], f"environments.{env}.prechecks", fname, problems, checks
        )
    out = EnvPlan(plan, env, window, max_errors, prechecks=checks)
    steps_node = spec.value.get("steps", (None, spec.line))[0]
    if steps_node is None or not isinstance(steps_node.value, list):
        problems.append(
            Problem(
                fname,
                steps_node.line if steps_node else spec.line,
                f"environments.{env}.steps: a list of steps, e.g. - step: db-housekeeping",
            )
        )
        return out
    for i, item in enumerate(steps_node.value, 1):
        parsed = _step(env, kind, i, item, fname, problems)
        if parsed is not None:
            out.steps.append(parsed)
    return out


def _step(
    env: str, kind: str, index: int, item: Node, fname: str, problems: list[Problem]
) -> PlannedStep | None:
    where = f"environments.{env}.steps[{index}]"
    if isinstance(item.value, str):  # `- db-housekeeping`: the step with its defaults
        item = Node({"step": (Node(item.value, item.line), item.line)}, item.line)
    if not isinstance(item.value, dict) or "step" not in item.value:
        problems.append(
            Problem(
                fname,
                item.line,
                f"{where}: a step name or a mapping with `step:`; accepted steps: {', '.join(STEPS)}",
            )
        )
        return None
    name_node = item.value["step"][0]
    name = str(name_node.value)
    if name not in STEPS:
        problems.append(
            Problem(fname, name_node.line, f"{where}: unknown step {name!r}; accepted: {', '.join(STEPS)}")
        )
        return None
    stype = STEPS[name]
    if kind not in stype.kinds:
        problems.append(
            Problem(
                fname,
                name_node.line,
                f"{where}: step {name} cannot run on a {kind} environment ({env}); "
                f"it runs on: {', '.join(stype.kinds)}",
            )
        )
    values: dict[str, Any] = {}
    for key, (node, line) in item.value.items():
        if key in STEP_RESERVED:
            continue
        setting = stype.settings.get(key)
        if setting is None:
            accepted = ", ".join(stype.settings) or "none"
            problems.append(
                Problem(fname, line, f"{where}: step {name} has no setting {key!r}; accepted: {accepted}")
            )
            continue
        error = setting.check(node.plain())
        if error:
            problems.append(Problem(fname, node.line, f"{where}: {name}.{key} {node.plain()!r}: {error}"))
            continue
        values[key] = node.plain()
    settings = {k: s.default for k, s in stype.settings.items()}
    settings.update(values)
    return PlannedStep(name, settings, name_node.line, index)


def load(name: str, kinds: dict[str, str], folder: Path = PLANS_DIR) -> MaintenancePlan:
    """The named plan, or BadInput naming the first problem with its file and line."""
    path = plan_path(name, folder)
    plan, problems = parse(path.read_text(), path, kinds)
    if problems or plan is None:
        more = f" (and {len(problems) - 1} more; run inv maint.check)" if len(problems) > 1 else ""
        raise BadInput(f"{problems[0]}{more}")
    return plan


def check_all(kinds: dict[str, str], folder: Path = PLANS_DIR) -> tuple[list[Path], list[Problem]]:
    files = plan_files(folder)
    problems: list[Problem] = []
    for path in files:
        problems += parse(path.read_text(), path, kinds)[1]
    return files, problems
