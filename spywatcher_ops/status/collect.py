"""Which parts an environment has, and reading them all (in parallel, each with a deadline)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import application, cache, database, records
from .model import Line, Part, PartResult, gather, skipped

if TYPE_CHECKING:
    from ..core.environment import Environment

ORDER = ("database", "cache", "application", "nodes", "alarms", "drill", "maintenance", "window")


def parts(environment: Environment, timeout: float) -> dict[str, Part]:
    e = environment
    out: dict[str, Part] = {
        "alarms": lambda: records.alarms(e),
        "drill": lambda: records.last_drill(e),
        "maintenance": lambda: records.last_maintenance(e),
        "window": lambda: records.window(e),
    }
    if e.kind == "sandbox":
        out["database"] = lambda: database.sandbox(e, timeout)
        out["cache"] = lambda: cache.sandbox(e, timeout)
        out["application"] = lambda: [skipped("application", "the sandbox has no cluster")]
        out["nodes"] = lambda: [skipped("nodes", "the sandbox has no cluster")]
    else:
        # the parts are read in parallel: the provider's clients are made here, before the threads
        e.parts.connect()
        monitoring = e.monitoring
        cluster = e.cluster
        out["database"] = lambda: database.aws(e, monitoring)
        out["cache"] = lambda: cache.aws(e, monitoring)
        out["application"] = lambda: _if_cluster(
            "application", lambda: application.application(cluster, e.clock.now())
        )
        out["nodes"] = lambda: _if_cluster("nodes", lambda: application.nodes(cluster))
    return {name: out[name] for name in ORDER}


def _if_cluster(part: str, read: Any) -> list[Line]:
    """An aws environment without an EKS cluster (none configured, none found) is SKIPPED, not FAILED."""
    from ..core.errors import NotReady

    try:
        return list(read())
    except NotReady as exc:
        if "EKS cluster" in exc.message and "not found" in exc.message:
            return [skipped(part, f"no cluster: {exc.message}")]
        raise


def status(environment: Environment, timeout: float) -> list[PartResult]:
    return gather(parts(environment, timeout), timeout, clock=environment.clock.monotonic)
