"""A small Kubernetes API server on loopback, for tests.

In-memory objects with the real JSON shapes (apps/v1 deployments and
replicasets, core/v1 pods, nodes, events and pod logs, policy/v1 PDBs and
evictions, autoscaling/v2 HPAs). A tiny controller runs before every request:
deployments own ReplicaSets (revision annotations as the real controller sets
them, old ReplicaSets scaled down as new pods become ready), ReplicaSets own
pods, pods are scheduled spread across zones onto schedulable nodes and become
ready `ready_after` seconds after creation (at once without a readiness probe).
Evictions honour PodDisruptionBudgets and answer 429 like the real API.

The official `kubernetes` client talks to it over HTTP (or HTTPS with a test
CA); there is no watch: the toolkit polls.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from support.loopback_http import QuietHandler, serve, stop

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def _now_iso(at: float | None = None) -> str:
    moment = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch (good enough for the strategic-merge patches the toolkit sends)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op["path"])
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] in ("replace", "add"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                else:
                    parent.insert(int(last), op["value"]) if op["op"] == "add" else parent.__setitem__(
                        int(last), op["value"]
                    )
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        elif op["op"] == "test":
            value = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if value != op["value"]:
                raise _patch_rejected(f"testing value {op['path']} failed: test failed")
        else:
            raise _patch_rejected(f"Unexpected kind: {op['op']}")
    return doc


def _patch_rejected(why: str) -> ApiError:
    """What the API server answers when a JSON patch cannot be applied (a failed `test` op
    included): 422 Invalid, with the json-patch error as the cause."""
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": why}]},
    )


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    """Equality-based label selectors: a=b,c!=d,e (exists)."""
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif labels.get(term) is None:
            return False
    return True


def _selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def _field(obj: Obj, path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _field_matches(obj: Obj, selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if str(_field(obj, key.strip()) or "") == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if str(_field(obj, key.strip()) or "") != value.strip():
                return False
    return True


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> Obj:
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


class FakeKube:
    """The cluster state plus its controllers; `serve()` puts an API in front of it."""

    def __init__(self, *, ready_after: float = 0.3, version: str = "v1.28.15-eks-a1b2c3d") -> None:
        self.ready_after = ready_after
        self.version = version
        self.lock = threading.RLock()
        self.store: dict[str, dict[tuple[str, str], Obj]] = {
            k: {}
            for k in ("nodes", "pods", "deployments", "replicasets", "pdbs", "hpas", "events", "cronjobs")
        }
        self.logs: dict[tuple[str, str], list[tuple[float, str]]] = {}
        self.ready_at: dict[str, float] = {}  # pod uid -> monotonic time its readiness probe first passes
        self.rv = 100
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: list[str | None] = []
        self.authorize: Callable[[str | None], bool] | None = None
        self.evictions: list[str] = []
        self.refused_evictions = 0
        self.not_started: dict[tuple[str, str], str] = {}  # (namespace, pod) -> why its container waits
        self.restarted: dict[tuple[str, str], str] = {}  # (namespace, pod) -> when its container last ended
        self.log_reads: list[tuple[str, str | None]] = []  # (pod, container asked for)
        # handler name (e.g. "patch_node") -> called once, just before the next such request is served
        self.before: dict[str, Callable[[], None]] = {}
        # Set by a test: pods started from then on pass their readiness probe only once this also
        # says so, given how many GETs of a deployment answered it short since the pod started; so
        # an outage lasts until a probe has seen it (a condition, not a time: a loaded machine can
        # stall the probes for longer than `ready_after`). Called under `lock`.
        self.ready_when: Callable[[int], bool] | None = None
        self._gated: dict[str, int] = {}  # pod uid -> len(served_unready) when it started
        # deployments that a GET answered with fewer ready replicas than wanted
        self.served_unready: list[str] = []
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- seeding ----------------------------------------------------------
    def _meta(
        self,
        name: str,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Obj:
        self.rv += 1
        meta: Obj = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(self.rv),
            "creationTimestamp": _now_iso(),
            "labels": dict(labels or {}),
        }
        if namespace:
            meta["namespace"] = namespace
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    def add_node(
        self,
        name: str,
        zone: str,
        *,
        kubelet: str = "v1.28.15-eks-ae9a62a",
        ami: str = "ami-0abc1234def567890",
        nodegroup: str = "workers",
    ) -> Obj:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": self._meta(
                name,
                labels={
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": zone,
                    "topology.kubernetes.io/region": zone[:-1],
                    "node.kubernetes.io/instance-type": "t3.large",
                    "eks.amazonaws.com/nodegroup": nodegroup,
                    "eks.amazonaws.com/nodegroup-image": ami,
                },
            ),
            "spec": {"providerID": f"aws:///{zone}/i-{hashlib.md5(name.encode()).hexdigest()[:17]}"},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "lastTransitionTime": _now_iso(),
                    }
                ],
                "nodeInfo": {
                    "kubeletVersion": kubelet,
                    "kubeProxyVersion": kubelet,
                    "osImage": "Amazon Linux 2",
                    "containerRuntimeVersion": "containerd://1.7.11",
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                },
                "allocatable": {"cpu": "1930m", "memory": "7220Mi", "pods": "35"},
            },
        }
        with self.lock:
            self.store["nodes"][("", name)] = node
            # every node runs the VPC CNI as a DaemonSet pod, which a drain leaves alone
            self._create_pod(
                "kube-system",
                f"aws-node-{hashlib.md5(name.encode()).hexdigest()[:5]}",
                {"k8s-app": "aws-node"},
                {"containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.15.4"}]},
                owner={"kind": "DaemonSet", "name": "aws-node", "uid": "ds-aws-node"},
                node=name,
            )
        return node

    def add_deployment(
        self,
        name: str,
        *,
        namespace: str = "spywatcher",
        replicas: int = 2,
        image: str = "registry.example/app:1.0",
        app: str | None = None,
        readiness_probe: bool = True,
        not_ready_toleration: int | None = None,
    ) -> Obj:
        labels = {"app": app or name}
        container: Obj = {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}
        if readiness_probe:
            container["readinessProbe"] = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 5}
        pod_spec: Obj = {"containers": [container]}
        if not_ready_toleration is not None:
            pod_spec["tolerations"] = [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": not_ready_toleration,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": not_ready_toleration,
                },
            ]
        dep = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**self._meta(name, namespace, labels), "generation": 1},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(labels)},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
                "revisionHistoryLimit": 10,
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
            },
            "status": {},
        }
        with self.lock:
            self.store["deployments"][(namespace, name)] = dep
            self.reconcile()
        return dep

    def add_pdb(
        self,
        name: str,
        app: str,
        *,
        namespace: str = "spywatcher",
        min_available: int | str | None = 1,
        max_unavailable: int | str | None = None,
    ) -> Obj:
        spec: Obj = {"selector": {"matchLabels": {"app": app}}}
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        else:
            spec["minAvailable"] = min_available
        pdb = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {**self._meta(name, namespace), "generation": 1},
            "spec": spec,
            "status": {},
        }
        with self.lock:
            self.store["pdbs"][(namespace, name)] = pdb
        return pdb

    def add_hpa(
        self,
        name: str,
        deployment: str,
        *,
        namespace: str = "spywatcher",
        min_replicas: int = 2,
        max_replicas: int = 10,
    ) -> Obj:
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": self._meta(name, namespace),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
            "status": {},
        }
        with self.lock:
            self.store["hpas"][(namespace, name)] = hpa
        return hpa

    def add_event(
        self,
        involved: str,
        reason: str,
        message: str,
        *,
        kind: str = "Pod",
        type: str = "Warning",
        namespace: str = "spywatcher",
        ago: float = 30.0,
    ) -> Obj:
        at = _now_iso(time.time() - ago)
        self._counter += 1
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": self._meta(f"{involved}.{self._counter:x}", namespace),
            "involvedObject": {"kind": kind, "name": involved, "namespace": namespace},
            "reason": reason,
            "message": message,
            "type": type,
            "count": 1,
            "firstTimestamp": at,
            "lastTimestamp": at,
            "source": {"component": "kubelet"},
        }
        with self.lock:
            self.store["events"][(namespace, event["metadata"]["name"])] = event
        return event

    def add_pod(
        self,
        name: str,
        node: str,
        *,
        namespace: str = "spywatcher",
        labels: dict[str, str] | None = None,
        containers: list[str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Obj:
        """A pod without a controller (what `kubectl run` makes): nothing re-creates it if it goes."""
        spec = {
            "containers": [{"name": c, "image": "registry.example/debug:1"} for c in containers or ["main"]],
            "nodeName": node,
        }
        meta = self._meta(name, namespace, labels or {"run": name}, annotations)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": spec,
            "status": {"phase": "Running", "startTime": _now_iso()},
        }
        with self.lock:
            self._start(pod)
            self.store["pods"][(namespace, name)] = pod
            self.logs.setdefault((namespace, name), []).append((time.time(), f"{name} starting"))
        return pod

    def add_replica_on(self, deployment: str, node: str, *, namespace: str = "spywatcher") -> Obj:
        """One more replica, placed by the scheduler on `node` (e.g. just before it is cordoned)."""
        with self.lock:
            dep = self.store["deployments"][(namespace, deployment)]
            dep["spec"]["replicas"] = int(dep["spec"]["replicas"]) + 1
            self._reconcile_deployment(dep)  # the current ReplicaSet now wants one more
            rs = max(
                self._owned("replicasets", dep["metadata"]["uid"]),
                key=lambda r: int(r["metadata"]["annotations"].get(REVISION, "0")),
            )
            self._counter += 1
            name = f"{rs['metadata']['name']}-late{self._counter}"
            return self._create_pod(
                namespace,
                name,
                rs["spec"]["template"]["metadata"]["labels"],
                rs["spec"]["template"]["spec"],
                owner={"kind": "ReplicaSet", "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"]},
                node=node,
            )

    def hold_start(
        self, name: str, *, namespace: str = "spywatcher", reason: str = "ContainerCreating"
    ) -> None:
        """The pod's containers stay waiting (image pull, volume mount...): not ready, and no logs (400)."""
        with self.lock:
            self.not_started[(namespace, name)] = reason

    def add_log(self, namespace: str, pod: str, line: str, *, ago: float = 0.0) -> None:
        with self.lock:
            self.logs.setdefault((namespace, pod), []).append((time.time() - ago, line))

    def pods(self, namespace: str = "spywatcher", selector: str | None = None) -> list[Obj]:
        with self.lock:
            self.reconcile()
            return [
                copy.deepcopy(p)
                for (ns, _), p in sorted(self.store["pods"].items())
                if ns == namespace and _matches(p["metadata"].get("labels") or {}, selector)
            ]

    def get(self, kind: str, name: str, namespace: str = "spywatcher") -> Obj:
        with self.lock:
            self.reconcile()
            return copy.deepcopy(self.store[kind][("" if kind == "nodes" else namespace, name)])

    # -- controllers ------------------------------------------------------
    def _pod_ready(self, pod: Obj) -> bool:
        if (pod["metadata"].get("namespace"), pod["metadata"]["name"]) in self.not_started:
            return False
        node = self.store["nodes"].get(("", pod["spec"].get("nodeName") or ""))
        if node is None or not _node_ready(node):
            return False
        uid = pod["metadata"]["uid"]
        if time.monotonic() < self.ready_at.get(uid, 0.0):
            return False
        if uid in self._gated:
            if self.ready_when is not None and not self.ready_when(
                len(self.served_unready) - self._gated[uid]
            ):
                return False
            del self._gated[uid]  # once ready, it stays so
        return True

    def _start(self, pod: Obj) -> None:
        """Without a readiness probe a pod is ready as soon as it runs; with one, after `ready_after`
        (and, while a test has set `ready_when`, once that holds)."""
        probe = any(c.get("readinessProbe") for c in pod["spec"].get("containers") or [])
        self.ready_at[pod["metadata"]["uid"]] = time.monotonic() + (self.ready_after if probe else 0.0)
        if probe and self.ready_when is not None:
            self._gated[pod["metadata"]["uid"]] = len(self.served_unready)

    def _create_pod(
        self, namespace: str, name: str, labels: dict[str, str], spec: Obj, *, owner: Obj, node: str | None
    ) -> Obj:
        pod_spec = copy.deepcopy(spec)
        if node:
            pod_spec["nodeName"] = node
        meta = self._meta(name, namespace, labels)
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner["kind"],
                "name": owner["name"],
                "uid": owner["uid"],
                "controller": True,
            }
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": pod_spec,
            "status": {"phase": "Running" if node else "Pending", "startTime": _now_iso()},
        }
        self._start(pod)
        self.store["pods"][(namespace, name)] = pod
        self.logs.setdefault((namespace, name), []).append((time.time(), f"{name} starting"))
        return pod

    def _schedule(self, namespace: str, app_labels: dict[str, str]) -> str | None:
        """Spread like topologySpreadConstraints: the zone, then the node, with the fewest of this app's pods."""
        nodes = [
            n for n in self.store["nodes"].values() if not n["spec"].get("unschedulable") and _node_ready(n)
        ]
        if not nodes:
            return None
        mine = [
            p
            for (ns, _), p in self.store["pods"].items()
            if ns == namespace and _matches(p["metadata"].get("labels") or {}, _selector_string(app_labels))
        ]
        per_node: dict[str, int] = {}
        for p in mine:
            per_node[p["spec"].get("nodeName") or ""] = per_node.get(p["spec"].get("nodeName") or "", 0) + 1
        per_zone: dict[str, int] = {}
        for n in self.store["nodes"].values():
            zone = n["metadata"]["labels"]["topology.kubernetes.io/zone"]
            per_zone[zone] = per_zone.get(zone, 0) + per_node.get(n["metadata"]["name"], 0)
        nodes.sort(
            key=lambda n: (
                per_zone[n["metadata"]["labels"]["topology.kubernetes.io/zone"]],
                per_node.get(n["metadata"]["name"], 0),
                n["metadata"]["name"],
            )
        )
        return str(nodes[0]["metadata"]["name"])

    def reconcile(self) -> None:
        with self.lock:
            for dep in list(self.store["deployments"].values()):
                self._reconcile_deployment(dep)
            for rs in list(self.store["replicasets"].values()):
                self._reconcile_replicaset(rs)
            for dep in list(self.store["deployments"].values()):
                self._deployment_status(dep)
            for pdb in self.store["pdbs"].values():
                pdb["status"] = self._pdb_status(pdb)
            for hpa in self.store["hpas"].values():
                target = self.store["deployments"].get(
                    (hpa["metadata"]["namespace"], hpa["spec"]["scaleTargetRef"]["name"])
                )
                current = (target or {}).get("status", {}).get("replicas", 0)
                hpa["status"] = {
                    "currentReplicas": current,
                    "desiredReplicas": (target or {}).get("spec", {}).get("replicas", 0),
                    "currentMetrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "current": {"averageUtilization": 35}},
                        }
                    ],
                }

    def _owned(self, kind: str, owner_uid: str) -> list[Obj]:
        return [
            o
            for o in self.store[kind].values()
            if any(r.get("uid") == owner_uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def _reconcile_deployment(self, dep: Obj) -> None:
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        template = dep["spec"]["template"]
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        owned = self._owned("replicasets", dep["metadata"]["uid"])
        revisions = [int(rs["metadata"]["annotations"].get(REVISION, "0")) for rs in owned]
        newest = max(revisions, default=0)
        current = next((rs for rs in owned if rs["metadata"]["labels"].get(HASH_LABEL) == digest), None)
        if current is None:
            labels = {**(template["metadata"].get("labels") or {}), HASH_LABEL: digest}
            rs_template = copy.deepcopy(template)
            rs_template["metadata"]["labels"] = dict(labels)
            meta = self._meta(f"{name}-{digest}", ns, labels, {REVISION: str(newest + 1)})
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": name,
                    "uid": dep["metadata"]["uid"],
                    "controller": True,
                }
            ]
            current = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": meta,
                "spec": {"replicas": 0, "selector": {"matchLabels": dict(labels)}, "template": rs_template},
                "status": {},
            }
            self.store["replicasets"][(ns, meta["name"])] = current
            owned.append(current)
        elif int(current["metadata"]["annotations"].get(REVISION, "0")) < newest:
            # rolling back to an old template re-uses its ReplicaSet with the next revision number
            current["metadata"]["annotations"][REVISION] = str(newest + 1)
        want = int(dep["spec"].get("replicas", 1))
        current["spec"]["replicas"] = want
        new_ready = sum(1 for p in self._owned("pods", current["metadata"]["uid"]) if self._pod_ready(p))
        # old ReplicaSets give way as the new one's pods become ready (a rolling update)
        room = max(0, want - new_ready)
        for rs in owned:
            if rs is current:
                continue
            rs["spec"]["replicas"] = min(int(rs["spec"]["replicas"]), room)
            room -= rs["spec"]["replicas"]

    def _reconcile_replicaset(self, rs: Obj) -> None:
        ns = rs["metadata"]["namespace"]
        pods = self._owned("pods", rs["metadata"]["uid"])
        want = int(rs["spec"]["replicas"])
        for pod in pods[want:] if len(pods) > want else []:
            self._delete_pod(ns, pod["metadata"]["name"])
        for pod in pods:
            if not pod["spec"].get("nodeName"):  # pending: try to place it now
                node = self._schedule(ns, rs["spec"]["template"]["metadata"]["labels"])
                if node:
                    pod["spec"]["nodeName"] = node
                    pod["status"]["phase"] = "Running"
                    self._start(pod)
        for _ in range(max(0, want - len(pods))):
            self._counter += 1
            suffix = hashlib.md5(f"{rs['metadata']['name']}{self._counter}".encode()).hexdigest()[:5]
            labels = rs["spec"]["template"]["metadata"]["labels"]
            self._create_pod(
                ns,
                f"{rs['metadata']['name']}-{suffix}",
                labels,
                rs["spec"]["template"]["spec"],
                owner={"kind": "ReplicaSet", "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"]},
                node=self._schedule(ns, labels),
            )
        pods = self._owned("pods", rs["metadata"]["uid"])
        ready = sum(1 for p in pods if self._pod_ready(p))
        rs["status"] = {
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "fullyLabeledReplicas": len(pods),
            "observedGeneration": 1,
        }
        for pod in pods:
            self._pod_status(pod)

    def _pod_status(self, pod: Obj) -> None:
        ready = self._pod_ready(pod)
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "True" if pod["spec"].get("nodeName") else "False"},
            {"type": "Ready", "status": "True" if ready else "False"},
            {"type": "ContainersReady", "status": "True" if ready else "False"},
        ]
        waiting = self.not_started.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        state = (
            {"waiting": {"reason": waiting}}
            if waiting
            else {"running": {"startedAt": pod["status"]["startTime"]}}
        )
        pod["status"]["containerStatuses"] = [
            {
                "name": c["name"],
                "image": c["image"],
                "ready": ready,
                "restartCount": 0,
                "started": bool(pod["spec"].get("nodeName")) and not waiting,
                "state": state,
            }
            for c in pod["spec"].get("containers", [])
        ]
        ended = self.restarted.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        for status in pod["status"]["containerStatuses"] if ended else []:  # restarted once, at `ended`
            status["restartCount"] = 1
            status["lastState"] = {
                "terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ended}
            }

    def _deployment_status(self, dep: Obj) -> None:
        owned = self._owned("replicasets", dep["metadata"]["uid"])
        if not owned:
            return
        newest = max(owned, key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, "0")))
        dep["metadata"].setdefault("annotations", {})[REVISION] = newest["metadata"]["annotations"][REVISION]
        total = sum(rs["status"].get("replicas", 0) for rs in owned)
        ready = sum(rs["status"].get("readyReplicas", 0) for rs in owned)
        want = int(dep["spec"].get("replicas", 1))
        dep["status"] = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": newest["status"].get("replicas", 0),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, want - ready),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if ready >= want else "False",
                    "reason": "MinimumReplicasAvailable" if ready >= want else "MinimumReplicasUnavailable",
                },
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }

    def _pdb_status(self, pdb: Obj) -> Obj:
        ns = pdb["metadata"]["namespace"]
        sel = _selector_string(pdb["spec"]["selector"]["matchLabels"])
        pods = [
            p
            for (pns, _), p in self.store["pods"].items()
            if pns == ns and _matches(p["metadata"].get("labels") or {}, sel)
        ]
        expected = len(pods)
        healthy = sum(1 for p in pods if self._pod_ready(p))
        if "maxUnavailable" in pdb["spec"]:
            desired = expected - _scaled(pdb["spec"]["maxUnavailable"], expected, up=True)
        else:
            desired = _scaled(pdb["spec"].get("minAvailable", 1), expected, up=True)
        return {
            "observedGeneration": 1,
            "currentHealthy": healthy,
            "desiredHealthy": max(0, desired),
            "expectedPods": expected,
            "disruptionsAllowed": max(0, healthy - max(0, desired)),
        }

    def _delete_pod(self, namespace: str, name: str) -> None:
        pod = self.store["pods"].pop((namespace, name), None)
        if pod is not None:
            self.ready_at.pop(pod["metadata"]["uid"], None)

    # -- API operations -----------------------------------------------------
    def evict(self, namespace: str, name: str) -> Obj:
        pod = self.store["pods"].get((namespace, name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        for pdb in self.store["pdbs"].values():
            if pdb["metadata"]["namespace"] != namespace:
                continue
            if not _matches(
                pod["metadata"].get("labels") or {}, _selector_string(pdb["spec"]["selector"]["matchLabels"])
            ):
                continue
            status = self._pdb_status(pdb)
            unhealthy_ok = not self._pod_ready(pod) and status["currentHealthy"] >= status["desiredHealthy"]
            if status["disruptionsAllowed"] <= 0 and not unhealthy_ok:
                self.refused_evictions += 1
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb['metadata']['name']} needs "
                                f"{status['desiredHealthy']} healthy pods and has "
                                f"{status['currentHealthy']} currently",
                            }
                        ]
                    },
                )
        self._delete_pod(namespace, name)
        self.evictions.append(name)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # -- HTTP ---------------------------------------------------------------
    def serve(self, ssl_context: ssl.SSLContext | None = None) -> str:
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                self.reply(
                    code, body.encode() if isinstance(body, str) else json.dumps(body).encode(), content_type
                )

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization")
                with fake.lock:
                    fake.requests.append((method, url.path))
                    fake.auth_headers.append(auth)
                if fake.authorize is not None and not fake.authorize(auth):
                    self._send(401, ApiError(401, "Unauthorized", "Unauthorized").body())
                    return
                try:
                    body = json.loads(raw) if raw else None
                    code, out = fake.route(
                        method, url.path, query, body, self.headers.get("Content-Type", "")
                    )
                except ApiError as exc:
                    self._send(exc.code, exc.body())
                    return
                if isinstance(out, str):
                    self._send(code, out, "text/plain")
                else:
                    self._send(code, out)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self._server, self.url = serve(Handler, "fake-kube", ssl_context)
        return self.url

    def close(self) -> None:
        stop(self._server)

    _ROUTES: list[tuple[str, str, str]] = [
        ("GET", r"^/version/?$", "version"),
        ("GET", r"^/api/v1/nodes$", "list_nodes"),
        ("GET", r"^/api/v1/nodes/(?P<name>[^/]+)$", "get_node"),
        ("PATCH", r"^/api/v1/nodes/(?P<name>[^/]+)$", "patch_node"),
        ("GET", r"^/api/v1/pods$", "list_all_pods"),
        ("GET", r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods$", "list_pods"),
        ("GET", r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)$", "get_pod"),
        ("DELETE", r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)$", "delete_pod"),
        ("GET", r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$", "pod_log"),
        ("POST", r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/eviction$", "eviction"),
        ("GET", r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$", "list_events"),
        ("GET", r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments$", "list_deployments"),
        ("GET", r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)$", "get_deployment"),
        (
            "PATCH",
            r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)$",
            "patch_deployment",
        ),
        ("GET", r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/replicasets$", "list_replicasets"),
        ("GET", r"^/apis/policy/v1/namespaces/(?P<ns>[^/]+)/poddisruptionbudgets$", "list_pdbs"),
        ("GET", r"^/apis/policy/v1/poddisruptionbudgets$", "list_all_pdbs"),
        ("GET", r"^/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers$", "list_hpas"),
        ("POST", r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/cronjobs$", "create_cronjob"),
        ("GET", r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/cronjobs/(?P<name>[^/]+)$", "get_cronjob"),
    ]

    # batch/v1 CronJobs: stored as sent (the scheduler artefact in deploy/kubernetes is applied here),
    # with the checks the real API server makes on the fields the toolkit relies on
    def _h_create_cronjob(self, ns: str, body: Any, **_: Any) -> tuple[int, Obj]:
        spec = body.get("spec") or {}
        if len((spec.get("schedule") or "").split()) != 5:
            raise ApiError(
                422, "Invalid", f"CronJob.batch is invalid: spec.schedule: {spec.get('schedule')!r}"
            )
        if spec.get("concurrencyPolicy", "Allow") not in ("Allow", "Forbid", "Replace"):
            raise ApiError(
                422, "Invalid", "CronJob.batch is invalid: spec.concurrencyPolicy: Unsupported value"
            )
        name = body["metadata"]["name"]
        if (ns, name) in self.store["cronjobs"]:
            raise ApiError(409, "AlreadyExists", f'cronjobs.batch "{name}" already exists')
        obj = copy.deepcopy(body)
        obj["metadata"].update({"namespace": ns, "uid": f"uid-cj-{name}", "creationTimestamp": _now_iso()})
        self.store["cronjobs"][(ns, name)] = obj
        return 201, copy.deepcopy(obj)

    def _h_get_cronjob(self, ns: str, name: str, **_: Any) -> tuple[int, Obj]:
        return 200, copy.deepcopy(self._find("cronjobs", ns, name, "cronjobs.batch"))

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, content_type: str
    ) -> tuple[int, Any]:
        for verb, pattern, handler in self._ROUTES:
            match = re.match(pattern, path)
            if verb == method and match:
                with self.lock:
                    self.reconcile()
                    hook = self.before.pop(handler, None)
                    if hook is not None:
                        hook()
                    result = getattr(self, "_h_" + handler)(
                        query=query, body=body, content_type=content_type, **match.groupdict()
                    )
                    self.reconcile()
                    return result
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({method} {path})")

    @staticmethod
    def _list(kind: str, items: list[Obj], api: str = "v1") -> tuple[int, Obj]:
        return 200, {
            "kind": kind,
            "apiVersion": api,
            "metadata": {"resourceVersion": "1"},
            "items": [copy.deepcopy(i) for i in items],
        }

    def _find(self, kind: str, ns: str, name: str, what: str) -> Obj:
        obj = self.store[kind].get((ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{what} "{name}" not found')
        return obj

    def _patch(self, obj: Obj, body: Any, content_type: str) -> Obj:
        if "json-patch" in content_type:
            patched = _json_patch(obj, body)
        else:
            patched = _merge(obj, body)
        self.rv += 1
        patched["metadata"]["resourceVersion"] = str(self.rv)
        return patched

    def _h_version(self, **_: Any) -> tuple[int, Obj]:
        major, minor = self.version.lstrip("v").split(".")[:2]
        return 200, {"major": major, "minor": minor, "gitVersion": self.version, "platform": "linux/amd64"}

    def _h_list_nodes(self, query: dict[str, str], **_: Any) -> tuple[int, Obj]:
        items = [
            n
            for n in self.store["nodes"].values()
            if _matches(n["metadata"].get("labels") or {}, query.get("labelSelector"))
        ]
        return self._list("NodeList", sorted(items, key=lambda n: n["metadata"]["name"]))

    def _h_get_node(self, name: str, **_: Any) -> tuple[int, Obj]:
        return 200, copy.deepcopy(self._find("nodes", "", name, "nodes"))

    def _h_patch_node(self, name: str, body: Any, content_type: str, **_: Any) -> tuple[int, Obj]:
        node = self._find("nodes", "", name, "nodes")
        patched = self._patch(node, body, content_type)
        taints = [
            t
            for t in patched["spec"].get("taints") or []
            if t.get("key") != "node.kubernetes.io/unschedulable"
        ]
        if patched["spec"].get("unschedulable"):
            taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
        patched["spec"]["taints"] = taints
        self.store["nodes"][("", name)] = patched
        return 200, copy.deepcopy(patched)

    def _pods_matching(self, ns: str | None, query: dict[str, str]) -> list[Obj]:
        return [
            p
            for (pns, _), p in sorted(self.store["pods"].items())
            if (ns is None or pns == ns)
            and _matches(p["metadata"].get("labels") or {}, query.get("labelSelector"))
            and _field_matches(p, query.get("fieldSelector"))
        ]

    def _h_list_all_pods(self, query: dict[str, str], **_: Any) -> tuple[int, Obj]:
        return self._list("PodList", self._pods_matching(None, query))

    def _h_list_pods(self, ns: str, query: dict[str, str], **_: Any) -> tuple[int, Obj]:
        return self._list("PodList", self._pods_matching(ns, query))

    def _h_get_pod(self, ns: str, name: str, **_: Any) -> tuple[int, Obj]:
        return 200, copy.deepcopy(self._find("pods", ns, name, "pods"))

    def _h_delete_pod(self, ns: str, name: str, **_: Any) -> tuple[int, Obj]:
        pod = copy.deepcopy(self._find("pods", ns, name, "pods"))
        self._delete_pod(ns, name)
        return 200, pod

    def _h_pod_log(self, ns: str, name: str, query: dict[str, str], **_: Any) -> tuple[int, str]:
        pod = self._find("pods", ns, name, "pods")
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = query.get("container")
        self.log_reads.append((name, container))
        # the API server's own 400s, same wording
        if not container and len(containers) > 1:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]",
            )
        if container and container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if not pod["spec"].get("nodeName"):
            raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
        if (ns, name) in self.not_started:
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container or containers[0]}" in pod "{name}" '
                f"is waiting to start: {self.not_started[(ns, name)]}",
            )
        lines = self.logs.get((ns, name), [])
        if "sinceSeconds" in query:
            cutoff = time.time() - int(query["sinceSeconds"])
            lines = [entry for entry in lines if entry[0] >= cutoff]
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :]
        stamp = query.get("timestamps") == "true"
        text = "".join(
            (datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z ") if stamp else "")
            + line
            + "\n"
            for at, line in lines
        )
        return 200, text

    def _h_eviction(self, ns: str, name: str, body: Any, **_: Any) -> tuple[int, Obj]:
        if not isinstance(body, dict) or body.get("kind") != "Eviction":
            raise ApiError(400, "BadRequest", "expected an Eviction body")
        return 201, self.evict(ns, name)

    def _h_list_events(self, ns: str, query: dict[str, str], **_: Any) -> tuple[int, Obj]:
        items = [
            e
            for (ens, _), e in self.store["events"].items()
            if ens == ns and _field_matches(e, query.get("fieldSelector"))
        ]
        return self._list("EventList", items)

    def _h_list_deployments(self, ns: str, query: dict[str, str], **_: Any) -> tuple[int, Obj]:
        items = [d for (dns, _), d in sorted(self.store["deployments"].items()) if dns == ns]
        return self._list("DeploymentList", items, "apps/v1")

    def _h_get_deployment(self, ns: str, name: str, **_: Any) -> tuple[int, Obj]:
        dep = self._find("deployments", ns, name, "deployments.apps")
        if int((dep.get("status") or {}).get("readyReplicas") or 0) < int(dep["spec"].get("replicas", 1)):
            self.served_unready.append(name)
        return 200, copy.deepcopy(dep)

    def _h_patch_deployment(
        self, ns: str, name: str, body: Any, content_type: str, **_: Any
    ) -> tuple[int, Obj]:
        dep = self._find("deployments", ns, name, "deployments.apps")
        patched = self._patch(dep, body, content_type)
        if patched["spec"] != dep["spec"]:
            patched["metadata"]["generation"] = int(dep["metadata"].get("generation", 1)) + 1
        self.store["deployments"][(ns, name)] = patched
        return 200, copy.deepcopy(patched)

    def _h_list_replicasets(self, ns: str, query: dict[str, str], **_: Any) -> tuple[int, Obj]:
        items = [
            r
            for (rns, _), r in sorted(self.store["replicasets"].items())
            if rns == ns and _matches(r["metadata"].get("labels") or {}, query.get("labelSelector"))
        ]
        return self._list("ReplicaSetList", items, "apps/v1")

    def _h_list_pdbs(self, ns: str, **_: Any) -> tuple[int, Obj]:
        return self._list(
            "PodDisruptionBudgetList",
            [p for (pns, _), p in sorted(self.store["pdbs"].items()) if pns == ns],
            "policy/v1",
        )

    def _h_list_all_pdbs(self, **_: Any) -> tuple[int, Obj]:
        return self._list(
            "PodDisruptionBudgetList", [p for _, p in sorted(self.store["pdbs"].items())], "policy/v1"
        )

    def _h_list_hpas(self, ns: str, **_: Any) -> tuple[int, Obj]:
        return self._list(
            "HorizontalPodAutoscalerList",
            [h for (hns, _), h in sorted(self.store["hpas"].items()) if hns == ns],
            "autoscaling/v2",
        )


def _node_ready(node: Obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def _scaled(value: int | str, total: int, *, up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return int(-(-exact // 1)) if up else int(exact)
    return int(value)


def standard_cluster(
    fake: FakeKube,
    project: str = "spywatcher",
    env: str = "kubetest",
    *,
    backend_replicas: int = 3,
    frontend_replicas: int = 2,
) -> FakeKube:
    """Three nodes in three zones; backend and frontend with PDBs and HPAs, like production."""
    for i, zone in enumerate(("us-east-1a", "us-east-1b", "us-east-1c")):
        fake.add_node(f"ip-10-0-{i + 1}-10.ec2.internal", zone)
    backend, frontend = f"{project}-{env}-backend", f"{project}-{env}-frontend"
    fake.add_deployment(
        backend,
        replicas=backend_replicas,
        image="registry.example/spywatcher-backend:1.4.0",
        app="backend",
        not_ready_toleration=30,
    )
    fake.add_deployment(
        frontend,
        replicas=frontend_replicas,
        image="registry.example/spywatcher-frontend:1.4.0",
        app="frontend",
    )
    fake.add_pdb(f"{backend}-pdb", "backend", min_available=1)
    fake.add_pdb(f"{frontend}-pdb", "frontend", min_available=1)
    fake.add_hpa(backend, backend, min_replicas=2, max_replicas=10)
    fake.add_hpa(frontend, frontend, min_replicas=2, max_replicas=5)
    return fake


def wait_ready(fake: FakeKube, timeout: float = 5.0) -> None:
    """Block until every deployment is fully rolled out (used by fixtures, not by the toolkit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with fake.lock:
            fake.reconcile()
            if all(
                d["status"].get("readyReplicas", 0) == d["spec"]["replicas"] == d["status"].get("replicas")
                for d in fake.store["deployments"].values()
            ):
                return
        time.sleep(0.02)
    raise TimeoutError("fake cluster did not settle")


def since(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class HealthServer:
    """The API's health URL in tests: 200 while `app` has a ready pod in the fake
    cluster (as a load balancer in front of ready pods would answer), else 503."""

    def __init__(self, fake: FakeKube, app: str = "backend", namespace: str = "spywatcher") -> None:
        self.fake, self.app, self.namespace = fake, app, namespace
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        self.answers: list[int] = []

    def healthy(self) -> bool:
        with self.fake.lock:
            self.fake.reconcile()
            return any(
                self.fake._pod_ready(p)
                for (ns, _), p in self.fake.store["pods"].items()
                if ns == self.namespace and (p["metadata"].get("labels") or {}).get("app") == self.app
            )

    def serve(self) -> str:
        health = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                code = 200 if self.path == "/health" and health.healthy() else 503
                health.answers.append(code)
                self.reply(code, b'{"status":"ok"}' if code == 200 else b'{"status":"no ready backend"}')

        self._server, base = serve(Handler, "fake-health")
        self.url = f"{base}/health"
        return self.url

    def close(self) -> None:
        stop(self._server)
