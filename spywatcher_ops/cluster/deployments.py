"""The application's deployments: status, scale, restart, roll back, logs.

Functions take the Environment (for its cluster, clock and journal) and an
`approve(plan) -> bool` callable (the guard, shown the exact calls), and
return plain data for the task to render. Bad input is refused before any
call that changes something.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.errors import BadInput, Refused
from ..core.plan import Plan
from ..core.ports import KubeError, Progress, no_progress
from .objects import (
    ZONE_LABEL,
    default_container,
    images,
    matches,
    pick_revision,
    pod_ready,
    revision_of,
    selector_of,
)
from .rollout import DEFAULT_TIMEOUT, wait_rollout

SHORT_NAMES = ("backend", "frontend")
Approve = Callable[[Plan], bool]
Obj = dict[str, Any]


def full_name(cluster: Any, short: str) -> str:
    if short not in SHORT_NAMES:
        raise BadInput(f"--deployment {short}: unknown deployment; known: {', '.join(SHORT_NAMES)}")
    return str(cluster.deployment_name(short))


def _read(cluster: Any, short: str) -> Obj:
    name = full_name(cluster, short)
    try:
        return dict(cluster.kube.deployment(name))
    except KubeError as exc:
        if exc.status != 404:
            raise
        present = sorted(d["metadata"]["name"] for d in cluster.kube.deployments())
        raise BadInput(
            f"--deployment {short}: deployment {name} not found in namespace {cluster.namespace}; "
            f"present: {', '.join(present) or 'none'}"
        ) from None


def _hpa_for(cluster: Any, name: str) -> Obj | None:
    for hpa in cluster.kube.hpas():
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == "Deployment" and ref.get("name") == name:
            return dict(hpa)
    return None


# -- status ------------------------------------------------------------------------


def status(env: Any, *, event_window: float = 3600) -> dict[str, Any]:
    """Each deployment: replicas, pods per node and zone, HPA, PDBs, recent warnings."""
    cluster = env.cluster
    kube = cluster.kube
    zones = {
        n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ZONE_LABEL, "?") for n in kube.nodes()
    }
    present = {d["metadata"]["name"]: d for d in kube.deployments()}
    pods = kube.pods()
    hpas, pdbs = kube.hpas(), kube.pdbs()
    cutoff = env.clock.now() - timedelta(seconds=event_window)
    events = [e for e in kube.events() if _event_time(e) >= cutoff]
    out: list[Obj] = []
    for short in SHORT_NAMES:
        name = cluster.deployment_name(short)
        dep = present.get(name)
        if dep is None:
            out.append({"deployment": short, "name": name, "present": False})
            continue
        match = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        mine = [p for p in pods if matches(p["metadata"].get("labels") or {}, match)]
        per_node: dict[str, int] = {}
        per_zone: dict[str, int] = {}
        for p in mine:
            node = (p.get("spec") or {}).get("nodeName") or "(pending)"
            per_node[node] = per_node.get(node, 0) + 1
            zone = zones.get(node, "?")
            per_zone[zone] = per_zone.get(zone, 0) + 1
        st = dep.get("status") or {}
        hpa = next(
            (h for h in hpas if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name), None
        )
        my_pdbs = [
            p
            for p in pdbs
            if matches(match, ((p.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        ]
        pod_names = {p["metadata"]["name"] for p in mine}
        warnings = [
            {
                "at": _event_time(e).isoformat(),
                "object": f"{e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')}",
                "reason": e.get("reason"),
                "message": e.get("message"),
                "count": e.get("count", 1),
            }
            for e in events
            if e["involvedObject"].get("name") in pod_names
            or str(e["involvedObject"].get("name", "")).startswith(name)
        ]
        out.append(
            {
                "deployment": short,
                "name": name,
                "present": True,
                "desired": int((dep.get("spec") or {}).get("replicas", 0)),
                "ready": int(st.get("readyReplicas") or 0),
                "updated": int(st.get("updatedReplicas") or 0),
                "available": int(st.get("availableReplicas") or 0),
                "revision": revision_of(dep),
                "images": images((dep.get("spec") or {}).get("template") or {}),
                "pods": [
                    {
                        "name": p["metadata"]["name"],
                        "node": (p.get("spec") or {}).get("nodeName"),
                        "zone": zones.get((p.get("spec") or {}).get("nodeName") or "", "?"),
                        "ready": pod_ready(p),
                    }
                    for p in mine
                ],
                "pods_per_node": per_node,
                "pods_per_zone": per_zone,
                "hpa": None
                if hpa is None
                else {
                    "name": hpa["metadata"]["name"],
                    "min": hpa["spec"].get("minReplicas", 1),
                    "max": hpa["spec"].get("maxReplicas"),
                    "current": (hpa.get("status") or {}).get("currentReplicas"),
                },
                "pdbs": [
                    {
                        "name": p["metadata"]["name"],
                        "min_available": p["spec"].get("minAvailable"),
                        "max_unavailable": p["spec"].get("maxUnavailable"),
                        "disruptions_allowed": (p.get("status") or {}).get("disruptionsAllowed"),
                    }
                    for p in my_pdbs
                ],
                "warnings": sorted(warnings, key=lambda w: w["at"], reverse=True)[:10],
            }
        )
    return {
        "environment": env.name,
        "cluster": cluster.describe_access(),
        "namespace": cluster.namespace,
        "deployments": out,
    }


def _event_time(event: Obj) -> datetime:
    raw = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


# -- mutations -------------------------------------------------------------------------


def _apply(
    env: Any,
    plan: Plan,
    op_name: str,
    args: Obj,
    approve: Approve,
    name: str,
    *,
    timeout: float,
    interval: float,
    progress: Progress,
    result: Obj,
) -> Obj:
    """Guard, journal + lock, the plan's calls, then wait for the rollout."""
    if not approve(plan):
        return {**result, "dry_run": True, "plan": plan.to_dict()}
    cluster = env.cluster
    with env.operation(op_name, args) as op:
        for step in plan.steps:
            try:
                cluster.kube.execute(step)
            except KubeError as exc:
                planned = _tested_version(step)
                if exc.status != 422 or planned is None:
                    raise
                # 422 is also a validation error: only a moved resourceVersion means "changed under us"
                now = cluster.kube.deployment(name)["metadata"].get("resourceVersion")
                if now == planned:
                    raise
                raise Refused(
                    f"{name} changed since the plan was made (resourceVersion {planned}, now {now}); "
                    f"nothing was applied; run the {op_name.split('.')[-1]} again"
                ) from None
            op.step(step.action, "ok", target=step.params.get("name"), why=step.why)
        dep = wait_rollout(
            cluster.kube, name, clock=env.clock, timeout=timeout, interval=interval, progress=progress
        )
        st = dep.get("status") or {}
        done = {
            **result,
            "dry_run": False,
            "ready": int(st.get("readyReplicas") or 0),
            "desired": int(dep["spec"].get("replicas", 0)),
        }
        op.result = done
        op.step("rollout", "ok", ready=done["ready"])
    return done


