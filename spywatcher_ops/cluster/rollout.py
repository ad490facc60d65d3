"""Wait for a deployment's rollout to finish, the way `kubectl rollout status` decides."""

from __future__ import annotations

from typing import Any

from ..core.clock import Clock
from ..core.errors import TimedOut
from ..core.ports import KubeApi, Progress, no_progress
from ..core.waiting import wait_for
from .objects import rollout_state

DEFAULT_TIMEOUT = 300.0


def wait_rollout(
    kube: KubeApi,
    name: str,
    *,
    clock: Clock,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 3.0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Poll the deployment until its rollout is complete; return the final deployment object."""

    def probe() -> tuple[bool, dict[str, Any], str]:
        dep = kube.deployment(name)
        state = rollout_state(dep)
        return state.done, dep, f"{name}: {state.status}"

    try:
        return wait_for(
            probe,
            what=f"the rollout of {name}",
            clock=clock,
            timeout=timeout,
            interval=interval,
            progress=progress,
        )
    except TimedOut as exc:
        raise TimedOut(
            f"{exc}; the change stays applied", hint=f"look at `inv app.status` and the events of {name}"
        ) from None
