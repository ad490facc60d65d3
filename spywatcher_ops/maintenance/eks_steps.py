"""The Kubernetes steps on EKS (the ClusterUpgrades port):

- eks-nodegroups: each managed node group to the newest AMI release of its
  Kubernetes version (update_nodegroup_version), waited on with the update's
  status and the nodes being replaced; a PodDisruptionBudget that allows no
  disruption fails the pre-check by name (EKS would fail the update on it).
- eks-upgrade: the control plane one minor version (1.28 -> 1.29), after
  pre-checks: upgrade insights with no ERROR, no API in use that the target
  removes, node groups at most one minor behind the target, every installed
  add-on with a version for the target. Then the add-ons to their default
  version for the new version, then the node groups to it. The engine starts
  the step only when its expected duration fits before the cutoff.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import OperationFailed, TimedOut
from ..core.ports import ClusterUpgrades
from ..core.waiting import wait_for
from .steps import Check, StepContext

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"


def minor(version: str) -> tuple[int, int]:
    major, _, rest = str(version).partition(".")
    return int(major), int(rest.split(".")[0])


def next_minor(version: str) -> str:
    major, m = minor(version)
    return f"{major}.{m + 1}"


def _port(ctx: StepContext) -> ClusterUpgrades:
    port = ctx.env.parts.upgrades()
    if port is None:
        raise OperationFailed(f"{ctx.env.name} has no EKS cluster")
    return port


def _nodes_of(ctx: StepContext, nodegroup: str) -> list[dict[str, Any]]:
    try:
        kube = ctx.env.cluster.kube
        return [
            n for n in kube.nodes() if (n["metadata"].get("labels") or {}).get(NODEGROUP_LABEL) == nodegroup
        ]
    except Exception:  # noqa: BLE001 - the node view is progress only; the EKS update's status decides
        return []


def pdb_blockers(ctx: StepContext) -> list[str]:
    """PodDisruptionBudgets that allow no disruption now: a node replacement would hang on them."""
    out = []
    for pdb in ctx.env.cluster.kube.pdbs(all_namespaces=True):
        st = pdb.get("status") or {}
        if int(st.get("expectedPods") or 0) and int(st.get("disruptionsAllowed") or 0) == 0:
            out.append(
                f"PodDisruptionBudget {pdb['metadata']['namespace']}/{pdb['metadata']['name']} allows no "
                f"disruption ({st.get('currentHealthy')} healthy, {st.get('desiredHealthy')} required): "
                "node replacement would be blocked; scale up or relax the budget first"
            )
    return out


def wait_update(
    ctx: StepContext,
    port: Any,
    update_id: str,
    what: str,
    *,
    nodegroup: str | None = None,
    addon: str | None = None,
) -> dict[str, Any]:
    """Poll describe_update until it ends; progress shows the nodes of a node group as they are replaced."""
    timeout = float(ctx.settings["timeout_s"])
    interval = float(ctx.settings["poll_s"])
    before = {n["metadata"]["name"] for n in _nodes_of(ctx, nodegroup)} if nodegroup else set()
    seen: dict[str, Any] = {}

    def probe() -> tuple[bool, dict[str, Any], str]:
        u = port.describe_update(update_id, nodegroup=nodegroup, addon=addon)
        status = f"{what}: {u['status']}"
        if nodegroup:
            now = {n["metadata"]["name"] for n in _nodes_of(ctx, nodegroup)}
            new, gone = sorted(now - before), sorted(before - now)
            status += f"; nodes replaced {len(gone)}/{len(before)}" + (
                f" (new: {', '.join(new)})" if new else ""
            )
            if (new, gone) != (seen.get("new"), seen.get("gone")):
                seen.update(new=new, gone=gone)
                ctx.note("nodes", status)
        return u["status"] != "InProgress", u, status

    try:
        result = wait_for(
            probe, what=what, clock=ctx.env.clock, timeout=timeout, interval=interval, progress=ctx.progress
        )
    except TimedOut as exc:
        raise TimedOut(
            f"{exc}; the EKS update {update_id} goes on: `aws eks describe-update --name "
            f"{port.cluster_name} --update-id {update_id}`"
        ) from None
    ctx.note("eks-update", f"{what}: {result['status']}")
    if result["status"] != "Successful":
        raise OperationFailed(
            f"{what}: EKS update {update_id} {result['status']}: {'; '.join(result['errors'])}"
        )
    return result


class EksNodegroups:
    def precheck(self, ctx: StepContext) -> list[Check]:
        port = _port(ctx)
        todo, listed = [], []
        for ng in port.nodegroups():
            latest = port.latest_release(ng["version"], ng["ami_type"])
            listed.append(f"{ng['name']}: {ng['version']} release {ng['release_version']} (newest {latest})")
            if latest and latest != ng["release_version"]:
                todo.append({**ng, "latest": latest})
        ctx.state["todo"] = todo
        checks = [Check("node groups", "ok", "; ".join(listed) or "none")]
        blockers = pdb_blockers(ctx) if todo else []
        checks.append(
            Check(
                "disruption budgets",
                "failed" if blockers else "ok",
                blockers[0] if blockers else "every budget allows a disruption",
            )
        )
        return checks

    def action(self, ctx: StepContext) -> dict[str, Any]:
        port = _port(ctx)
        done = []
        for ng in ctx.state["todo"]:
            uid = port.update_nodegroup(ng["name"])
            ctx.note("eks-update", f"node group {ng['name']}: update {uid} to release {ng['latest']}")
            wait_update(ctx, port, uid, f"node group {ng['name']}", nodegroup=ng["name"])
            done.append(
                {"nodegroup": ng["name"], "from": ng["release_version"], "to": ng["latest"], "update": uid}
            )
        return {"updated": done}

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        port = _port(ctx)
        behind = []
        for ng in port.nodegroups():
            latest = port.latest_release(ng["version"], ng["ami_type"])
            if latest and latest != ng["release_version"]:
                behind.append(f"{ng['name']} at {ng['release_version']}, newest {latest}")
        return [
            Check(
                "node groups current",
                "failed" if behind else "ok",
                "; ".join(behind) or "every node group on the newest AMI release",
            )
        ]

    def rollback(self, ctx: StepContext) -> str:
        return (
            "nothing to undo: EKS rolls a failed node-group update back itself (the old nodes stay); "
            "see `aws eks describe-update`"
        )


class EksUpgrade:
    def precheck(self, ctx: StepContext) -> list[Check]:
        port = _port(ctx)
        current = port.cluster()["version"]
        asked = str(ctx.settings["target"] or "")
        target = asked or next_minor(current)
        offered = port.versions()
        if offered and not asked and target not in offered:
            # the weekly run at the newest version: nothing to do, not a failure
            ctx.state.update(current=current, target=current, addons=[], nothing=True)
            return [
                Check(
                    "one minor version",
                    "ok",
                    f"{current} is the newest Kubernetes version EKS offers ({', '.join(offered)}): "
                    "nothing to upgrade",
                )
            ]
        ctx.state.update(current=current, target=target)
        checks = []
        if minor(target) != minor(next_minor(current)):
            checks.append(
                Check(
                    "one minor version",
                    "failed",
                    f"{current} -> {target} would skip a minor version; EKS upgrades one at a time: "
                    f"{current} -> {next_minor(current)} this run",
                    hint=f'set target: "{next_minor(current)}" (or leave it empty)',
                )
            )
            return checks
        if offered and target not in offered:
            checks.append(
                Check(
                    "one minor version",
                    "failed",
                    f"EKS does not offer Kubernetes {target}; it offers {', '.join(offered)}",
                    hint="leave target empty: the next minor version, when EKS offers it",
                )
            )
            return checks
        checks.append(Check("one minor version", "ok", f"{current} -> {target}"))
        insights = port.insights()
        errors = [i for i in insights if i["status"] == "ERROR"]
        checks.append(
            Check(
                "upgrade insights",
                "failed" if errors else "ok",
                "; ".join(f"{i['name']}: {i['reason']}" for i in errors)
                or f"{len(insights)} insight(s), none in ERROR",
            )
        )
        removed = [
            f"{d['usage']} (removed in {d['stop_serving_version']}; use {d['replaced_with']}; "
            f"clients: {', '.join(c for c in d['clients'] if c) or '?'})"
            for i in insights
            for d in i["deprecations"]
            if d.get("usage")
            and d.get("stop_serving_version")
            and minor(d["stop_serving_version"]) <= minor(target)
        ]
        checks.append(
            Check(
                "removed APIs",
                "failed" if removed else "ok",
                "still in use: " + "; ".join(removed) if removed else f"none removed in {target} in use",
            )
        )
        behind = [
            f"{ng['name']} at {ng['version']}"
            for ng in port.nodegroups()
            if minor(target)[1] - minor(ng["version"])[1] > 1
        ]
        checks.append(
            Check(
                "node groups",
                "failed" if behind else "ok",
                (
                    ", ".join(behind) + f": more than one minor version behind {target}; update them first "
                    "(eks-nodegroups)"
                )
                if behind
                else f"all within one minor version of {target}",
            )
        )
        addons, missing = [], []
        for a in port.addons():
            versions = port.addon_versions(a["name"], target)
            default = next(
                (v["version"] for v in versions if v["default"]), versions[0]["version"] if versions else None
            )
            if default is None:
                missing.append(a["name"])
            else:
                addons.append({"name": a["name"], "from": a["version"], "to": default})
        ctx.state["addons"] = addons
        checks.append(
            Check(
                "add-ons",
                "failed" if missing else "ok",
                f"no version of {', '.join(missing)} for Kubernetes {target}"
                if missing
                else "; ".join(f"{a['name']} {a['from']} -> {a['to']}" for a in addons) or "none",
            )
        )
        return checks

    def action(self, ctx: StepContext) -> dict[str, Any]:
        if ctx.state.get("nothing"):
            return {"control_plane": None, "addons": [], "nodegroups": [], "detail": "at the newest version"}
        port = _port(ctx)
        target = ctx.state["target"]
        uid = port.update_cluster_version(target)
        ctx.state["control_plane_update"] = uid
        ctx.note("eks-update", f"control plane {ctx.state['current']} -> {target}: update {uid}")
        wait_update(ctx, port, uid, f"control plane to {target}")
        ctx.state["control_plane_done"] = True
        done: dict[str, Any] = {
            "control_plane": {"from": ctx.state["current"], "to": target, "update": uid},
            "addons": [],
            "nodegroups": [],
        }
        for a in ctx.state["addons"]:
            if a["from"] == a["to"]:
                continue
            aid = port.update_addon(a["name"], a["to"])
            wait_update(ctx, port, aid, f"add-on {a['name']} to {a['to']}", addon=a["name"])
            done["addons"].append({**a, "update": aid})
        for ng in port.nodegroups():
            if ng["version"] == target:
                continue
            nid = port.update_nodegroup(ng["name"], target)
            wait_update(ctx, port, nid, f"node group {ng['name']} to {target}", nodegroup=ng["name"])
            done["nodegroups"].append(
                {"nodegroup": ng["name"], "from": ng["version"], "to": target, "update": nid}
            )
        return done

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        port = _port(ctx)
        target = ctx.state["target"]
        version = port.cluster()["version"]
        if ctx.state.get("nothing"):
            return [Check("control plane", "ok", f"at {version}, the newest EKS offers")]
        old_addons = {a["name"]: a["to"] for a in ctx.state["addons"]}
        wrong_addons = [
            f"{a['name']} {a['version']}"
            for a in port.addons()
            if a["name"] in old_addons and a["version"] != old_addons[a["name"]]
        ]
        behind = [f"{ng['name']} {ng['version']}" for ng in port.nodegroups() if ng["version"] != target]
        return [
            Check(
                "control plane", "ok" if version == target else "failed", f"at {version} (target {target})"
            ),
            Check(
                "add-ons",
                "failed" if wrong_addons else "ok",
                f"not at the default for {target}: {', '.join(wrong_addons)}"
                if wrong_addons
                else "at their defaults",
            ),
            Check(
                "node groups",
                "failed" if behind else "ok",
                f"not at {target}: {', '.join(behind)}" if behind else f"all at {target}",
            ),
        ]

    def rollback(self, ctx: StepContext) -> str:
        if ctx.state.get("control_plane_done"):
            return (
                f"an EKS control plane cannot be downgraded: it stays at {ctx.state['target']}; add-ons and node "
                "groups not yet updated run again on the next run (they are within one minor version)"
            )
        return "the control plane was not changed (EKS reverts a failed version update itself)"


EKS_NODEGROUPS = EksNodegroups()
EKS_UPGRADE = EksUpgrade()
