"""Kubernetes client wrapper: plain-dict reads, plan steps for every write,
and the pieces kubectl has that the client lacks (rollout status, rollout undo
through ReplicaSet revisions, drain through the Eviction API).

Objects come back as the API's own JSON (dicts), so the logic that reads them
is plain functions over plain data. Every write is a `core.plan.Step` naming
the exact client call (`AppsV1Api.patch_namespaced_deployment` with its
arguments); `Kube.execute(step)` makes that call and nothing else, so
--dry-run shows precisely what would be sent.

`kubernetes` is imported inside functions: `inv --list` must not pay for it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..core.clock import iso
from ..core.errors import NotReady
from ..core.plan import Step
from ..core.ports import CORDONED_BY, KubeError, KubeObj

Obj = KubeObj

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# Annotations kubectl does not copy from a ReplicaSet back onto the deployment on undo.
_ROLLBACK_SKIP = {
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
}


class Kube:
    """Calls the API through an `ApiClient` from `client_factory` (called per
    request batch, so a factory may renew an expiring token)."""

    def __init__(
        self, client_factory: Callable[[], Any], namespace: str, *, request_timeout: float = 30
    ) -> None:
        self.client_factory = client_factory
        self.namespace = namespace
        self.request_timeout = request_timeout

    # -- the one way calls are made ----------------------------------------
    def call(self, api: str, method: str, **params: Any) -> Any:
        """`kubernetes.client.<api>(ApiClient).<method>(**params)`; JSON as dicts, text as str."""
        from kubernetes import client as k8s
        from urllib3.exceptions import HTTPError

        api_obj = getattr(k8s, api)(self.client_factory())
        try:
            reply = getattr(api_obj, method)(
                **params, _preload_content=False, _request_timeout=self.request_timeout
            )
        except k8s.ApiException as exc:
            raise _error(exc) from None
        except (HTTPError, OSError) as exc:  # refused, TLS verification, timeouts
            raise NotReady(
                f"cannot reach the Kubernetes API: {_short(exc)}",
                hint="check the endpoint, network access and the CA; `inv cluster.nodes` is a quick test",
            ) from None
        data = reply.data
        text = data.decode() if isinstance(data, bytes) else str(data)
        ctype = (reply.headers or {}).get("Content-Type", "")
        if "json" in ctype:
            return json.loads(text) if text else {}
        return text

    def execute(self, step: Step) -> Any:
        api, method = step.action.split(".", 1)
        return self.call(api, method, **step.params)

    # -- reads ----------------------------------------------------------------
    def version(self) -> Obj:
        return dict(self.call("VersionApi", "get_code"))

    def deployments(self) -> list[Obj]:
        return list(self.call("AppsV1Api", "list_namespaced_deployment", namespace=self.namespace)["items"])

    def deployment(self, name: str) -> Obj:
        return dict(self.call("AppsV1Api", "read_namespaced_deployment", name=name, namespace=self.namespace))

    def replicasets(self, selector: str | None = None) -> list[Obj]:
        params: Obj = {"namespace": self.namespace}
        if selector:
            params["label_selector"] = selector
        return list(self.call("AppsV1Api", "list_namespaced_replica_set", **params)["items"])

    def pods(
        self, selector: str | None = None, *, node: str | None = None, all_namespaces: bool = False
    ) -> list[Obj]:
        params: Obj = {}
        if selector:
            params["label_selector"] = selector
        if node:
            params["field_selector"] = f"spec.nodeName={node}"
        if all_namespaces:
            return list(self.call("CoreV1Api", "list_pod_for_all_namespaces", **params)["items"])
        return list(
            self.call("CoreV1Api", "list_namespaced_pod", namespace=self.namespace, **params)["items"]
        )

    def nodes(self) -> list[Obj]:
        return list(self.call("CoreV1Api", "list_node")["items"])

    def node(self, name: str) -> Obj:
        return dict(self.call("CoreV1Api", "read_node", name=name))

    def pdbs(self, *, all_namespaces: bool = False) -> list[Obj]:
        if all_namespaces:
            return list(self.call("PolicyV1Api", "list_pod_disruption_budget_for_all_namespaces")["items"])
        return list(
            self.call("PolicyV1Api", "list_namespaced_pod_disruption_budget", namespace=self.namespace)[
                "items"
            ]
        )

    def hpas(self) -> list[Obj]:
        return list(
            self.call(
                "AutoscalingV2Api", "list_namespaced_horizontal_pod_autoscaler", namespace=self.namespace
            )["items"]
        )

    def events(self, *, warnings_only: bool = True) -> list[Obj]:
        params: Obj = {"namespace": self.namespace}
        if warnings_only:
            params["field_selector"] = "type=Warning"
        return list(self.call("CoreV1Api", "list_namespaced_event", **params)["items"])

    def pod_log(
        self, pod: str, *, since_seconds: int | None, tail: int | None = None, container: str | None = None
    ) -> str:
        params: Obj = {"name": pod, "namespace": self.namespace, "timestamps": True}
        if since_seconds:
            params["since_seconds"] = since_seconds
        if tail:
            params["tail_lines"] = tail
        if container:
            params["container"] = container
        return str(self.call("CoreV1Api", "read_namespaced_pod_log", **params))

    # -- writes, as plan steps ---------------------------------------------------
    def step_scale(self, name: str, replicas: int) -> Step:
        return Step(
            "kubernetes",
            "AppsV1Api.patch_namespaced_deployment",
            {"name": name, "namespace": self.namespace, "body": {"spec": {"replicas": replicas}}},
            why=f"set {name} to {replicas} replicas",
        )

    def step_restart(self, name: str, at: datetime) -> Step:
        # what `kubectl rollout restart` does: a new pod-template annotation starts a rolling update
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: iso(at)}}}}}
        return Step(
            "kubernetes",
            "AppsV1Api.patch_namespaced_deployment",
            {"name": name, "namespace": self.namespace, "body": body},
            why=f"rolling restart of every {name} pod",
        )

    def step_rollback(self, deployment: Obj, replicaset: Obj) -> Step:
        """kubectl's rollout undo: put the ReplicaSet's pod template back on the deployment."""
        template = copy.deepcopy(replicaset["spec"]["template"])
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.pop(HASH_LABEL, None)
        template.setdefault("metadata", {})["labels"] = labels
        annotations = dict(deployment["metadata"].get("annotations") or {})
        for key, value in (replicaset["metadata"].get("annotations") or {}).items():
            if key not in _ROLLBACK_SKIP:
                annotations[key] = value
        body = [
            # refuse to apply if the deployment changed since we read it
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": deployment["metadata"]["resourceVersion"],
            },
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]
        return Step(
            "kubernetes",
            "AppsV1Api.patch_namespaced_deployment",
            {"name": deployment["metadata"]["name"], "namespace": self.namespace, "body": body},
            why=f"restore the pod template of ReplicaSet {replicaset['metadata']['name']} "
            f"(revision {_revision(replicaset)}, image {', '.join(_images(template))})",
        )

    def step_cordon(self, node: str, *, cordon: bool = True, by: str | None = None) -> Step:
        """`by`: a drill's operation id, kept on the node (CORDONED_BY) while it is cordoned, so a
        later cleanup uncordons only a node that drill cordoned, not one cordoned since by someone else."""
        # Every cordon or uncordon made any other way clears the mark: a drill's cleanup must
        # not uncordon a node someone has cordoned again since (cluster.drain for maintenance).
        body: Obj = {
            "spec": {"unschedulable": True if cordon else None},
            "metadata": {"annotations": {CORDONED_BY: by if cordon and by else None}},
        }
        return Step(
            "kubernetes",
            "CoreV1Api.patch_node",
            {"name": node, "body": body},
            why=("mark the node unschedulable" if cordon else "make the node schedulable again"),
        )

    def step_evict(self, pod: Obj) -> Step:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        return Step(
            "kubernetes",
            "CoreV1Api.create_namespaced_pod_eviction",
            {"name": name, "namespace": namespace, "body": body},
            why=f"evict {namespace}/{name}; the API refuses (429) while a PodDisruptionBudget forbids it",
        )

    def step_delete_pod(self, pod: Obj) -> Step:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        return Step(
            "kubernetes",
            "CoreV1Api.delete_namespaced_pod",
            {"name": name, "namespace": namespace},
            why=f"delete {namespace}/{name}; its ReplicaSet replaces it",
        )


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # MaxRetryError wraps the real cause
    return str(reason or exc).splitlines()[0][:300]


def _error(exc: Any) -> KubeError:
    body: Obj = {}
    raw = getattr(exc, "body", None)
    if raw:
        try:
            body = json.loads(raw)
        except (TypeError, ValueError):
            body = {"message": str(raw)[:200]}
    return KubeError(
        int(getattr(exc, "status", 0) or 0),
        str(body.get("reason") or getattr(exc, "reason", "")),
        str(body.get("message") or getattr(exc, "reason", "error")),
        body,
    )


def _revision(obj: Obj) -> str:
    return str((obj["metadata"].get("annotations") or {}).get(REVISION, "?"))


def _images(template: Obj) -> list[str]:
    return [str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or []]
