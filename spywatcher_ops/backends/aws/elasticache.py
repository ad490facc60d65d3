"""ElastiCache (Redis) replication group: status, events, and TestFailover.

TestFailover is rate limited per account: older AWS documentation says 5
node groups in any rolling 24 hours, current pages say 15. We keep the
conservative 5 (ops.cache.test_failover_quota overrides it) and count the
"Test Failover API called for node group ..." events of the last 24 hours
before calling, so a drill is refused up front instead of failing half-way.
The failover is over when ElastiCache reports the promotion and the recovery
of the old primary, and the replication group is `available` again.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ...core.errors import BadInput, NotReady, OperationFailed, Refused
from ...core.plan import Plan, Step
from ...core.ports import (
    CacheEndpoint,
    CacheNode,
    FailoverResult,
    Progress,
    ProviderEvent,
    no_progress,
)
from ...core.waiting import wait_for
from .session import AwsClients

if TYPE_CHECKING:
    from ...core.environment import Environment

DEFAULT_QUOTA = 5
DEFAULT_TIMEOUT_S = 1800.0  # a test failover replaces a node; AWS quotes minutes, not seconds
QUOTA_WINDOW = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=2)  # our clock vs. the event timestamps AWS writes

CALLED = re.compile(r"^Test Failover API called for node group (\S+)")
COMPLETED = re.compile(r"^Failover from (?:primary|master) node (\S+) to replica node (\S+) completed")
RECOVERING = re.compile(r"^Recovering cache nodes? (.+)$")
RECOVERED = re.compile(r"^Finished recovery for cache nodes? (.+)$")
CODES = (
    (CALLED, "test-failover-called"),
    (COMPLETED, "failover-completed"),
    (RECOVERING, "recovering"),
    (RECOVERED, "recovered"),
)


def event_code(message: str) -> str | None:
    for pattern, code in CODES:
        if pattern.match(message):
            return code
    return None


class ElastiCacheCache:
    def __init__(self, environment: Environment, clients: AwsClients) -> None:
        self.environment = environment
        self.clients = clients
        self.group_id = environment.env.resource(environment.settings.project, "redis")
        section = environment.settings.section("cache")
        self.quota = int(section.get("test_failover_quota") or DEFAULT_QUOTA)
        self.timeout = float(section.get("failover_timeout_s") or DEFAULT_TIMEOUT_S)
        self.poll = float(environment.settings.section("aws").get("poll_seconds", 3))

    @property
    def client(self) -> Any:
        return self.clients.client("elasticache")

    # read-only -----------------------------------------------------------------
    def group(self) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            groups = self.client.describe_replication_groups(ReplicationGroupId=self.group_id)[
                "ReplicationGroups"
            ]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ReplicationGroupNotFoundFault":
                raise NotReady(
                    f"replication group {self.group_id} not found in {self.clients.region}",
                    hint=f"set environments.{self.environment.name}.resources.redis to its id",
                ) from None
            raise
        return dict(groups[0])

    def node_groups(self, group: dict[str, Any] | None = None) -> list[str]:
        group = group or self.group()
        return [str(ng["NodeGroupId"]) for ng in group.get("NodeGroups", [])]

    def status(self) -> list[CacheNode]:
        group = self.group()
        cluster_status = self._cluster_statuses()
        common = {
            "replication_group": self.group_id,
            "group_status": group.get("Status"),
            "automatic_failover": group.get("AutomaticFailover"),
            "multi_az": group.get("MultiAZ"),
            "cluster_mode": group.get("ClusterMode")
            or ("enabled" if group.get("ClusterEnabled") else "disabled"),
        }
        nodes = []
        for ng in group.get("NodeGroups", []):
            for member in ng.get("NodeGroupMembers", []):
                cluster_id = str(member.get("CacheClusterId"))
                endpoint = member.get("ReadEndpoint") or {}
                status = cluster_status.get(cluster_id) or ng.get("Status")
                nodes.append(
                    CacheNode(
                        id=f"{cluster_id}/{member.get('CacheNodeId', '0001')}",
                        # cluster-mode-enabled groups report no per-member role
                        role=str(member.get("CurrentRole") or "member"),
                        host=str(endpoint.get("Address") or ""),
                        port=int(endpoint.get("Port") or 0),
                        alive=status == "available",
                        details={
                            **common,
                            "node_group": ng.get("NodeGroupId"),
                            "node_group_status": ng.get("Status"),
                            "status": status,
                            "zone": member.get("PreferredAvailabilityZone"),
                            "primary_endpoint": _address(ng.get("PrimaryEndpoint")),
                        },
                    )
                )
        return nodes

    def endpoint(self) -> CacheEndpoint:
        group = self.group()
        groups = group.get("NodeGroups", [])
        primary = (
            (groups[0].get("PrimaryEndpoint") if groups else None) or group.get("ConfigurationEndpoint") or {}
        )
        return CacheEndpoint(
            primary_host=str(primary.get("Address") or ""),
            primary_port=int(primary.get("Port") or 6379),
            tls=bool(group.get("TransitEncryptionEnabled")),
        )

    def events(self, since: datetime) -> list[ProviderEvent]:
        """Events of this replication group and its member clusters since `since`."""
        return self._events_of(self.group(), since)

    def test_failovers_in_window(self) -> list[ProviderEvent]:
        """TestFailover calls of the last 24 h in this region (the quota is per account)."""
        since = self.environment.clock.now() - QUOTA_WINDOW
        return [
            e
            for e in self._events(since, source_type="replication-group")
            if e.code == "test-failover-called"
        ]

    # failover ----------------------------------------------------------------
    def plan_failover(self, node_group: str | None = None) -> Plan:
        group = self.group()
        known = self.node_groups(group)
        if node_group is None:
            if len(known) != 1:
                raise BadInput(f"--node-group is needed: {self.group_id} has node groups {', '.join(known)}")
            node_group = known[0]
        elif node_group not in known:
            raise BadInput(
                f"--node-group {node_group}: no such node group in {self.group_id}; known: {', '.join(known) or 'none'}"
            )
        if group.get("AutomaticFailover") != "enabled":
            raise NotReady(
                f"{self.group_id}: automatic failover is {group.get('AutomaticFailover')}; TestFailover needs it enabled"
            )
        if group.get("Status") != "available":
            raise NotReady(f"{self.group_id} is {group.get('Status')}, not available; try again when it is")
        ng = next(g for g in group["NodeGroups"] if g["NodeGroupId"] == node_group)
        members = ng.get("NodeGroupMembers", [])
        if len(members) < 2:
            raise NotReady(f"node group {node_group} of {self.group_id} has no replica to promote")
        used = self.test_failovers_in_window()
        if len(used) >= self.quota:
            oldest = min(e.at for e in used)
            raise Refused(
                f"TestFailover quota reached: {len(used)} calls in the last 24 h (limit {self.quota}); "
                f"the next is possible after {(oldest + QUOTA_WINDOW):%Y-%m-%dT%H:%M:%SZ}"
            )
        primary = next((m["CacheClusterId"] for m in members if m.get("CurrentRole") == "primary"), "?")
        plan = Plan(title=f"Test failover of ElastiCache {self.group_id} node group {node_group}")
        plan.add(
            Step(
                "elasticache",
                "test_failover",
                {"ReplicationGroupId": self.group_id, "NodeGroupId": node_group},
                why=f"ElastiCache fails primary {primary} over to a replica, as when a node or AZ is lost",
            )
        )
        plan.add(
            Step(
                "elasticache",
                "wait_for_failover",
                {"ReplicationGroupId": self.group_id, "poll_s": self.poll, "timeout_s": self.timeout},
                mutating=False,
                why="poll describe_events and describe_replication_groups until 'Failover ... completed', "
                "'Finished recovery for cache nodes' and the group is available",
            )
        )
        plan.notes.append(f"TestFailover quota: {len(used)} of {self.quota} used in the last 24 h")
        return plan

    def failover(self, plan: Plan, *, progress: Progress = no_progress) -> FailoverResult:
        call = next((s for s in plan.steps if s.action == "test_failover"), None)
        if call is None:
            raise OperationFailed(f"plan {plan.title!r} has no test_failover step")
        node_group = str(call.params["NodeGroupId"])
        before = self.group()
        old_primary = _primary_of(before, node_group) or "?"
        clock = self.environment.clock
        started = clock.now()
        self.client.test_failover(**call.params)
        current = self.environment.journal.current
        if current is not None:
            current.step("test_failover", "ok", node_group=node_group, old_primary=old_primary)

        def done() -> tuple[bool, tuple[list[ProviderEvent], dict[str, Any]] | None, str]:
            group = self.group()
            events = self._events_of(group, started - CLOCK_SKEW)
            events = [e for e in events if e.at >= _called_at(events, node_group, started)]
            codes = {e.code for e in events}
            ng_status = next(
                (g.get("Status") for g in group.get("NodeGroups", []) if g.get("NodeGroupId") == node_group),
                "?",
            )
            last = events[-1].message if events else "no events yet"
            status = f"group {group.get('Status')}, node group {ng_status}; last event: {last}"
            finished = (
                {"failover-completed", "recovered"} <= codes
                and group.get("Status") == "available"
                and ng_status == "available"
            )
            return finished, ((events, group) if finished else None), status

        outcome = wait_for(
            done,
            what=f"ElastiCache to finish the test failover of {self.group_id}/{node_group}",
            clock=clock,
            timeout=self.timeout,
            interval=self.poll,
            progress=progress,
        )
        assert outcome is not None
        events, after = outcome
        new_primary = _primary_of(after, node_group)
        if new_primary is None:
            completed = next((e for e in events if e.code == "failover-completed"), None)
            match = COMPLETED.match(completed.message) if completed else None
            new_primary = match.group(2) if match else "?"
        return FailoverResult(
            old_primary=old_primary,
            new_primary=new_primary,
            started=started,
            finished=clock.now(),
            events=events,
        )

    # internals ---------------------------------------------------------------
    def _events_of(self, group: dict[str, Any], since: datetime) -> list[ProviderEvent]:
        ours = {self.group_id, *(str(m) for m in group.get("MemberClusters", []))}
        return [e for e in self._events(since) if e.source in ours]

    def _cluster_statuses(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for page in self.client.get_paginator("describe_cache_clusters").paginate():
            for cluster in page.get("CacheClusters", []):
                out[str(cluster["CacheClusterId"])] = str(cluster.get("CacheClusterStatus"))
        return out

    def _events(self, since: datetime, source_type: str | None = None) -> list[ProviderEvent]:
        kwargs: dict[str, Any] = {"StartTime": since}
        if source_type:
            kwargs["SourceType"] = source_type
        out = []
        while True:
            page = self.client.describe_events(**kwargs)
            for raw in page.get("Events", []):
                message = str(raw.get("Message", ""))
                out.append(
                    ProviderEvent(
                        at=raw["Date"],
                        source=str(raw.get("SourceIdentifier", "")),
                        message=message,
                        code=event_code(message),
                    )
                )
            marker = page.get("Marker")
            if not marker:
                break
            kwargs["Marker"] = marker
        out.sort(key=lambda e: e.at)
        return out


def _address(endpoint: dict[str, Any] | None) -> str | None:
    if not endpoint:
        return None
    return f"{endpoint.get('Address')}:{endpoint.get('Port')}"


def _primary_of(group: dict[str, Any], node_group: str) -> str | None:
    for ng in group.get("NodeGroups", []):
        if ng.get("NodeGroupId") == node_group:
            for member in ng.get("NodeGroupMembers", []):
                if member.get("CurrentRole") == "primary":
                    return str(member.get("CacheClusterId"))
    return None


def _called_at(events: list[ProviderEvent], node_group: str, fallback: datetime) -> datetime:
    """When AWS logged our TestFailover call (the newest for this node group): later events are ours."""
    for event in reversed(events):
        match = CALLED.match(event.message)
        if match and match.group(1) == node_group:
            return event.at
    return fallback - CLOCK_SKEW
