"""cluster.nodes / drain / uncordon, in process and through `inv`."""

from __future__ import annotations

import json

import pytest
from support.kube import ENV_NAME, app_pods_on, cordoned

NODES = ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal", "ip-10-0-3-10.ec2.internal"]
BACKEND = f"spywatcher-{ENV_NAME}-backend"


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
    # no NODE at all: invoke's own parser refuses it before the task runs, through the
    # boundary (core/parse_errors.py): exit 2, one line with the positional's help
    proc = inv_kube("cluster.drain", "--env", ENV_NAME)
    assert proc.returncode == 2 and proc.stderr.startswith(
        "error: cluster.drain: missing NODE (NODE: node name"
    )
    assert proc.stderr.count("\n") == 1, proc.stderr
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
    from support.kube_api_server import wait_ready

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
