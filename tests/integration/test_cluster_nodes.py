"""cluster.nodes / drain / uncordon, in process and through `inv`."""

from __future__ import annotations

import json

import pytest
from support.kube import ENV_NAME, app_pods_on, cordoned

from spywatcher_ops.cluster import nodes
from spywatcher_ops.core.errors import BadInput, Refused, RolledBack

NODES = ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal", "ip-10-0-3-10.ec2.internal"]
BACKEND = f"spywatcher-{ENV_NAME}-backend"


def yes(_plan):
    return True


def test_listing(kube_env, fake_kube):
    data = nodes.listing(kube_env)
    assert data["control_plane"] == "v1.28.15-eks-a1b2c3d"
    first = data["nodes"][0]
    assert (first["name"], first["zone"], first["kubelet"], first["ami"]) == (
        NODES[0],
        "us-east-1a",
        "v1.28.15-eks-ae9a62a",
        "ami-0abc1234def567890",
    )
    assert sum(n["pods"] for n in data["nodes"]) == 3 + 2 + 3  # app pods + one aws-node per node
    assert not any(n["cordoned"] for n in data["nodes"])


def test_drain_evicts_app_pods_leaves_daemonsets_and_waits_for_replacements(kube_env, fake_kube):
    result = nodes.drain(kube_env, NODES[0], approve=yes, interval=0.05, timeout=10)
    assert cordoned(fake_kube, NODES[0])
    assert app_pods_on(fake_kube, NODES[0]) == []
    assert [p for p in fake_kube.pods("kube-system") if p["spec"]["nodeName"] == NODES[0]]  # aws-node stays
    assert len(result["evicted"]) == len(result["evict"]) >= 1 and result["left_alone"][0].startswith(
        "aws-node"
    )
    assert fake_kube.get("deployments", BACKEND)["status"]["readyReplicas"] == 3
    assert set(fake_kube.evictions) == {name.split("/")[1] for name in result["evicted"]}


def test_unknown_node_lists_the_known_ones(kube_env, fake_kube):
    with pytest.raises(BadInput, match=f"--node ip-nope: no such node; known: {', '.join(NODES)}"):
        nodes.drain(kube_env, "ip-nope", approve=yes)


def test_last_schedulable_node_is_refused(kube_env, fake_kube):
    for name in NODES[1:]:
        with fake_kube.lock:
            fake_kube.store["nodes"][("", name)]["spec"]["unschedulable"] = True
    with pytest.raises(Refused, match="last schedulable node"):
        nodes.drain(kube_env, NODES[0], approve=yes)
    assert not cordoned(fake_kube, NODES[0])


def test_a_pdb_that_can_never_allow_an_eviction_is_refused_before_cordoning(kube_env, fake_kube):
    with fake_kube.lock:
        fake_kube.store["pdbs"][("spywatcher", f"{BACKEND}-pdb")]["spec"] = {
            "selector": {"matchLabels": {"app": "backend"}},
            "maxUnavailable": 0,
        }
    with pytest.raises(
        Refused, match=f"PodDisruptionBudget spywatcher/{BACKEND}-pdb needs all 3 pods healthy"
    ):
        nodes.drain(kube_env, NODES[0], approve=yes)
    assert not cordoned(fake_kube, NODES[0]) and fake_kube.evictions == []


@pytest.mark.parametrize("pre_cordoned", [False, True])
def test_blocked_eviction_times_out_uncordons_and_names_the_pdb(kube_env, fake_kube, pre_cordoned):
    # 6 backend pods, two on each node; the PDB keeps 5 healthy. The first eviction
    # is allowed, its replacement never becomes ready, so the second stays blocked.
    from spywatcher_ops.cluster import deployments

    deployments.scale(kube_env, "backend", 6, force=False, approve=yes, interval=0.05)
    with fake_kube.lock:
        fake_kube.store["pdbs"][("spywatcher", f"{BACKEND}-pdb")]["spec"]["minAvailable"] = 5
        fake_kube.store["nodes"][("", NODES[0])]["spec"]["unschedulable"] = pre_cordoned
    fake_kube.ready_after = 60
    after = "node left cordoned as it was before" if pre_cordoned else "node uncordoned"
    with pytest.raises(
        RolledBack,
        match=rf"--node {NODES[0]}: could not evict spywatcher/{BACKEND}-\w+-\w+ within 1 s, "
        rf"blocked by PodDisruptionBudget spywatcher/{BACKEND}-pdb \(The disruption budget "
        rf"{BACKEND}-pdb needs 5 healthy pods and has 5 currently\); {after}",
    ):
        nodes.drain(kube_env, NODES[0], approve=yes, interval=0.1, timeout=1)
    assert cordoned(fake_kube, NODES[0]) is pre_cordoned
    assert fake_kube.refused_evictions >= 2  # retried on 429
    journal = (kube_env.settings.state_dir / "journal" / f"{ENV_NAME}.jsonl").read_text().splitlines()
    assert json.loads(journal[-1])["outcome"] == "RolledBack"
    assert any('"step": "uncordon"' in line for line in journal)


def test_interrupted_drain_uncordons(kube_env, fake_kube):
    def interrupt(_status):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nodes.drain(kube_env, NODES[1], approve=yes, interval=0.05, progress=interrupt)
    assert not cordoned(fake_kube, NODES[1])


def test_a_pod_scheduled_between_the_plan_and_the_cordon_is_evicted_too(kube_env, fake_kube):
    late = []
    fake_kube.before["patch_node"] = lambda: late.append(fake_kube.add_replica_on(BACKEND, NODES[0]))
    result = nodes.drain(kube_env, NODES[0], approve=yes, interval=0.05, timeout=10)
    name = late[0]["metadata"]["name"]
    assert name not in result["evict"]  # not in the plan: it did not exist yet
    assert f"spywatcher/{name}" in result["evicted"] and app_pods_on(fake_kube, NODES[0]) == []


def test_a_pod_without_controller_appearing_before_the_cordon_rolls_the_drain_back(kube_env, fake_kube):
    fake_kube.before["patch_node"] = lambda: fake_kube.add_pod("debug-shell", NODES[0])
    with pytest.raises(
        RolledBack,
        match=f"--node {NODES[0]}: pods without a controller would be lost: "
        "spywatcher/debug-shell; .*; node uncordoned",
    ):
        nodes.drain(kube_env, NODES[0], approve=yes, interval=0.05, timeout=10)
    assert not cordoned(fake_kube, NODES[0]) and "debug-shell" not in fake_kube.evictions


def test_uncordon(kube_env, fake_kube):
    with fake_kube.lock:
        fake_kube.store["nodes"][("", NODES[2])]["spec"]["unschedulable"] = True
    assert nodes.uncordon(kube_env, NODES[2], approve=yes)["changed"]
    assert not cordoned(fake_kube, NODES[2])
    assert not nodes.uncordon(kube_env, NODES[2], approve=yes)["changed"]
