"""Application drills on EKS: app-pod-loss, node-loss, zone-loss.

Each measures the application RTO on the drill timeline with two probes:
- `app-health`: GET the API's health URL (`environments.<env>.health_url`)
  the way a client does; any 2xx is up;
- `deployments-ready`: every application deployment has all its replicas
  ready and updated (read from the Kubernetes API).
RTO = fault -> both stable again (the slower of the two). RPO is not judged:
the application is stateless (the database drills measure data loss).

Preflight predicts misses before anything is touched: fewer than 2
replicas, replicas not spread across zones, no PodDisruptionBudget, no
readiness probe, and the default 300 s not-ready toleration (on a real node
failure, pods are only moved after it, which alone exceeds a short target;
the drills drain gracefully, so they cannot show that delay themselves).

Scenario parameters (`dr.drill --param k=v`, as the drill task passes them):
app-pod-loss `share` (0-1, default 0.5 of the backend pods); node-loss
`node` (default: the node with most backend pods); zone-loss `zone`
(default: the zone with most backend pods).
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...cluster.deployments import SHORT_NAMES
from ...cluster.objects import ZONE_LABEL, matches, pdb_for, schedulable
from ...core.errors import BadInput, NotReady, OpsError, Refused, TimedOut
from ...core.plan import Plan
from ...core.ports import CORDONED_BY, KubeError, ProviderEvent
from ..cleanup import undo_handler
from ..http_probe import HttpHealthProbe, health_url
from ..probes import Anchor, Cadence, ProbeThread
from ..runner import failover_measure, mark_fault
from ..scenario import Check, DrillContext, DrillOptions, Fault, Measured, Scenario
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment

Obj = dict[str, Any]
DEFAULT_TOLERATION_S = 300  # what Kubernetes adds to every pod without its own
TOLERATION_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
API_PROBE_FLOOR_S = 0.25  # the Kubernetes API is polled at most 4 times a second


# probes ------------------------------------------------------------------------


class DeploymentsReadyProbe(ProbeThread):
    """Every application deployment has all desired replicas ready and updated."""

    name = "deployments-ready"
    part = "application"
    kind = "read"

    def __init__(self, kube: Any, names: list[str], anchor: Anchor, cadence: Cadence) -> None:
        # failures are retried at the healthy pace: the API is not a thing to hammer
        pace = max(cadence.interval, API_PROBE_FLOOR_S)
        super().__init__(anchor, replace(cadence, interval=pace, retry_interval=pace))
        self.kube = kube
        self.names = names

    def once(self) -> None:
        short = []
        for name in self.names:
            dep = self.kube.deployment(name)
            want = int(dep["spec"].get("replicas", 1))
            st = dep.get("status") or {}
            ready, updated = int(st.get("readyReplicas") or 0), int(st.get("updatedReplicas") or 0)
            if ready < want or updated < want:
                short.append(f"{name} {ready}/{want} ready")
        if short:
            raise RuntimeError(", ".join(short))


# helpers -------------------------------------------------------------------------


def _app_state(env: Environment) -> Obj:
    """Deployments, their pods, nodes and PDBs, read once."""
    cluster = env.cluster
    kube = cluster.kube
    nodes = kube.nodes()
    zones = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ZONE_LABEL, "?") for n in nodes}
    present = {d["metadata"]["name"]: d for d in kube.deployments()}
    deployments = {short: present.get(cluster.deployment_name(short)) for short in SHORT_NAMES}
    return {
        "nodes": nodes,
        "zones": zones,
        "deployments": deployments,
        "pods": kube.pods(),
        "pdbs": kube.pdbs(),
    }


def _pods_of(dep: Obj, pods: list[Obj]) -> list[Obj]:
    match = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return [p for p in pods if matches(p["metadata"].get("labels") or {}, match)]


def _backend_pods(state: Obj) -> list[Obj]:
    """The backend's pods; by its usual label when the deployment itself is missing."""
    backend = state["deployments"].get("backend") or {
        "spec": {"selector": {"matchLabels": {"app": "backend"}}}
    }
    return _pods_of(backend, state["pods"])


def _toleration_s(template: Obj) -> int | None:
    """The pods' not-ready/unreachable toleration in seconds (None: tolerated forever)."""
    found: list[int | None] = []
    for tol in (template.get("spec") or {}).get("tolerations") or []:
        if tol.get("key") in TOLERATION_KEYS and tol.get("effect", "NoExecute") == "NoExecute":
            found.append(tol.get("tolerationSeconds"))
    if not found:
        return DEFAULT_TOLERATION_S
    if any(v is None for v in found):
        return None
    return max(int(v) for v in found if v is not None)


