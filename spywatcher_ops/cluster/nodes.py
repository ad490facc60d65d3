"""Cluster nodes: list, drain through the Eviction API, uncordon.

A drain is kubectl's: cordon, then evict every pod a controller will re-create
(DaemonSet and mirror pods are left alone), retrying evictions the API refuses
with 429 because a PodDisruptionBudget forbids them, until a deadline. If the
deadline passes or the drain is interrupted, the node is uncordoned and the
error names the PodDisruptionBudget that blocked it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.errors import BadInput, OperationFailed, OpsError, Refused, RolledBack, TimedOut
from ..core.plan import Plan
from ..core.ports import KubeApi, KubeError, Progress, no_progress
from ..core.waiting import wait_for
from .objects import ZONE_LABEL, controller_kind, matches, node_ready, pdb_for, schedulable
from .rollout import DEFAULT_TIMEOUT, wait_rollout

Approve = Callable[[Plan], bool]
Obj = dict[str, Any]


def listing(env: Any) -> dict[str, Any]:
    """Control-plane version and every node: zone, kubelet, AMI, cordoned, pod count."""
    kube = env.cluster.kube
    pods = [
        p
        for p in kube.pods(all_namespaces=True)
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    count: dict[str, int] = {}
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node:
            count[node] = count.get(node, 0) + 1
    rows = []
    for n in sorted(kube.nodes(), key=lambda n: n["metadata"]["name"]):
        labels = n["metadata"].get("labels") or {}
        info = (n.get("status") or {}).get("nodeInfo") or {}
        rows.append(
            {
                "name": n["metadata"]["name"],
                "zone": labels.get(ZONE_LABEL, "?"),
                "instance_type": labels.get("node.kubernetes.io/instance-type"),
                "nodegroup": labels.get("eks.amazonaws.com/nodegroup"),
                "kubelet": info.get("kubeletVersion"),
                "ami": labels.get("eks.amazonaws.com/nodegroup-image") or info.get("osImage"),
                "os_image": info.get("osImage"),
                "ready": node_ready(n),
                "cordoned": bool((n.get("spec") or {}).get("unschedulable")),
                "pods": count.get(n["metadata"]["name"], 0),
            }
        )
    version = kube.version()
    return {
        "environment": env.name,
        "cluster": env.cluster.describe_access(),
        "control_plane": version.get("gitVersion"),
        "nodes": rows,
    }


def _node(kube: KubeApi, name: str, nodes: list[Obj]) -> Obj:
    for n in nodes:
        if n["metadata"]["name"] == name:
            return n
    known = ", ".join(sorted(n["metadata"]["name"] for n in nodes)) or "none"
    raise BadInput(f"--node {name}: no such node; known: {known}")


def _skip_reason(pod: Obj) -> str | None:
    if controller_kind(pod) == "DaemonSet":
        return "DaemonSet pod"
    if "kubernetes.io/config.mirror" in (pod["metadata"].get("annotations") or {}):
        return "static (mirror) pod"
    return None


def evictable(kube: KubeApi, nodes: list[str]) -> tuple[list[Obj], list[Obj]]:
    """(pods a drain of `nodes` evicts, pods it leaves alone: DaemonSet, mirror, finished)."""
    evict: list[Obj] = []
    skipped: list[Obj] = []
    for node in nodes:
        for pod in kube.pods(node=node, all_namespaces=True):
            (skipped if _skip_reason(pod) else evict).append(pod)
    return evict, skipped


def drain_blockers(kube: KubeApi, evict: list[Obj]) -> list[str]:
    """Why evicting these pods could never finish, or would lose one (empty: it can)."""
    out = []
    orphans = [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in evict
        if controller_kind(p) is None and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    if orphans:
        out.append(
            f"pods without a controller would be lost: {', '.join(orphans)}; move or delete them first"
        )
    pdbs = kube.pdbs(all_namespaces=True)
    for pod in evict:
        for pdb in pdb_for(pod, pdbs):
            st = pdb.get("status") or {}
            if int(st.get("expectedPods") or 0) and int(st.get("desiredHealthy") or 0) >= int(
                st.get("expectedPods") or 0
            ):
                out.append(
                    f"PodDisruptionBudget {pdb['metadata']['namespace']}/{pdb['metadata']['name']} "
                    f"needs all {st.get('expectedPods')} pods healthy, so pod {pod['metadata']['name']} can "
                    "never be evicted; scale the deployment up or relax the budget first"
                )
                return out
    return out


def pods_to_evict(kube: KubeApi, nodes: list[str]) -> list[Obj]:
    """The pods to evict, listed once the nodes are cordoned: a pod scheduled between
    the plan (or preflight) and the cordon is evicted too. Refused if one can never be."""
    evict, _ = evictable(kube, nodes)
    blockers = drain_blockers(kube, evict)
    if blockers:
        raise Refused(blockers[0])
    return evict


def plan_drain(env: Any, node_name: str) -> tuple[Plan, list[Obj], list[Obj]]:
    """(plan, pods to evict, pods left alone). Refuses what can never finish, before any change."""
    kube = env.cluster.kube
    nodes = kube.nodes()
    node = _node(kube, node_name, nodes)
    others = [n for n in nodes if n is not node and schedulable(n)]
    if not others:
        raise Refused(
            f"--node {node_name}: it is the last schedulable node; its pods would have nowhere to go"
        )
    evict, skipped = evictable(kube, [node_name])
    blockers = drain_blockers(kube, evict)
    if blockers:
        raise Refused(f"--node {node_name}: {blockers[0]}")
    plan = Plan(f"drain node {node_name}: cordon, then evict {len(evict)} pods")
    plan.add(kube.step_cordon(node_name))
    if (node.get("spec") or {}).get("unschedulable"):
        plan.notes.append(f"{node_name} is already cordoned: it stays cordoned whatever happens")
    for pod in evict:
        plan.add(kube.step_evict(pod))
    for pod in skipped:
        plan.notes.append(
            f"left alone: {pod['metadata']['namespace']}/{pod['metadata']['name']} ({_skip_reason(pod)})"
        )
    plan.notes.append(
        "evictions refused with 429 (a PodDisruptionBudget) are retried until the deadline; "
        "on timeout or Ctrl-C the node is uncordoned"
    )
    return plan, evict, skipped


class Evictions:
    """Evict pods through the Eviction API, retrying the ones a PodDisruptionBudget
    holds back (429) until a deadline. Used by drains and by the node/zone drills."""

    def __init__(self, kube: KubeApi, pods: list[Obj]) -> None:
        self.kube = kube
        self.pending: dict[tuple[str, str], Obj] = {}
        self.pods: list[Obj] = []  # every pod ever added
        self.evicted: list[str] = []
        self.blocked: dict[tuple[str, str], str] = {}
        self._pdbs: list[Obj] | None = None
        self.add(pods)

    def add(self, pods: list[Obj]) -> None:
        """Pods to evict too (the ones already added or evicted are ignored)."""
        for pod in pods:
            key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            if key not in self.pending and f"{key[0]}/{key[1]}" not in self.evicted:
                self.pending[key] = pod
                self.pods.append(pod)

    def round(self) -> tuple[bool, None, str]:
        """One pass over the pods still to evict; a `core.waiting.wait_for` probe."""
        for key, pod in list(self.pending.items()):
            try:
                self.kube.execute(self.kube.step_evict(pod))
            except KubeError as exc:
                if exc.status == 404:  # already gone
                    self.pending.pop(key)
                    continue
                if exc.status != 429:
                    raise
                if self._pdbs is None:
                    self._pdbs = self.kube.pdbs(all_namespaces=True)
                names = [
                    f"{b['metadata']['namespace']}/{b['metadata']['name']}" for b in pdb_for(pod, self._pdbs)
                ]
                why = "; ".join(exc.causes) or exc.api_message
                self.blocked[key] = f"PodDisruptionBudget {', '.join(names) or '?'} ({why})"
                continue
            self.pending.pop(key)
            self.blocked.pop(key, None)
            self.evicted.append(f"{key[0]}/{key[1]}")
        status = f"{len(self.evicted)} evicted, {len(self.pending)} waiting"
        if self.blocked:
            status += f"; blocked by {next(iter(self.blocked.values()))}"
        return not self.pending, None, status

    def run(self, *, clock: Any, timeout: float, interval: float, progress: Progress, what: str) -> list[str]:
        wait_for(self.round, what=what, clock=clock, timeout=timeout, interval=interval, progress=progress)
        return self.evicted

    def why_stuck(self, timeout: float) -> str:
        if not self.pending:
            return ""
        ns, name = next(iter(self.pending))
        return (
            f"could not evict {ns}/{name} within {timeout:.0f} s, "
            f"blocked by {self.blocked.get((ns, name), 'no answer')}"
        )


def pods_gone(kube: KubeApi, node_names: list[str]) -> tuple[bool, None, str]:
    """A `wait_for` probe: no evictable pod is left on these nodes."""
    left = [p for n in node_names for p in kube.pods(node=n, all_namespaces=True) if not _skip_reason(p)]
    return not left, None, f"{len(left)} pods still terminating on {', '.join(node_names)}"


def drain(
    env: Any,
    node_name: str,
    *,
    approve: Approve,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 3.0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    plan, evict, skipped = plan_drain(env, node_name)
    result: dict[str, Any] = {
        "node": node_name,
        "evict": [p["metadata"]["name"] for p in evict],
        "left_alone": [p["metadata"]["name"] for p in skipped],
    }
    if not approve(plan):
        return {**result, "dry_run": True, "plan": plan.to_dict()}
    kube = env.cluster.kube
    clock = env.clock
    deadline = clock.monotonic() + timeout
    evictions = Evictions(kube, evict)
    was_cordoned = bool((kube.node(node_name).get("spec") or {}).get("unschedulable"))

    with env.operation("cluster.drain", {"node": node_name}) as op:
        kube.execute(plan.steps[0])
        op.step("cordon", "ok", node=node_name)
        try:
            evictions.add(pods_to_evict(kube, [node_name]))  # and what was scheduled since the plan
            evictions.run(
                clock=clock,
                timeout=timeout,
                interval=interval,
                progress=progress,
                what=f"evictions from {node_name}",
            )
            op.step("evict", "ok", pods=evictions.evicted)
            wait_for(
                lambda: pods_gone(kube, [node_name]),
                what=f"pods to leave {node_name}",
                clock=clock,
                timeout=max(1.0, deadline - clock.monotonic()),
                interval=interval,
                progress=progress,
            )
            # the drain is done when what was evicted runs again elsewhere
            for dep in kube.deployments():
                match = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                if any(
                    p["metadata"]["namespace"] == kube.namespace
                    and matches(p["metadata"].get("labels") or {}, match)
                    for p in evictions.pods
                ):
                    wait_rollout(
                        kube,
                        dep["metadata"]["name"],
                        clock=clock,
                        timeout=max(1.0, deadline - clock.monotonic()),
                        interval=interval,
                        progress=progress,
                    )
        except BaseException as exc:
            # Ctrl-C, a deadline or an API error: put back what we changed, then say what happened
            undone, failed = "node left cordoned as it was before", False
            if not was_cordoned:
                try:
                    kube.execute(kube.step_cordon(node_name, cordon=False))
                    undone = "node uncordoned"
                except OpsError as again:
                    undone, failed = (
                        (
                            f"uncordoning FAILED ({again}); run: inv cluster.uncordon {node_name} "
                            f"--env {env.name}"
                        ),
                        True,
                    )
            op.step(
                "uncordon",
                "failed" if failed else "rolled-back",
                evicted=evictions.evicted,
                blocked=list(evictions.blocked.values()),
                detail=undone,
            )
            if not isinstance(exc, OpsError):
                raise
            stuck = evictions.why_stuck(timeout) if isinstance(exc, TimedOut) else ""
            if failed:
                raise OperationFailed(f"--node {node_name}: {stuck or exc}; {undone}") from None
            raise RolledBack(
                f"--node {node_name}: {stuck or exc}; {undone} "
                f"({len(evictions.evicted)} pods already evicted were re-created elsewhere)"
            ) from None
        op.result = {**result, "evicted": evictions.evicted}
    return {**result, "dry_run": False, "evicted": evictions.evicted}


def uncordon(env: Any, node_name: str, *, approve: Approve) -> dict[str, Any]:
    kube = env.cluster.kube
    nodes = kube.nodes()
    node = _node(kube, node_name, nodes)
    if not (node.get("spec") or {}).get("unschedulable"):
        return {"node": node_name, "changed": False, "dry_run": False}
    plan = Plan(f"uncordon node {node_name}")
    plan.add(kube.step_cordon(node_name, cordon=False))
    if not approve(plan):
        return {"node": node_name, "changed": False, "dry_run": True, "plan": plan.to_dict()}
    with env.operation("cluster.uncordon", {"node": node_name}) as op:
        kube.execute(plan.steps[0])
        op.step("uncordon", "ok", node=node_name)
    return {"node": node_name, "changed": True, "dry_run": False}
