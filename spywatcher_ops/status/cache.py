"""The cache lines: role of each node, replica lag, memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.thresholds import CACHE_MEMORY_PCT, LAG_S
from .model import Line, failed, level, ok, warn

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import Monitoring

PART = "cache"
DOWN_HINT = "runbook cache-unavailable; inv cache.status shows every node"


def role_lines(nodes: list[Any]) -> list[Line]:
    data = [n for n in nodes if n.role != "sentinel"]
    primaries = [n for n in data if n.role == "primary" and n.alive]
    lines: list[Line] = []
    if not primaries:
        lines.append(failed(PART, "no live primary: writes fail", DOWN_HINT))
    for n in primaries:
        lines.append(ok(PART, f"{n.id}: primary at {n.host}:{n.port}"))
    for n in data:
        if n.role == "primary" and n.alive:
            continue
        if not n.alive:
            lines.append(warn(PART, f"{n.id}: {n.role} is down", DOWN_HINT))
            continue
        lag = n.details.get("lag_s")
        link = n.details.get("link")
        text = (
            f"{n.id}: {n.role}"
            + (f", link {link}" if link else "")
            + (f", lag {lag} s" if lag is not None else "")
        )
        lvl = "WARN" if link not in (None, "up") else level(float(lag or 0), *LAG_S)
        lines.append(
            Line(PART, lvl, text, None if lvl == "OK" else "the replica is behind: a failover loses that")
        )
    sentinels = [n for n in nodes if n.role == "sentinel"]
    if sentinels:
        alive = sum(1 for n in sentinels if n.alive)
        lvl = "OK" if alive == len(sentinels) else ("WARN" if alive > len(sentinels) // 2 else "FAILED")
        lines.append(
            Line(
                PART,
                lvl,
                f"sentinels: {alive} of {len(sentinels)} answer",
                None if lvl == "OK" else "without a majority no failover happens; inv sandbox.up",
            )
        )
    return lines


def memory_line(used: int, maximum: int | None) -> Line:
    if not maximum:
        return ok(PART, f"memory: {used / 2**20:.1f} MiB used (no maxmemory set)")
    pct = 100.0 * used / maximum
    lvl = level(pct, *CACHE_MEMORY_PCT)
    return Line(
        PART,
        lvl,
        f"memory: {used / 2**20:.1f} MiB of {maximum / 2**20:.0f} MiB ({pct:.0f}%)",
        None if lvl == "OK" else "keys are evicted near the limit: runbook high-cpu-memory",
    )


def sandbox(environment: Environment, timeout: float) -> list[Line]:
    import redis

    cache = environment.cache
    lines = role_lines(cache.status())
    if any(line.level == "FAILED" and "primary" in line.text for line in lines):
        return lines
    ep = cache.endpoint()
    client = redis.Redis(
        host=ep.primary_host,
        port=ep.primary_port,
        password=ep.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
    )
    try:
        info = client.info("memory")
    finally:
        client.close()
    lines.append(memory_line(int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)) or None))
    return lines


def aws(environment: Environment, monitoring: Monitoring) -> list[Line]:
    nodes = environment.cache.status()
    lines = role_lines(nodes)
    now = environment.clock.now()
    for n in nodes:
        if n.role != "primary":
            continue
        cluster_id = n.id.split("/")[0]
        pct = monitoring.latest(
            "AWS/ElastiCache",
            "DatabaseMemoryUsagePercentage",
            {"CacheClusterId": cluster_id},
            now,
        )
        if pct is None:
            lines.append(warn(PART, f"memory of {cluster_id}: no datapoint in 15 min"))
            continue
        lvl = level(pct, *CACHE_MEMORY_PCT)
        lines.append(
            Line(
                PART,
                lvl,
                f"memory of {cluster_id}: {pct:.0f}% used",
                None if lvl == "OK" else "keys are evicted near the limit: runbook high-cpu-memory",
            )
        )
    return lines
