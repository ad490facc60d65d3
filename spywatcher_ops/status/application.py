"""The application and node lines (aws environments with a cluster)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..cluster.objects import matches, node_ready
from .model import Line, failed, ok, warn

APP = "application"
NODES = "nodes"
SHORT_NAMES = ("backend", "frontend")


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def restarts_since(pods: list[dict[str, Any]], since: datetime) -> int:
    """Containers whose last termination (a restart) was after `since`; the API keeps only the last."""
    count = 0
    for p in pods:
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            ended = _time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            if ended is not None and ended >= since and int(cs.get("restartCount") or 0) > 0:
                count += 1
    return count


def application(cluster: Any, now: datetime) -> list[Line]:
    kube = cluster.kube
    present = {d["metadata"]["name"]: d for d in kube.deployments()}
    pods = kube.pods()
    hpas = kube.hpas()
    lines: list[Line] = []
    for short in SHORT_NAMES:
        name = cluster.deployment_name(short)
        dep = present.get(name)
        if dep is None:
            lines.append(
                failed(
                    APP,
                    f"{short}: deployment {name} not found in {cluster.namespace}",
                    "runbook service-down",
                )
            )
            continue
        desired = int((dep.get("spec") or {}).get("replicas", 0))
        ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
        match = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        mine = [p for p in pods if matches(p["metadata"].get("labels") or {}, match)]
        restarts = restarts_since(mine, now - timedelta(hours=1))
        text = f"{short}: {ready}/{desired} ready, {restarts} restart(s) in the last hour"
        if ready == 0 and desired > 0:
            lines.append(failed(APP, text, "runbook service-down"))
        elif ready < desired or restarts:
            lines.append(warn(APP, text, "inv app.status shows pods and recent warnings"))
        else:
            lines.append(ok(APP, text))
        hpa = next(
            (h for h in hpas if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name), None
        )
        if hpa is not None:
            top = (hpa.get("spec") or {}).get("maxReplicas")
            current = (hpa.get("status") or {}).get("currentReplicas")
            if top is not None and current is not None and int(current) >= int(top):
                lines.append(
                    warn(
                        APP,
                        f"{short}: HPA at its maximum ({current}/{top}): it cannot scale further",
                        "runbook high-cpu-memory",
                    )
                )
    return lines


def nodes(cluster: Any) -> list[Line]:
    listing = cluster.kube.nodes()
    total = len(listing)
    not_ready = sorted(n["metadata"]["name"] for n in listing if not node_ready(n))
    cordoned = sorted(n["metadata"]["name"] for n in listing if (n.get("spec") or {}).get("unschedulable"))
    text = f"{total - len(not_ready)} of {total} ready" + (
        f"; cordoned: {', '.join(cordoned)}" if cordoned else ""
    )
    if total == 0 or len(not_ready) == total:
        return [failed(NODES, text, "no node to run pods: check the node group in the EKS console")]
    if not_ready:
        return [warn(NODES, f"{text}; not ready: {', '.join(not_ready)}", "inv cluster.nodes")]
    if cordoned:
        return [warn(NODES, text, "inv cluster.uncordon NODE once its work is done")]
    return [ok(NODES, text)]
