"""Where a maintenance task starts: the plan for an environment and its window."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import plans
from .window import WindowSpec, spec_from

if TYPE_CHECKING:
    from ..core.config import Settings
    from ..core.environment import Environment


@dataclass
class Setup:
    plan: plans.MaintenancePlan
    env_plan: plans.EnvPlan
    spec: WindowSpec


def kinds(settings: Settings) -> dict[str, str]:
    return {name: e.kind for name, e in settings.environments.items()}


def plan_name(settings: Settings, plan: str | None) -> str:
    return plan or str(settings.section("maintenance").get("plan") or plans.DEFAULT_PLAN)


def plans_folder(settings: Settings) -> Path:
    """ops.maintenance.plans_dir (relative to the project), default the top-level maintenance/."""
    from ..core.config import PROJECT_ROOT

    raw = settings.section("maintenance").get("plans_dir")
    if not raw:
        return plans.PLANS_DIR
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def setup(environment: Environment, plan: str | None) -> Setup:
    settings = environment.settings
    loaded = plans.load(plan_name(settings, plan), kinds(settings), plans_folder(settings))
    env_plan = loaded.for_env(environment.name)
    return Setup(loaded, env_plan, spec_from(settings.section("maintenance"), env_plan.window))
