"""cluster.nodes / drain / uncordon, in process and through `inv`."""

from __future__ import annotations

import json

import pytest
from fixtures_kube import ENV_NAME

from spywatcher_ops.cluster import nodes
from spywatcher_ops.core.errors import BadInput, Refused, RolledBack

NODES = ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal", "ip-10-0-3-10.ec2.internal"]
BACKEND = f"spywatcher-{ENV_NAME}-backend"


def yes(_plan):
    return True


def cordoned(fake, name):
    return bool(fake.get("nodes", name)["spec"].get("unschedulable"))


def app_pods_on(fake, node):
    return [p for p in fake.pods() if p["spec"].get("nodeName") == node]


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


# -- through inv -------------------------------------------------------------------------


@pytest.mark.e2e
def test_cli_nodes(inv_kube, fake_kube):
    proc = inv_kube("cluster.nodes", "--env", ENV_NAME)
    assert proc.returncode == 0, proc.stderr
    for name in NODES:
        assert name in proc.stdout
    assert "control plane v1.28.15-eks-a1b2c3d" in proc.stdout and "ami-0abc1234def567890" in proc.stdout
    data = json.loads(inv_kube("cluster.nodes", "--env", ENV_NAME, "--json").stdout)
    assert [n["zone"] for n in data["nodes"]] == ["us-east-1a", "us-east-1b", "us-east-1c"]


@pytest.mark.e2e
def test_cli_drain_and_uncordon(inv_kube, fake_kube):
    proc = inv_kube("cluster.drain", "--env", ENV_NAME, "--node", NODES[2])
    assert proc.returncode == 0, proc.stderr
    assert "CoreV1Api.create_namespaced_pod_eviction(" in proc.stdout  # the plan names the calls
    assert f"OK {NODES[2]} drained" in proc.stdout
    assert cordoned(fake_kube, NODES[2]) and app_pods_on(fake_kube, NODES[2]) == []
    proc = inv_kube("cluster.uncordon", "--env", ENV_NAME, "--node", NODES[2])
    assert proc.returncode == 0 and f"OK {NODES[2]} is schedulable again" in proc.stdout
    assert not cordoned(fake_kube, NODES[2])


@pytest.mark.e2e
def test_cli_drain_and_uncordon_take_the_node_as_positional(inv_kube, fake_kube):
    proc = inv_kube("cluster.drain", NODES[1], "--env", ENV_NAME, "--yes")
    assert proc.returncode == 0, proc.stderr
    assert f"OK {NODES[1]} drained" in proc.stdout and cordoned(fake_kube, NODES[1])
    proc = inv_kube("cluster.uncordon", "--env", ENV_NAME, NODES[1])
    assert proc.returncode == 0, proc.stderr
    assert f"OK {NODES[1]} is schedulable again" in proc.stdout and not cordoned(fake_kube, NODES[1])
    help_text = " ".join(inv_kube("--help", "cluster.drain").stdout.split())  # invoke wraps help at the width
    assert (
        "inv cluster.drain ip-10-0-1-10.ec2.internal" in help_text
        and "(positional, or --node NAME)" in help_text
    )


@pytest.mark.e2e
def test_cli_drain_bad_input(inv_kube, fake_kube):
    proc = inv_kube("cluster.drain", "ip-nope", "--env", ENV_NAME)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: --node ip-nope: no such node; known: {', '.join(NODES)}"
    proc = inv_kube("cluster.drain", "", "--env", ENV_NAME)
    assert proc.returncode == 2
    # the empty-value rule of every task (core/cli.py) answers first, with the positional's own help
    assert proc.stderr.strip() == (
        "error: NODE '': empty; give a value: node name as `inv cluster.nodes` shows it, "
        "e.g. ip-10-0-1-10.ec2.internal (positional, or --node NAME)"
    )
    # no NODE at all: invoke's own parser refuses it before the task runs (its exit code, 1)
    proc = inv_kube("cluster.drain", "--env", ENV_NAME)
    assert proc.returncode == 1 and "did not receive required positional arguments: 'node'" in proc.stderr
    proc = inv_kube("cluster.drain", NODES[0], "--env", ENV_NAME, "--timeout", "0")
    assert proc.returncode == 2 and "--timeout 0: must be a positive number of seconds" in proc.stderr
    assert not [r for r in fake_kube.requests if r[0] in ("PATCH", "POST", "DELETE")]


@pytest.mark.e2e
def test_cli_drain_of_the_last_schedulable_node_is_exit_2(inv_kube, fake_kube):
    with fake_kube.lock:
        for name in NODES[1:]:
            fake_kube.store["nodes"][("", name)]["spec"]["unschedulable"] = True
    proc = inv_kube("cluster.drain", NODES[0], "--env", ENV_NAME, "--yes")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        f"error: --node {NODES[0]}: it is the last schedulable node; its pods would have nowhere to go"
    )
    assert not cordoned(fake_kube, NODES[0]) and fake_kube.evictions == []


@pytest.mark.e2e
def test_cli_drain_blocked_past_its_deadline_is_rolled_back_exit_4(inv_kube, fake_kube):
    from kube_api_server import wait_ready

    # 6 backend pods, two per node, the PDB keeps 5 healthy and replacements never get ready:
    # the first eviction is allowed, the second stays refused (429) until the deadline
    fake_kube.ready_after = 0
    with fake_kube.lock:
        fake_kube.store["deployments"][("spywatcher", BACKEND)]["spec"]["replicas"] = 6
    wait_ready(fake_kube)
    with fake_kube.lock:
        fake_kube.store["pdbs"][("spywatcher", f"{BACKEND}-pdb")]["spec"]["minAvailable"] = 5
    fake_kube.ready_after = 60
    proc = inv_kube("cluster.drain", NODES[0], "--env", ENV_NAME, "--yes", "--timeout", "1")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: --node {NODES[0]}: could not evict spywatcher/{BACKEND}-")
    assert f"blocked by PodDisruptionBudget spywatcher/{BACKEND}-pdb" in error and "node uncordoned" in error
    assert not cordoned(fake_kube, NODES[0]) and fake_kube.refused_evictions >= 2
