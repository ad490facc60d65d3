"""Kubernetes objects as plain data: what the cluster domain (and the drills,
and status) read from the API's JSON. Pure functions, no client: the Cluster
port (core/ports.py) returns these dicts; the backend (backends/kube.py) makes
the calls.

Moved here from backends/kube.py so that no domain module imports a backend
(tests/unit/test_layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
ZONE_LABEL = "topology.kubernetes.io/zone"


def revision_of(obj: Obj) -> int:
    return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0") or 0)


def images(template: Obj) -> list[str]:
    return [str(c.get("image")) for c in (template.get("spec") or {}).get("containers") or []]


def selector_of(obj: Obj) -> str:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def matches(labels: dict[str, str], match_labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match_labels.items())


def owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def controller_kind(pod: Obj) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind"))
    return None


def default_container(pod: Obj) -> str | None:
    """The container kubectl logs reads: the default-container annotation's (if the pod has it), else the first."""
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    named = (pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER)
    if named in names:
        return str(named)
    return names[0] if names else None


def pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def node_ready(node: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def schedulable(node: Obj) -> bool:
    return node_ready(node) and not (node.get("spec") or {}).get("unschedulable")


@dataclass(frozen=True)
class RolloutState:
    done: bool
    status: str


def rollout_state(dep: Obj) -> RolloutState:
    """kubectl rollout status, as a function of the deployment object."""
    meta, spec, st = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    if int(meta.get("generation", 0)) > int(st.get("observedGeneration", 0)):
        return RolloutState(False, "waiting for the controller to see the change")
    updated = int(st.get("updatedReplicas") or 0)
    total = int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    if updated < want:
        return RolloutState(False, f"{updated} of {want} updated replicas")
    if total > updated:
        return RolloutState(False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return RolloutState(False, f"{available} of {updated} updated replicas available")
    return RolloutState(True, f"{available} of {want} replicas available")


def pick_revision(deployment: Obj, replicasets: list[Obj], to_revision: int) -> Obj:
    """The ReplicaSet to roll back to: the given revision, or (0) the one before the current.

    Raises LookupError with the known revisions when there is none; its message is a
    predicate ("has no revision 7; ...") that reads on after the deployment's name.
    """
    mine = sorted((rs for rs in replicasets if owned_by(rs, deployment)), key=revision_of)
    current = revision_of(deployment) or (revision_of(mine[-1]) if mine else 0)
    known = [revision_of(rs) for rs in mine]
    if to_revision:
        for rs in mine:
            if revision_of(rs) == to_revision:
                if to_revision == current:
                    raise LookupError(
                        f"is already at revision {to_revision}, the current one; "
                        f"give an earlier one; known: {known}"
                    )
                return rs
        raise LookupError(f"has no revision {to_revision}; known: {known}")
    older = [rs for rs in mine if revision_of(rs) < current]
    if not older:
        raise LookupError(f"has no revision before the current {current}; known: {known}")
    return older[-1]


def pdb_for(pod: Obj, pdbs: list[Obj]) -> list[Obj]:
    labels = pod["metadata"].get("labels") or {}
    return [
        p
        for p in pdbs
        if p["metadata"].get("namespace") == pod["metadata"].get("namespace")
        and matches(labels, ((p.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    ]
