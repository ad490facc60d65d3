"""Where the sandbox lives: `<ops.state_dir>/sandbox` unless the sandbox
environment sets its own `state_dir` (relative paths are under the project)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...core.config import PROJECT_ROOT

if TYPE_CHECKING:
    from ...core.environment import Environment


def sandbox_root(environment: Environment) -> Path:
    own = environment.env.raw.get("state_dir")
    if own:
        path = Path(str(own)).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path
    return environment.settings.state_dir / "sandbox"