def _count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _share(raw: Any) -> float:
    """app-pod-loss's `share`: more than 0, at most 1."""
    accepted = "use more than 0 and at most 1, e.g. share=0.5"
    try:
        share = float(raw)
    except (TypeError, ValueError):
        raise BadInput(f"--param share={raw}: not a number; {accepted}") from None
    if not 0 < share <= 1:  # NaN fails this too
        raise BadInput(f"--param share={raw}: out of range; {accepted}")
    return share


def _drain_checks(env: Environment, nodes: list[str]) -> list[Check]:
    """What cluster.drain refuses, checked before the drill touches anything: one failed check per blocker."""
    from ...cluster.nodes import drain_blockers, evictable

    kube = env.cluster.kube
    blockers = drain_blockers(kube, evictable(kube, nodes)[0])
    if not blockers:
        return [Check("drain possible", "ok", f"every pod on {', '.join(nodes)} can be evicted")]
    return [
        Check("drain possible", "failed", why, hint="the drill would stall on it or lose the pod")
        for why in blockers
    ]


def _busiest(counts: dict[str, int], allowed: list[str]) -> str | None:
    """The allowed key holding the most pods (ties: the first name)."""
    ranked = sorted(allowed, key=lambda k: (-counts.get(k, 0), k))
    return ranked[0] if ranked else None


# the scenarios ----------------------------------------------------------------------


