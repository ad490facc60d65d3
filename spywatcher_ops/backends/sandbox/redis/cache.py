"""The sandbox's cache port: Redis primary + replica behind three sentinels.

A failover here is what losing a node looks like: the primary gets SIGKILL,
the sentinels notice (+sdown, +odown), elect a leader and promote the replica
(+switch-master); a client that follows the sentinels writes again. Then the
old primary is started again as a replica, so there are two copies again.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ....core.errors import BadInput, NotReady, OperationFailed, OpsError, RolledBack
from ....core.plan import Plan, Step
from ....core.ports import CacheEndpoint, CacheNode, FailoverResult, Progress, ProviderEvent, no_progress
from ....core.waiting import wait_for
from ..paths import sandbox_root
from ..secrets import SandboxSecrets
from .servers import DOWN_AFTER_MS, RedisSandbox, replicating

if TYPE_CHECKING:
    from ....core.environment import Environment

CHECK_KEY = "spywatcher-ops:failover-check"
WRITE_TIMEOUT_S = 10.0
REJOIN_TIMEOUT_S = 20.0
POLL_S = 0.05  # loopback state is cheap to read; the switch itself takes about a second


class CacheFailoverInterrupted(RolledBack, KeyboardInterrupt):
    """Ctrl-C during cache.failover, after the repair: exit 4 saying where the primary is."""


class SandboxCache:
    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        section = environment.settings.section("cache")
        self.master_name = str(section.get("master_name") or "spywatcher")
        root = sandbox_root(environment)
        self.redis = RedisSandbox(
            root / "redis",
            master_name=self.master_name,
            down_after_ms=int(section.get("down_after_ms") or DOWN_AFTER_MS),
            secrets=SandboxSecrets(root),
        )

    # read-only -----------------------------------------------------------------
    def node_groups(self) -> list[str]:
        """The sandbox has one node group, named after the sentinel master."""
        return [self.master_name]

    def status(self) -> list[CacheNode]:
        nodes = self.redis.status()
        if not nodes:
            raise NotReady(
                f"the sandbox cache is not set up (no {self.redis.state_path})",
                hint="start it with `inv sandbox.up`",
            )
        return nodes

    def endpoint(self) -> CacheEndpoint:
        """Sentinels + master name (what a client should follow) and the current primary, with
        the passwords: the one place they join the connection info (probes, drills use it)."""
        self.status()
        addr = self.redis.master_address()
        if addr is None:
            primary = next((n for n in self.redis.status() if n.role == "primary" and n.alive), None)
            if primary is None:
                raise NotReady(
                    "the sandbox cache has no primary and no sentinel majority",
                    hint="repair it with `inv sandbox.up`",
                )
            addr = (primary.host, primary.port)
        return CacheEndpoint(
            primary_host=addr[0],
            primary_port=addr[1],
            sentinels=self.redis.sentinel_addresses(),
            master_name=self.master_name,
            password=self.redis.data_password(),
            sentinel_password=self.redis.sentinel_password(),
        )

    def events(self, since: datetime) -> list[ProviderEvent]:
        return self.redis.events(since)

    # No quota on test failovers: one here is a SIGKILL of a local Redis and its sentinels' work.
    quota: int | None = None

    def test_failovers_in_window(self) -> list[ProviderEvent]:
        return []

    # failover ----------------------------------------------------------------
    def plan_failover(self, node_group: str | None = None) -> Plan:
        if node_group is not None and node_group not in self.node_groups():
            raise BadInput(
                f"--node-group {node_group}: no such node group in the sandbox; known: {', '.join(self.node_groups())}"
            )
        primary, replica = self._healthy_pair()
        pid = primary.details["pid"]
        old = f"{primary.host}:{primary.port}"
        new = f"{replica.host}:{replica.port}"
        plan = Plan(title=f"Fail over the sandbox cache (sentinel master {self.master_name})")
        plan.add(
            Step(
                "sandbox",
                "kill",
                {"node": primary.id, "pid": pid, "signal": "SIGKILL", "address": old},
                why="lose the primary the way a crashed node is lost",
            )
        )
        plan.add(
            Step(
                "sentinel",
                "wait_for_switch_master",
                {
                    "master_name": self.master_name,
                    "from": old,
                    "to": new,
                    "timeout_s": round(self.redis.switch_timeout()),
                },
                mutating=False,
                why=f"sentinels detect the loss (+sdown, +odown) and promote {replica.id} (+switch-master)",
            )
        )
        plan.add(
            Step(
                "redis",
                "set",
                {"key": CHECK_KEY, "via": "sentinels", "timeout_s": WRITE_TIMEOUT_S},
                why="prove a client that follows the sentinels writes again",
            )
        )
        plan.add(
            Step(
                "sandbox",
                "start",
                {"node": primary.id, "address": old, "replicaof": new},
                why="bring the old primary back as a replica: two copies again",
            )
        )
        plan.notes.append(
            f"{replica.id} at {new} becomes the primary; the data on {primary.id} is replaced by a copy of it"
        )
        return plan

    def failover(self, plan: Plan, *, progress: Progress = no_progress) -> FailoverResult:
        kill = _step(plan, "kill")
        node, pid, old = kill.params["node"], int(kill.params["pid"]), kill.params["address"]
        new = _step(plan, "wait_for_switch_master").params["to"]
        timeout = float(_step(plan, "wait_for_switch_master").params["timeout_s"])
        primary, replica = self._healthy_pair()
        if primary.id != node or primary.details.get("pid") != pid or f"{replica.host}:{replica.port}" != new:
            raise NotReady(
                f"the cache changed since the plan: primary is now {primary.id} (pid {primary.details.get('pid')}) "
                f"and replica {replica.id}; nothing was done",
                hint="run the command again",
            )
        clock = self.environment.clock
        journal_step = _journal(self.environment)
        events: list[ProviderEvent] = []

        killed_at = clock.now()
        os.kill(pid, signal.SIGKILL)
        events.append(
            ProviderEvent(
                at=killed_at,
                source="spywatcher-ops",
                code="fault",
                message=f"SIGKILL {node} (pid {pid}), the primary at {old}",
            )
        )
        journal_step("kill", "ok", node=node, pid=pid, address=old)

        def switched() -> tuple[bool, tuple[str, int] | None, str]:
            addr = self.redis.master_address()
            if addr and f"{addr[0]}:{addr[1]}" != old:
                return True, addr, f"sentinels report the master at {addr[0]}:{addr[1]}"
            seen = self.redis.events(killed_at)
            last = seen[-1].code if seen else "none yet"
            return False, None, f"master still {old}; last sentinel event: {last}"

        try:
            addr = wait_for(
                switched,
                what=f"the sentinels to promote a new master for {self.master_name}",
                clock=clock,
                timeout=timeout,
                interval=POLL_S,
                progress=progress,
            )
            assert addr is not None
            new_addr = f"{addr[0]}:{addr[1]}"
            journal_step("switch", "ok", new_primary=new_addr)

            written_at = self._first_write(progress)
            events.append(
                ProviderEvent(
                    at=written_at,
                    source="client",
                    code="first-write",
                    message=f"first write through the sentinels acknowledged by {new_addr}",
                )
            )
            journal_step("first-write", "ok", written_at=written_at.isoformat())

            self.redis.start_node(node, replicaof=addr[1])
            rejoined_at = self._await_rejoin(node, new_addr, progress)
            events.append(
                ProviderEvent(
                    at=rejoined_at,
                    source="spywatcher-ops",
                    code="rejoined",
                    message=f"{node} at {old} is a replica of {new_addr} again, and every sentinel knows it",
                )
            )
            journal_step("rejoin", "ok", node=node, replicaof=new_addr)
        except BaseException as exc:
            # Interrupted or timed out after the kill: put a primary and a replica
            # back (up() waits for the sentinels, else restarts the old one in place).
            journal_step("rollback", "started", reason=f"{type(exc).__name__}: {exc}")
            try:
                self.redis.up()
            except Exception as repair:  # noqa: BLE001 - report both; the original error wins
                journal_step("rollback", "failed", error=str(repair))
                raise exc from None
            journal_step("rollback", "ok")
            if isinstance(exc, OpsError):
                raise RolledBack(
                    f"{exc}; the cache was repaired (a primary and a replica run again)"
                ) from exc
            if isinstance(exc, KeyboardInterrupt):  # say where the primary is now: it may have moved
                master = self.redis.master_address()
                now = f"{master[0]}:{master[1]}" if master else "not agreed by the sentinels yet"
                raise CacheFailoverInterrupted(
                    f"cache failover interrupted ({str(exc) or 'Ctrl-C'}) after {node} at {old} was stopped; "
                    f"the cache was repaired: a primary and a replica run again, the primary is {now} "
                    "(`inv cache.status` shows both)"
                ) from exc
            raise

        events.extend(_first_of_each(self.redis.events(killed_at - timedelta(milliseconds=1))))
        events.sort(key=lambda e: e.at)
        new_node = self.redis.node_on_port(addr[1]) or new_addr
        return FailoverResult(
            old_primary=f"{node} ({old})",
            new_primary=f"{new_node} ({new_addr})",
            started=killed_at,
            finished=written_at,
            events=events,
        )

    # internals ---------------------------------------------------------------
    def _healthy_pair(self) -> tuple[CacheNode, CacheNode]:
        """(primary, replica) if a failover can succeed now; NotReady naming what is missing."""
        nodes = self.status()
        hint = "repair it with `inv sandbox.up`"
        primaries = [n for n in nodes if n.role == "primary" and n.alive]
        if len(primaries) != 1:
            raise NotReady(f"the sandbox cache has {len(primaries)} live primaries, expected 1", hint=hint)
        primary = primaries[0]
        addr = f"{primary.host}:{primary.port}"
        replica = next(
            (
                n
                for n in nodes
                if n.role == "replica"
                and n.alive
                and n.details.get("master") == addr
                and n.details.get("link") == "up"
            ),
            None,
        )
        if replica is None:
            raise NotReady(f"no live replica of {primary.id} with its link up to promote", hint=hint)
        sentinels = [n for n in nodes if n.role == "sentinel" and n.alive and n.details.get("master") == addr]
        quorum = int(next((n.details.get("quorum") for n in sentinels), 2) or 2)
        if len(sentinels) < max(quorum, 2):
            raise NotReady(
                f"only {len(sentinels)} sentinels agree {addr} is the master; a failover needs a majority",
                hint=hint,
            )
        return primary, replica

    def _first_write(self, progress: Progress) -> datetime:
        """Write through a sentinel-following client until it is acknowledged."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from redis.sentinel import Sentinel

        no_retry = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 0)}
        sentinel = Sentinel(
            self.redis.sentinel_addresses(),
            sentinel_kwargs={**no_retry, "password": self.redis.sentinel_password()},
            password=self.redis.data_password(),
            **no_retry,
        )
        master = sentinel.master_for(self.master_name, **no_retry)
        clock = self.environment.clock

        def written() -> tuple[bool, datetime | None, str]:
            try:
                master.set(CHECK_KEY, clock.now().isoformat())
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; the deadline decides
                return False, None, f"write failed: {type(exc).__name__}"
            return True, clock.now(), "write acknowledged"

        try:
            done = wait_for(
                written,
                what="a write through the sentinels",
                clock=clock,
                timeout=WRITE_TIMEOUT_S,
                interval=0.01,
                progress=progress,
            )
        finally:
            master.connection_pool.disconnect()
            for conn in sentinel.sentinels:
                conn.close()
        assert done is not None
        return done

    def _await_rejoin(self, node: str, new_addr: str, progress: Progress) -> datetime:
        def linked() -> tuple[bool, datetime | None, str]:
            nodes = self.redis.status()
            me = next((n for n in nodes if n.id == node), None)
            if me is None or not me.alive:
                return False, None, f"{node} is not answering yet"
            if me.role != "replica" or me.details.get("master") != new_addr or me.details.get("link") != "up":
                return False, None, f"{node} is {me.role}, link {me.details.get('link')}"
            if not replicating(int(new_addr.rsplit(":", 1)[1]), password=self.redis.data_password()):
                return False, None, f"{node} does not acknowledge writes yet"
            # the sentinels that were not the leader learn the new master from its hello messages
            behind = [
                n.id
                for n in nodes
                if n.role == "sentinel" and n.alive and n.details.get("master") != new_addr
            ]
            if behind:
                return False, None, f"{', '.join(behind)} still point at the old master"
            return True, self.environment.clock.now(), f"{node} replicates {new_addr}; all sentinels agree"

        done = wait_for(
            linked,
            what=f"{node} to rejoin as a replica of {new_addr}",
            clock=self.environment.clock,
            timeout=REJOIN_TIMEOUT_S,
            interval=0.1,
            progress=progress,
        )
        assert done is not None
        return done


def _step(plan: Plan, action: str) -> Step:
    for step in plan.steps:
        if step.action == action:
            return step
    raise OperationFailed(f"plan {plan.title!r} has no {action} step; it was not made by plan_failover()")


def _first_of_each(events: list[ProviderEvent]) -> list[ProviderEvent]:
    """Each sentinel logs the same event; the timeline needs the first of each kind."""
    seen: set[str | None] = set()
    out = []
    for event in events:
        if event.code not in seen:
            seen.add(event.code)
            out.append(event)
    return out


def _journal(environment: Environment) -> Any:
    """op.step of the operation under way, if any (the task opened it)."""

    def step(name: str, status: str, **data: Any) -> None:
        current = environment.journal.current
        if current is not None:
            current.step(name, status, **data)

    return step
