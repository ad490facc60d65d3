"""A rolling restart of the sandbox's Redis, the way a managed service patches
a replication group: the replica first (restarted, resynced, checked), then a
sentinel failover (`SENTINEL FAILOVER`: the sentinels promote the replica
without waiting to detect a failure), then the old primary, restarted as a
replica of the new one. Clients that follow the sentinels see one short
write pause; writes the old primary acknowledged but had not yet sent to the
replica are lost (Redis replicates asynchronously): the run's probes count them.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from ....core.errors import NotReady, OperationFailed
from ....core.plan import Plan, Step
from ....core.ports import CacheNode, MaintenanceResult, Progress, ProviderEvent
from ..pairplan import pair_plan
from .cache import SandboxCache
from .servers import client, pid_alive

if TYPE_CHECKING:
    from ....core.environment import Environment

STOP_TIMEOUT_S = 10.0
PAUSE_MS = 15000  # the longest writes may be held on the old primary; released as soon as the switch is seen


def _offset(port: int, password: str | None, key: str) -> int:
    return int(client(port, password=password).info("replication").get(key) or 0)


def _await_caught_up(primary: int, replica: int, password: str | None, timeout: float = 5.0) -> str:
    """With writes paused, the replica holds everything the primary acknowledged."""
    deadline = time.monotonic() + timeout
    while True:
        want, have = (
            _offset(primary, password, "master_repl_offset"),
            _offset(replica, password, "slave_repl_offset"),
        )
        if have >= want:
            return f"at offset {have}"
        if time.monotonic() > deadline:
            return f"{want - have} bytes behind after {timeout:.0f} s"
        time.sleep(0.005)


def plan_rolling_restart(environment: Environment) -> Plan:
    cache = SandboxCache(environment)
    primary, replica = cache._healthy_pair()
    return pair_plan(
        f"rolling restart of the sandbox cache ({cache.master_name}): {replica.id}, failover, {primary.id}",
        (
            "restart",
            {"node": replica.id, "replicaof": f"{primary.host}:{primary.port}"},
            "the replica first: the primary keeps serving",
        ),
        Step(
            "sentinel",
            "SENTINEL FAILOVER",
            {"master_name": cache.master_name, "to": replica.id},
            why="a planned failover: the sentinels promote the replica without waiting to detect a failure",
        ),
        (
            "restart",
            {"node": primary.id, "replicaof": f"{replica.host}:{replica.port}"},
            "the old primary comes back as a replica of the new one",
        ),
    )


def _stop(node: CacheNode) -> None:
    pid = int(node.details.get("pid") or 0)
    if not pid_alive(pid, node.port):
        return
    os.kill(pid, signal.SIGTERM)  # redis-server shuts down cleanly on SIGTERM
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid_alive(pid, node.port):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    while pid_alive(pid, node.port):
        time.sleep(0.01)


def _ask_failover(sentinels: list[CacheNode], password: str | None, master: str) -> None:
    """SENTINEL FAILOVER, asked again while the sentinels do not yet count the restarted
    replica as promotable (NOGOODSLAVE until they have fresh INFO from it)."""
    import redis

    deadline = time.monotonic() + 20
    while True:
        for node in sentinels:
            try:
                client(node.port, password=password).execute_command("SENTINEL", "FAILOVER", master)
                return
            except redis.ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc) and "INPROG" not in str(exc):
                    raise
                last = str(exc)
        if time.monotonic() > deadline:
            raise OperationFailed(f"the sentinels would not start the failover within 20 s: {last}")
        time.sleep(0.2)


def rolling_restart(environment: Environment, progress: Progress) -> MaintenanceResult:
    cache = SandboxCache(environment)
    r = cache.redis
    clock = environment.clock
    primary, replica = cache._healthy_pair()
    old_addr, new_addr = f"{primary.host}:{primary.port}", f"{replica.host}:{replica.port}"
    events: list[ProviderEvent] = []
    started = clock.now()

    def note(code: str, message: str) -> None:
        events.append(ProviderEvent(at=clock.now(), source="sandbox", message=message, code=code))

    # 1. the replica
    progress(f"restarting replica {replica.id}")
    note("replica-restart", f"replica {replica.id} ({new_addr}) restarts")
    _stop(replica)
    r.start_node(replica.id, replicaof=primary.port)
    cache._await_rejoin(replica.id, old_addr, progress)
    note("replica-back", f"{replica.id} is back, replicating {old_addr}")

    # 2. the planned failover
    progress(f"sentinel failover to {replica.id}")
    sentinels = [n for n in cache.status() if n.role == "sentinel" and n.alive]
    if not sentinels:
        raise NotReady("no live sentinel to ask for the failover", hint="run `inv sandbox.up`")
    t_failover = time.monotonic()
    old = client(primary.port, password=r.data_password())
    # Writes wait on the old primary instead of being acknowledged there and then lost when it
    # becomes a replica; once it is one, they fail (READONLY) and clients ask the sentinels again.
    old.execute_command("CLIENT", "PAUSE", str(PAUSE_MS), "WRITE")
    try:
        caught_up = _await_caught_up(primary.port, replica.port, r.data_password())
        note(
            "failover",
            f"writes held on {primary.id} (replica {caught_up}); SENTINEL FAILOVER {cache.master_name}",
        )
        _ask_failover(sentinels, r.sentinel_password(), cache.master_name)
        deadline = time.monotonic() + r.switch_timeout()
        while True:
            addr = r.master_address()
            if addr and f"{addr[0]}:{addr[1]}" == new_addr:
                break
            if time.monotonic() > deadline:
                raise OperationFailed(
                    f"the sentinels did not promote {replica.id} within {r.switch_timeout():.0f} s "
                    f"(master still {addr})"
                )
            time.sleep(0.02)
        # the sentinels convert the old primary only when they next look at it; until then it
        # would take the held writes as a master. Make it a replica now, then release them.
        old.execute_command("REPLICAOF", replica.host, str(replica.port))
    finally:
        try:
            old.execute_command("CLIENT", "UNPAUSE")
        except Exception:  # noqa: BLE001 - the pause ends by itself after PAUSE_MS
            pass
        old.close()
    switched_s = round(time.monotonic() - t_failover, 3)
    note(
        "switch-master", f"sentinels report {replica.id} ({new_addr}) as the master after {switched_s:.2f} s"
    )

    # 3. the old primary, as a replica of the new one
    progress(f"restarting {primary.id} as a replica of {replica.id}")
    _stop(primary)
    r.start_node(primary.id, replicaof=replica.port)
    cache._await_rejoin(primary.id, new_addr, progress)
    note("old-primary-back", f"{primary.id} ({old_addr}) replicates {new_addr}; all sentinels agree")
    sentinel_events = [
        e for e in r.events(started) if e.code in ("+switch-master", "+promoted-slave", "+failover-end")
    ]
    seen: set[str | None] = set()
    for ev in sentinel_events:
        if ev.code not in seen:
            seen.add(ev.code)
            events.append(ev)
    events.sort(key=lambda e: e.at)
    return MaintenanceResult(
        events, {"old_primary": primary.id, "new_primary": replica.id, "failover_s": switched_s}
    )