class AppScenario(Scenario):
    """What the three application drills share."""

    part = "application"
    rto_key = "application"
    rpo_key = None  # stateless: nothing to lose; the database drills judge RPO
    kinds = ("aws",)
    unsupported = {"sandbox": "the sandbox has no cluster; application drills need an EKS cluster"}
    probes = ("app-health", "deployments-ready")
    judged_by = ("app-health", "deployments-ready")
    timeout_s = 600.0
    timeout_aws_s = 900.0
    predicts: tuple[str, ...] = ("replicas", "readiness", "pdb")
    # the EKS way in; Kubernetes RBAC is checked by the calls themselves
    aws_actions: tuple[str, ...] = ("eks:DescribeCluster",)

    def aws_actions_for(self, env: Environment) -> tuple[str, ...]:
        """A kubeconfig context (`kube_context`) never calls eks:DescribeCluster: don't ask IAM for it."""
        return () if env.env.raw.get("kube_context") else self.aws_actions

    # preflight ---------------------------------------------------------------
    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        try:
            state = _app_state(env)
        except OpsError as exc:
            return [Check("cluster reachable", "failed", str(exc), hint=exc.hint)]
        checks = [Check("cluster reachable", "ok", env.cluster.describe_access())]
        checks.append(self._health_check(env, options))
        target = env.settings.targets.rto.get(self.rto_key)
        for short, dep in state["deployments"].items():
            if dep is None:
                checks.append(
                    Check(
                        f"{short} deployment",
                        "failed",
                        f"{env.cluster.deployment_name(short)} is not in namespace {env.cluster.namespace}",
                    )
                )
                continue
            checks += self._predictions(short, dep, state, target)
        checks += self._scenario_checks(env, state, options)
        return checks

    def _health_check(self, env: Environment, options: DrillOptions) -> Check:
        url = health_url(env)
        if not url:
            return Check(
                "health URL",
                "failed",
                f"environments.{env.name}.health_url is not set",
                hint="set it to the API's health endpoint, e.g. https://api.spywatcher.example.com/health",
            )
        try:
            with urllib.request.urlopen(url, timeout=options.cadence.op_timeout) as reply:
                return Check("health URL", "ok", f"{url} answers {reply.status}")
        except urllib.error.HTTPError as exc:
            return Check(
                "health URL",
                "failed",
                f"{url} answers {exc.code}",
                hint="the application must be healthy before a drill",
            )
        except (urllib.error.URLError, OSError) as exc:
            return Check("health URL", "failed", f"{url}: {getattr(exc, 'reason', exc)}")

    def _predictions(self, short: str, dep: Obj, state: Obj, target: float | None) -> list[Check]:
        out: list[Check] = []
        want = int(dep["spec"].get("replicas", 1))
        pods = _pods_of(dep, state["pods"])
        template = dep["spec"].get("template") or {}
        if "replicas" in self.predicts:
            if want < 2:
                out.append(
                    Check(
                        f"{short} replicas",
                        "warn",
                        f"{want} replica: losing it is an outage until a replacement is ready (predicted miss of a short target)",
                        hint=f"run at least 2 replicas of {short}",
                    )
                )
            else:
                out.append(Check(f"{short} replicas", "ok", f"{want} replicas"))
        if "zones" in self.predicts:
            zones = sorted({state["zones"].get(p["spec"].get("nodeName") or "", "?") for p in pods})
            if len(zones) < 2:
                out.append(
                    Check(
                        f"{short} zone spread",
                        "warn",
                        f"all {len(pods)} pods in {', '.join(zones) or 'no zone'}: losing that zone takes {short} down",
                        hint="add a topologySpreadConstraint on topology.kubernetes.io/zone",
                    )
                )
            else:
                out.append(
                    Check(f"{short} zone spread", "ok", f"pods in {len(zones)} zones: {', '.join(zones)}")
                )
        if "nodes" in self.predicts:
            nodes = {p["spec"].get("nodeName") for p in pods}
            if len(nodes) < 2:
                out.append(
                    Check(
                        f"{short} node spread",
                        "warn",
                        f"all {len(pods)} pods on one node: losing it takes {short} down",
                        hint="add pod anti-affinity or a topologySpreadConstraint on kubernetes.io/hostname",
                    )
                )
        if "pdb" in self.predicts:
            covering = pdb_for(pods[0], state["pdbs"]) if pods else []
            if not covering:
                out.append(
                    Check(
                        f"{short} PodDisruptionBudget",
                        "warn",
                        "none: a drain may evict every replica at once (predicted outage)",
                        hint=f"add a PodDisruptionBudget with minAvailable: 1 for {short}",
                    )
                )
            else:
                out.append(
                    Check(
                        f"{short} PodDisruptionBudget",
                        "ok",
                        ", ".join(
                            f"{p['metadata']['name']} allows {(p.get('status') or {}).get('disruptionsAllowed')}"
                            for p in covering
                        ),
                    )
                )
        if "readiness" in self.predicts:
            missing = [
                c.get("name", "?")
                for c in (template.get("spec") or {}).get("containers") or []
                if not c.get("readinessProbe")
            ]
            if missing:
                out.append(
                    Check(
                        f"{short} readiness probe",
                        "warn",
                        f"container {', '.join(missing)} has none: new pods get traffic before they can serve",
                        hint="add a readinessProbe on the health endpoint",
                    )
                )
            else:
                out.append(Check(f"{short} readiness probe", "ok", "every container has one"))
        if "toleration" in self.predicts:
            tol = _toleration_s(template)
            if tol is None:
                out.append(
                    Check(
                        f"{short} not-ready toleration",
                        "warn",
                        "pods tolerate a not-ready node forever: a real node failure never moves them",
                    )
                )
            elif target is not None and tol >= target:
                default = " (the Kubernetes default)" if tol == DEFAULT_TOLERATION_S else ""
                out.append(
                    Check(
                        f"{short} not-ready toleration",
                        "warn",
                        f"{tol} s{default}: on a real node failure pods move only after {tol} s, which alone "
                        f"exceeds the {target:.0f} s application RTO target (this drill drains, so it cannot show it)",
                        hint="set tolerationSeconds for node.kubernetes.io/not-ready and /unreachable to e.g. 30",
                    )
                )
            else:
                out.append(Check(f"{short} not-ready toleration", "ok", f"{tol} s"))
        return out

    def _scenario_checks(self, env: Environment, state: Obj, options: DrillOptions) -> list[Check]:
        return []

    def recheck(self, env: Environment) -> list[Check]:
        """After the rollback: the application serves and runs at full strength again."""
        checks = [self._health_check(env, DrillOptions())]
        try:
            cluster = env.cluster
            for short in SHORT_NAMES:
                dep = cluster.kube.deployment(cluster.deployment_name(short))
                want = int(dep["spec"].get("replicas", 1))
                ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
                checks.append(
                    Check(
                        f"{short} ready",
                        "ok" if ready >= want else "failed",
                        f"{ready}/{want} replicas ready",
                    )
                )
        except OpsError as exc:
            checks.append(Check("deployments ready", "failed", str(exc), hint=exc.hint))
        return checks

    # lifecycle ---------------------------------------------------------------
    def setup(self, ctx: DrillContext) -> None:
        ctx.env.cluster.connect()  # build the client (and token) once, before threads share it

    def make_probes(self, ctx: DrillContext) -> list[Any]:
        url = health_url(ctx.env)
        if not url:
            raise NotReady(
                f"environments.{ctx.env.name}.health_url is not set; the drill measures through it"
            )
        cluster = ctx.env.cluster
        present = {d["metadata"]["name"] for d in cluster.kube.deployments()}
        names = [cluster.deployment_name(s) for s in SHORT_NAMES if cluster.deployment_name(s) in present]
        return [
            HttpHealthProbe(url, ctx.anchor, ctx.options.cadence),
            DeploymentsReadyProbe(cluster.kube, names, ctx.anchor, ctx.options.cadence),
        ]

    def measure(self, ctx: DrillContext, fault: Fault, probe_results: dict[str, Any]) -> Measured:
        measured = failover_measure(ctx, fault, probe_results, self.judged_by)
        health = probe_results.get("app-health") or {}
        ready = probe_results.get("deployments-ready") or {}
        measured.rto_basis = (
            "fault -> the health URL answering 2xx and every deployment fully ready, "
            f"each followed by {ctx.options.stability.stable_count} good attempts (the slower counts)"
        )
        measured.rpo_basis = "not judged: the application is stateless"
        measured.details = {
            **fault.details,
            "health_rto_s": health.get("rto_s"),
            "health_impacted": health.get("impacted"),
            "readiness_rto_s": ready.get("rto_s"),
            "readiness_first_error": ready.get("first_error"),
        }
        return measured

    def provider_events(self, ctx: DrillContext, since: datetime) -> list[ProviderEvent]:
        from ...cluster.deployments import _event_time

        out = []
        for e in ctx.env.cluster.kube.events(warnings_only=False):
            at = _event_time(e)
            if at >= since:
                obj = e.get("involvedObject") or {}
                out.append(
                    ProviderEvent(
                        at=at,
                        source=f"{obj.get('kind')}/{obj.get('name')}",
                        message=f"{e.get('reason')}: {e.get('message')}",
                        code=e.get("reason"),
                    )
                )
        return out

    def rollback(self, ctx: DrillContext, fault: Fault | None) -> None:
        # Every node journalled as to-uncordon, not only those whose cordon call returned: a
        # PATCH whose answer was lost may still have landed. The mark check makes this safe.
        ours: list[str] = ctx.scratch.get("ours", [])
        if not ours:
            return
        detail, outcome = _uncordon_ours(ctx.env, ours, ctx.op.id)
        for node, status in outcome.items():
            ctx.step(
                "uncordon", "ok" if status in ("uncordoned", "gone") else "skipped", node=node, result=status
            )
        ctx.event("rollback", detail, source="kubernetes")
        if ctx.scratch.get("undo_id"):
            ctx.undone(ctx.scratch["undo_id"], detail)

    # shared by node-loss and zone-loss -----------------------------------------
    def _drain(self, ctx: DrillContext, nodes: list[str], description: str, **details: Any) -> Fault:
        from ...cluster.nodes import Evictions, pods_gone, pods_to_evict
        from ...core.waiting import wait_for

        kube = ctx.env.cluster.kube
        # only nodes we cordon are uncordoned afterwards; one cordoned before stays so
        ours = [n for n in nodes if not (kube.node(n).get("spec") or {}).get("unschedulable")]
        if ours:  # journaled first: a drill killed after this line is uncordoned by the next run's cleanup
            ctx.scratch["undo_id"] = ctx.undo("uncordon", nodes=ours, by=ctx.op.id)
            ctx.scratch["ours"] = ours
        fault = mark_fault(ctx, description, nodes=nodes, **details)
        for node in ours:
            kube.execute(kube.step_cordon(node, by=ctx.op.id))
        # listed only now: a pod scheduled before the cordon landed would otherwise never be evicted
        pods = pods_to_evict(kube, nodes)
        fault.details["pods"] = len(pods)
        evictions = Evictions(kube, pods)
        timeout = self.hard_timeout(ctx.env, ctx.options)
        interval = max(ctx.options.cadence.interval, API_PROBE_FLOOR_S)
        try:
            evictions.run(
                clock=ctx.env.clock,
                timeout=timeout,
                interval=interval,
                progress=lambda s: ctx.progress(f"draining: {s}"),
                what="the drill's evictions",
            )
        except TimedOut:
            raise TimedOut(f"drill {self.name}: {evictions.why_stuck(timeout)}") from None
        ctx.event(
            "provider", f"evicted {len(evictions.evicted)} pods from {', '.join(nodes)}", source="kubernetes"
        )
        wait_for(
            lambda: pods_gone(kube, nodes),
            what="evicted pods to terminate",
            clock=ctx.env.clock,
            timeout=timeout,
            interval=interval,
        )
        fault.details["evicted"] = evictions.evicted
        return fault


