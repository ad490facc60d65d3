"""eks-nodegroups and eks-upgrade against a loopback fake of the EKS REST API
(tests/support/eks_api_server.py: moto 5.2 has no EKS updates, insights or add-on versions),
boto3 pointed at it through AWS_ENDPOINT_URL_EKS / _SSM, and the in-test Kubernetes API
server for the nodes being replaced and the disruption budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from freezegun import freeze_time

from spywatcher_ops.core.errors import OperationFailed, TimedOut
from spywatcher_ops.maintenance.eks_steps import EKS_NODEGROUPS, EKS_UPGRADE
from spywatcher_ops.maintenance.steps import STEPS, StepContext

CLUSTER = "spywatcher-kubetest-eks"
PDB = "spywatcher-kubetest-backend-pdb"


@pytest.fixture
def eks(monkeypatch: pytest.MonkeyPatch, fake_kube: Any) -> Any:
    from support.eks_api_server import FakeEks

    fake = FakeEks(CLUSTER, polls_to_finish=3)
    fake.add_nodegroup("workers")
    for name, version in (
        ("vpc-cni", "v1.16.0-eksbuild.1"),
        ("coredns", "v1.10.1-eksbuild.4"),
        ("kube-proxy", "v1.28.1-eksbuild.1"),
    ):
        fake.add_addon(name, version)
    fake.add_insight("Deprecated APIs removed in Kubernetes v1.29", "PASSING")
    fake.serve()
    monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", fake.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", fake.url)
    yield fake
    fake.close()


def replace_nodes(fake_kube: Any, new_ami: str) -> Any:
    """What EKS does during a node-group update: one new node up, one old node drained and gone, per poll."""
    old = sorted(n["metadata"]["name"] for n in fake_kube.store["nodes"].values())

    def advance(update: dict[str, Any], poll: int) -> None:
        if poll > len(old):
            return
        with fake_kube.lock:
            fake_kube.add_node(f"ip-10-0-9-{poll}.ec2.internal", "us-east-1a", ami=new_ami)
            gone = old[poll - 1]
            for (ns, name), pod in list(fake_kube.store["pods"].items()):
                if pod["spec"].get("nodeName") == gone:
                    fake_kube._delete_pod(ns, name)
            fake_kube.store["nodes"].pop(("", gone))

    return advance


def ctx_for(env: Any, step: str, **settings: Any) -> StepContext:
    values = {k: s.default for k, s in STEPS[step].settings.items()}
    values.update({"poll_s": 0.05, "timeout_s": 20, **settings})
    notes: list[tuple[str, str]] = []
    ctx = StepContext(
        env=env,
        settings=values,
        progress=lambda _s: None,
        note=lambda code, msg, at=None: notes.append((code, msg)),
    )
    ctx.state["notes"] = notes
    return ctx


def failed(checks: list[Any]) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in checks if c.status == "failed"]


def test_nodegroup_to_the_newest_ami_release_with_nodes_replaced(kube_env, eks, fake_kube):
    eks.on_advance = replace_nodes(fake_kube, "ami-0new")
    ctx = ctx_for(kube_env, "eks-nodegroups")
    pre = EKS_NODEGROUPS.precheck(ctx)
    assert (
        failed(pre) == []
        and "workers: 1.28 release 1.28.15-20240910 (newest 1.28.15-20241121)" in pre[0].detail
    )
    out = EKS_NODEGROUPS.action(ctx)
    assert out["updated"][0]["to"] == "1.28.15-20241121"
    assert eks.nodegroups["workers"]["releaseVersion"] == "1.28.15-20241121"
    shown = [m for c, m in ctx.state["notes"] if c == "nodes"]
    assert [m.split("; ")[1].split(" (")[0] for m in shown] == [
        "nodes replaced 1/3",
        "nodes replaced 2/3",
        "nodes replaced 3/3",
    ]
    assert shown[-1].startswith(
        "node group workers: Successful; nodes replaced 3/3 (new: ip-10-0-9-1.ec2.internal"
    )
    assert {
        n["metadata"]["labels"]["eks.amazonaws.com/nodegroup-image"]
        for n in fake_kube.store["nodes"].values()
    } == {"ami-0new"}
    assert failed(EKS_NODEGROUPS.postcheck(ctx, {})) == []
    ctx2 = ctx_for(kube_env, "eks-nodegroups")  # now current: nothing to do
    EKS_NODEGROUPS.precheck(ctx2)
    assert ctx2.state["todo"] == []


def test_a_pdb_allowing_no_disruption_fails_the_precheck_by_name(kube_env, eks, fake_kube):
    with fake_kube.lock:
        fake_kube.store["pdbs"][("spywatcher", PDB)]["spec"] = {
            "selector": {"matchLabels": {"app": "backend"}},
            "maxUnavailable": 0,
        }
    pre = EKS_NODEGROUPS.precheck(ctx_for(kube_env, "eks-nodegroups"))
    assert failed(pre) == [
        f"disruption budgets: PodDisruptionBudget spywatcher/{PDB} allows no disruption "
        "(3 healthy, 3 required): node replacement would be blocked; scale up or relax the budget first"
    ]
    assert not any(p.endswith("update-version") for _, p in eks.calls)


def test_a_failed_nodegroup_update_says_why(kube_env, eks):
    eks.fail_updates.add("VersionUpdate")
    ctx = ctx_for(kube_env, "eks-nodegroups")
    EKS_NODEGROUPS.precheck(ctx)
    with pytest.raises(
        OperationFailed, match=r"node group workers: EKS update \S+ Failed: PodEvictionFailure"
    ):
        EKS_NODEGROUPS.action(ctx)


def test_an_update_that_never_ends_times_out_with_the_command_to_follow_it(kube_env, eks):
    eks.stuck_updates.add("VersionUpdate")
    ctx = ctx_for(kube_env, "eks-nodegroups", timeout_s=1)
    EKS_NODEGROUPS.precheck(ctx)
    with pytest.raises(TimedOut, match=rf"aws eks describe-update --name {CLUSTER} --update-id \S+"):
        EKS_NODEGROUPS.action(ctx)


def test_control_plane_then_addons_then_nodegroups(kube_env, eks):
    ctx = ctx_for(kube_env, "eks-upgrade")
    pre = EKS_UPGRADE.precheck(ctx)
    assert failed(pre) == [], pre
    assert [c.name for c in pre] == [
        "one minor version",
        "upgrade insights",
        "removed APIs",
        "node groups",
        "add-ons",
    ]
    out = EKS_UPGRADE.action(ctx)
    assert eks.cluster["version"] == "1.29" and eks.nodegroups["workers"]["version"] == "1.29"
    assert {a: eks.addons[a]["addonVersion"] for a in eks.addons} == {
        "coredns": "v1.11.1-eksbuild.9",
        "kube-proxy": "v1.29.7-eksbuild.5",
        "vpc-cni": "v1.18.3-eksbuild.1",
    }
    updates = [p for m, p in eks.calls if m == "POST" and not p.endswith("insights")]
    assert updates[0] == f"/clusters/{CLUSTER}/updates" and updates[-1].endswith(
        "/node-groups/workers/update-version"
    )
    assert all("/addons/" in p for p in updates[1:-1]) and len(updates) == 5
    assert out["control_plane"] == {"from": "1.28", "to": "1.29", "update": out["control_plane"]["update"]}
    assert failed(EKS_UPGRADE.postcheck(ctx, {})) == []


def test_at_the_newest_version_eks_offers_the_weekly_run_has_nothing_to_do(kube_env, eks):
    eks.offered = ["1.26", "1.27", "1.28"]
    ctx = ctx_for(kube_env, "eks-upgrade")
    pre = EKS_UPGRADE.precheck(ctx)
    assert [(c.name, c.status, c.detail) for c in pre] == [
        (
            "one minor version",
            "ok",
            "1.28 is the newest Kubernetes version EKS offers (1.26, 1.27, 1.28): nothing to upgrade",
        )
    ]
    assert EKS_UPGRADE.action(ctx)["control_plane"] is None
    assert [(c.name, c.status) for c in EKS_UPGRADE.postcheck(ctx, {})] == [("control plane", "ok")]
    assert not [p for m, p in eks.calls if m == "POST" and p.startswith("/clusters/")]  # no update
    assert eks.cluster["version"] == "1.28"


def test_a_target_eks_does_not_offer_is_refused(kube_env, eks):
    eks.cluster["version"] = "1.29"
    eks.offered = ["1.28", "1.29"]
    pre = EKS_UPGRADE.precheck(ctx_for(kube_env, "eks-upgrade", target="1.30"))
    assert failed(pre) == ["one minor version: EKS does not offer Kubernetes 1.30; it offers 1.28, 1.29"]


def test_an_upgrade_that_would_skip_a_minor_is_refused(kube_env, eks):
    pre = EKS_UPGRADE.precheck(ctx_for(kube_env, "eks-upgrade", target="1.30"))
    assert failed(pre) == [
        "one minor version: 1.28 -> 1.30 would skip a minor version; EKS upgrades one at a time: "
        "1.28 -> 1.29 this run"
    ]


def test_a_nodegroup_two_versions_behind_fails_the_precheck(kube_env, eks):
    eks.add_nodegroup("legacy", version="1.27")
    pre = EKS_UPGRADE.precheck(ctx_for(kube_env, "eks-upgrade"))
    assert failed(pre) == [
        "node groups: legacy at 1.27: more than one minor version behind 1.29; update them first "
        "(eks-nodegroups)"
    ]


def test_an_addon_with_no_version_for_the_target_fails_the_precheck(kube_env, eks):
    del eks.addon_versions["coredns"]["1.29"]
    pre = EKS_UPGRADE.precheck(ctx_for(kube_env, "eks-upgrade"))
    assert failed(pre) == ["add-ons: no version of coredns for Kubernetes 1.29"]
    assert not any(m == "POST" and p.endswith("/updates") for m, p in eks.calls)


def test_insight_errors_and_removed_apis_in_use_fail_the_precheck(kube_env, eks):
    eks.add_insight("Kubelet version skew", "ERROR", reason="Node kubelet versions do not match")
    eks.add_insight(
        "Deprecated APIs removed in Kubernetes v1.29",
        "ERROR",
        reason="Deprecated API usage detected",
        deprecations=[
            {
                "usage": "/apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas",
                "replacedWith": "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
                "stopServingVersion": "1.29",
                "startServingReplacementVersion": "1.26",
                "clientStats": [{"userAgent": "kube-controller-manager", "numberOfRequestsLast30Days": 5}],
            }
        ],
    )
    pre = EKS_UPGRADE.precheck(ctx_for(kube_env, "eks-upgrade"))
    problems = failed(pre)
    assert problems[0].startswith(
        "upgrade insights: Kubelet version skew: Node kubelet versions do not match"
    )
    assert problems[1] == (
        "removed APIs: still in use: /apis/flowcontrol.apiserver.k8s.io/v1beta2/flowschemas "
        "(removed in 1.29; use /apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas; "
        "clients: kube-controller-manager)"
    )


@pytest.mark.parametrize(
    ("now", "starts"),
    [("2026-11-29T02:00:00Z", True), ("2026-11-29T02:44:59Z", True), ("2026-11-29T02:45:01Z", False)],
)
def test_the_control_plane_upgrade_starts_only_when_it_fits_before_the_cutoff(now, starts):
    from spywatcher_ops.maintenance.budget import fits
    from spywatcher_ops.maintenance.window import current_or_next, spec_from

    spec = spec_from(
        {"day": "sunday", "start": "02:00", "end": "04:00", "timezone": "UTC", "cutoff_minutes": 15}
    )
    with freeze_time(now):
        at = datetime.now(UTC)
        window = current_or_next(spec, at)
        # eks-upgrade's expected duration until there is history: 3600 s; cutoff 03:45
        assert fits(STEPS["eks-upgrade"].default_s, window, at) is starts