def _tested_version(step: Any) -> str | None:
    """The resourceVersion a JSON-patch step's `test` op requires, if it has one."""
    body = step.params.get("body")
    if not isinstance(body, list):
        return None
    for op in body:
        if op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion":
            return str(op.get("value"))
    return None


def scale(
    env: Any,
    short: str,
    replicas: int,
    *,
    force: bool,
    approve: Approve,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 3.0,
    progress: Progress = no_progress,
) -> Obj:
    """Set the replica count, within the HPA's bounds unless forced."""
    if replicas < 0:
        raise BadInput(f"--replicas {replicas}: must be 0 or more")
    cluster = env.cluster
    dep = _read(cluster, short)
    name = dep["metadata"]["name"]
    hpa = _hpa_for(cluster, name)
    plan = Plan(f"scale {name} from {dep['spec'].get('replicas')} to {replicas} replicas")
    if hpa is not None:
        low, high = int(hpa["spec"].get("minReplicas", 1)), int(hpa["spec"]["maxReplicas"])
        if not low <= replicas <= high and not force:
            raise BadInput(
                f"--replicas {replicas}: outside the bounds of HPA {hpa['metadata']['name']} ({low}-{high}); "
                "pass --force to set it anyway (the HPA moves it back within its bounds)"
            )
        plan.notes.append(
            f"HPA {hpa['metadata']['name']} ({low}-{high}) may change this count later as load changes"
        )
    plan.add(cluster.kube.step_scale(name, replicas))
    return _apply(
        env,
        plan,
        "app.scale",
        {"deployment": short, "replicas": replicas, "force": force},
        approve,
        name,
        timeout=timeout,
        interval=interval,
        progress=progress,
        result={
            "deployment": short,
            "name": name,
            "replicas": replicas,
            "previous": dep["spec"].get("replicas"),
        },
    )