@undo_handler("uncordon")
def _uncordon(env: Environment, data: dict[str, Any]) -> str:
    """Make nodes a killed node/zone drill cordoned schedulable again."""
    return _uncordon_ours(env, list(data.get("nodes", [])), data.get("by"))[0]


def _uncordon_ours(env: Environment, nodes: list[str], by: str | None) -> tuple[str, dict[str, str]]:
    """Uncordon the nodes this drill (`by`) cordoned. A node that is gone (autoscaler) counts
    as done; one without our mark (cordoned since by someone else, or never by us) is left
    alone. Returns (one line, node -> uncordoned | gone | left alone)."""
    kube = env.cluster.kube
    done, gone, kept = [], [], []
    for node in nodes:
        try:
            obj = kube.node(node)
        except KubeError as exc:
            if exc.status == 404:
                gone.append(node)
                continue
            raise
        marked = ((obj.get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY)
        if by is not None and marked != by:
            kept.append(node)
            continue
        kube.execute(kube.step_cordon(node, cordon=False, by=by))
        done.append(node)
    parts = [f"uncordoned {', '.join(done)}"] if done else []
    parts += [f"{', '.join(gone)} no longer exist(s)"] if gone else []
    parts += (
        [f"left {', '.join(kept)} alone (not cordoned by this drill, or since by someone else)"]
        if kept
        else []
    )
    outcome = {
        **{n: "uncordoned" for n in done},
        **{n: "gone" for n in gone},
        **{n: "left alone" for n in kept},
    }
    return "; ".join(parts) or "nothing to uncordon", outcome


@register
class AppPodLoss(AppScenario):
    name = "app-pod-loss"
    injects = "deletes a share (default half) of the backend pods at once"
    # In the aws default suite once environments.<env>.health_url is set (it measures
    # through it). node-loss and zone-loss disturb whole nodes: only on request
    # (--scenario, or environments.<env>.drill_suite).
    default_for = ("aws",)
    default_needs = "health_url"
    predicts = ("replicas", "readiness", "pdb")
    params = {"share": "the share of backend pods to delete, more than 0 and at most 1 (default 0.5)"}

    def check_params(self, params: dict[str, str]) -> None:
        if "share" in params:
            _share(params["share"])

    def in_default_suite(self, env: Environment) -> bool:
        return super().in_default_suite(env) and health_url(env) is not None

    def _victims(self, env: Environment, options: DrillOptions) -> tuple[list[Obj], int]:
        share = _share(options.params.get("share", 0.5))
        cluster = env.cluster
        dep = cluster.kube.deployment(cluster.deployment_name("backend"))
        pods = sorted(_pods_of(dep, cluster.kube.pods()), key=lambda p: p["metadata"]["name"])
        count = max(1, math.ceil(len(pods) * share)) if pods else 0
        return pods[:count], len(pods)

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        victims, total = self._victims(env, options)
        plan = Plan(f"drill {self.name} on {env.name}: delete {len(victims)} of {total} backend pods")
        for pod in victims:
            plan.add(env.cluster.kube.step_delete_pod(pod))
        return plan

    def inject(self, ctx: DrillContext) -> Fault:
        victims, total = self._victims(ctx.env, ctx.options)
        if not victims:
            raise NotReady("backend has no pods to delete")
        kube = ctx.env.cluster.kube
        names = [p["metadata"]["name"] for p in victims]
        fault = mark_fault(ctx, f"deleted {len(victims)} of {total} backend pods", pods=names)
        for pod in victims:
            kube.execute(kube.step_delete_pod(pod))
        ctx.event("provider", f"deleted {', '.join(names)}", source="kubernetes")
        return fault


@register
class NodeLoss(AppScenario):
    name = "node-loss"
    injects = (
        "drains one node (cordon + evictions, PDBs respected): the node with most backend pods by default"
    )
    predicts = ("replicas", "nodes", "pdb", "readiness", "toleration")
    params = {"node": "a node name (default: the node with most backend pods)"}

    def _node(self, env: Environment, options: DrillOptions, state: Obj | None = None) -> str:
        state = state or _app_state(env)
        names = [n["metadata"]["name"] for n in state["nodes"]]
        wanted = options.params.get("node")
        if wanted:
            if wanted not in names:
                raise BadInput(f"--param node={wanted}: no such node; known: {', '.join(sorted(names))}")
            return str(wanted)
        counts = _count([p["spec"].get("nodeName") or "" for p in _backend_pods(state)])
        choice = _busiest(counts, [n["metadata"]["name"] for n in state["nodes"] if schedulable(n)])
        if choice is None:
            raise NotReady("no schedulable node to drain")
        return choice

    def _scenario_checks(self, env: Environment, state: Obj, options: DrillOptions) -> list[Check]:
        node = self._node(env, options, state)
        others = [n for n in state["nodes"] if schedulable(n) and n["metadata"]["name"] != node]
        if not others:
            return [
                Check(
                    "another schedulable node",
                    "failed",
                    f"{node} is the only schedulable node: its pods would have nowhere to go",
                )
            ]
        return [
            Check(
                "another schedulable node",
                "ok",
                f"drains {node} ({state['zones'].get(node)}); {len(others)} other schedulable node(s)",
            ),
            *_drain_checks(env, [node]),
        ]

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        from ...cluster.nodes import plan_drain

        node = self._node(env, options)
        drain_plan, _, _ = plan_drain(env, node)
        drain_plan.title = f"drill {self.name} on {env.name}: {drain_plan.title}"
        return drain_plan

    def inject(self, ctx: DrillContext) -> Fault:
        state = _app_state(ctx.env)
        node = self._node(ctx.env, ctx.options, state)
        return self._drain(
            ctx, [node], f"drained node {node} ({state['zones'].get(node)})", zone=state["zones"].get(node)
        )


@register
class ZoneLoss(AppScenario):
    name = "zone-loss"
    injects = "cordons and drains every node in one zone: the zone with most backend pods by default"
    predicts = ("replicas", "zones", "pdb", "readiness", "toleration")
    params = {"zone": "a zone name (default: the zone with most backend pods)"}

    def _zone(self, env: Environment, options: DrillOptions, state: Obj) -> tuple[str, list[str]]:
        zones = sorted(set(state["zones"].values()))
        wanted = options.params.get("zone")
        if wanted:
            if wanted not in zones:
                raise BadInput(f"--param zone={wanted}: no node in that zone; zones: {', '.join(zones)}")
            zone = str(wanted)
        else:
            counts = _count(
                [state["zones"].get(p["spec"].get("nodeName") or "", "?") for p in _backend_pods(state)]
            )
            zone = _busiest(counts, zones) or "?"
        nodes = [
            n["metadata"]["name"]
            for n in state["nodes"]
            if state["zones"][n["metadata"]["name"]] == zone and schedulable(n)
        ]
        return zone, nodes

    def _scenario_checks(self, env: Environment, state: Obj, options: DrillOptions) -> list[Check]:
        zone, nodes = self._zone(env, options, state)
        others = [
            n for n in state["nodes"] if schedulable(n) and state["zones"][n["metadata"]["name"]] != zone
        ]
        if not nodes:
            return [Check("zone to lose", "failed", f"no schedulable node in {zone}")]
        if not others:
            return [
                Check("another zone", "failed", f"every schedulable node is in {zone}: nothing would be left")
            ]
        return [
            Check(
                "another zone",
                "ok",
                f"drains {len(nodes)} node(s) in {zone}; {len(others)} schedulable node(s) in other zones",
            ),
            *_drain_checks(env, nodes),
        ]

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        from ...cluster.nodes import drain_blockers, evictable

        state = _app_state(env)
        zone, nodes = self._zone(env, options, state)
        kube = env.cluster.kube
        evict, _ = evictable(kube, nodes)
        blockers = drain_blockers(kube, evict)
        if blockers:  # like cluster.drain: refuse what could never finish, before any change
            raise Refused(f"zone {zone}: {blockers[0]}")
        plan = Plan(
            f"drill {self.name} on {env.name}: cordon {len(nodes)} node(s) in {zone}, then evict their pods"
        )
        for node in nodes:
            plan.add(kube.step_cordon(node))
        for pod in evict:
            plan.add(kube.step_evict(pod))
        return plan

    def inject(self, ctx: DrillContext) -> Fault:
        state = _app_state(ctx.env)
        zone, nodes = self._zone(ctx.env, ctx.options, state)
        if not nodes:
            raise NotReady(f"no schedulable node in {zone}")
        return self._drain(
            ctx, nodes, f"lost zone {zone}: cordoned and drained {len(nodes)} node(s)", zone=zone
        )