def restart(
    env: Any,
    short: str,
    *,
    approve: Approve,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 3.0,
    progress: Progress = no_progress,
) -> Obj:
    """Rolling restart (kubectl rollout restart): every pod replaced, PDB-friendly."""
    cluster = env.cluster
    dep = _read(cluster, short)
    name = dep["metadata"]["name"]
    plan = Plan(f"rolling restart of {name} ({dep['spec'].get('replicas')} replicas)")
    plan.add(cluster.kube.step_restart(name, env.clock.now()))
    return _apply(
        env,
        plan,
        "app.restart",
        {"deployment": short},
        approve,
        name,
        timeout=timeout,
        interval=interval,
        progress=progress,
        result={"deployment": short, "name": name},
    )


def rollback(
    env: Any,
    short: str,
    *,
    to_revision: int = 0,
    approve: Approve,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 3.0,
    progress: Progress = no_progress,
) -> Obj:
    """kubectl rollout undo: restore a ReplicaSet revision's pod template."""
    if to_revision < 0:
        raise BadInput(
            f"--to-revision {to_revision}: must be a revision number (see `inv app.status`), or 0 for the previous one"
        )
    cluster = env.cluster
    dep = _read(cluster, short)
    name = dep["metadata"]["name"]
    try:
        target = pick_revision(dep, cluster.kube.replicasets(selector_of(dep)), to_revision)
    except LookupError as exc:
        flag = f"--to-revision {to_revision}" if to_revision else "--deployment " + short
        raise BadInput(f"{flag}: {name} {exc}") from None  # exc reads as the rest of the sentence
    current_images = images(dep["spec"]["template"])
    target_images = images(target["spec"]["template"])
    plan = Plan(
        f"roll back {name} from revision {revision_of(dep)} ({', '.join(current_images)}) "
        f"to revision {revision_of(target)} ({', '.join(target_images)})"
    )
    plan.add(cluster.kube.step_rollback(dep, target))
    return _apply(
        env,
        plan,
        "app.rollback",
        {"deployment": short, "to_revision": to_revision},
        approve,
        name,
        timeout=timeout,
        interval=interval,
        progress=progress,
        result={
            "deployment": short,
            "name": name,
            "from_revision": revision_of(dep),
            "restored_revision": revision_of(target),
            "images": target_images,
            "previous_images": current_images,
        },
    )


def logs(env: Any, short: str, *, since_seconds: int, tail: int | None = None) -> list[Obj]:
    """Recent log lines of every pod of the deployment: [{pod, node, container, lines, error}].

    One container per pod (kubectl's default: the kubectl.kubernetes.io/default-container
    annotation, else the first). A pod whose log the API will not give (400: not started
    yet; 404: gone meanwhile) gets `error` and no lines; the other pods are still read.
    """
    cluster = env.cluster
    dep = _read(cluster, short)
    match = dep["spec"]["selector"].get("matchLabels") or {}
    out = []
    for pod in cluster.kube.pods():
        if not matches(pod["metadata"].get("labels") or {}, match):
            continue
        container = default_container(pod)
        entry: Obj = {
            "pod": pod["metadata"]["name"],
            "node": pod["spec"].get("nodeName"),
            "container": container,
            "lines": [],
            "error": None,
        }
        try:
            text = cluster.kube.pod_log(
                pod["metadata"]["name"], since_seconds=since_seconds, tail=tail, container=container
            )
        except KubeError as exc:
            if exc.status not in (400, 404):
                raise
            entry["error"] = exc.api_message
        else:
            entry["lines"] = [line for line in text.splitlines() if line]
        out.append(entry)
    return out
