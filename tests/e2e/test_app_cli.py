"""`inv app.*` end to end: the real CLI in a subprocess, against the in-test
Kubernetes API server (kubeconfig context) and a moto server for the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.kube import ENV_NAME
from support.paths import ROOT

BACKEND = f"spywatcher-{ENV_NAME}-backend"
pytestmark = pytest.mark.e2e


def one_line_error(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_status_table_and_json(inv_kube, fake_kube):
    proc = inv_kube("app.status", "--env", ENV_NAME)
    assert proc.returncode == 0, proc.stderr
    assert BACKEND in proc.stdout and "3/3" in proc.stdout and "2-10 (now 3)" in proc.stdout
    assert "backend pods per zone: us-east-1a: 1, us-east-1b: 1, us-east-1c: 1" in proc.stdout
    proc = inv_kube("app.status", "--env", ENV_NAME, "--json")
    data = json.loads(proc.stdout)
    assert [d["deployment"] for d in data["deployments"]] == ["backend", "frontend"]
    assert data["deployments"][1]["hpa"]["max"] == 5


def test_scale_waits_for_the_rollout(inv_kube, fake_kube):
    proc = inv_kube("app.scale", "--env", ENV_NAME, "--deployment", "backend", "--replicas", "5")
    assert proc.returncode == 0, proc.stderr
    assert f"OK {BACKEND} scaled from 3 to 5 replicas" in proc.stdout
    assert "5 of 5 replicas available" in proc.stderr  # progress
    assert fake_kube.get("deployments", BACKEND)["status"]["readyReplicas"] == 5


def test_scale_outside_the_hpa_is_exit_2_with_no_change(inv_kube, fake_kube):
    proc = inv_kube("app.scale", "--env", ENV_NAME, "--deployment", "backend", "--replicas", "12")
    assert proc.returncode == 2
    assert one_line_error(proc).startswith("error: --replicas 12: outside the bounds of HPA")
    assert fake_kube.get("deployments", BACKEND)["spec"]["replicas"] == 3
    assert not [r for r in fake_kube.requests if r[0] == "PATCH"]


def test_scale_dry_run_shows_the_call(inv_kube, fake_kube):
    proc = inv_kube(
        "app.scale", "--env", ENV_NAME, "--deployment", "frontend", "--replicas", "3", "--dry-run"
    )
    assert proc.returncode == 0, proc.stderr
    assert "AppsV1Api.patch_namespaced_deployment(" in proc.stdout and "'replicas': 3" in proc.stdout
    assert not [r for r in fake_kube.requests if r[0] == "PATCH"]


def test_rollback_shows_revision_and_image(inv_kube, fake_kube):
    with fake_kube.lock:
        dep = fake_kube.store["deployments"][("spywatcher", BACKEND)]
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = (
            "registry.example/spywatcher-backend:1.5.0-bad"
        )
        dep["metadata"]["generation"] += 1
    proc = inv_kube("app.rollback", "--env", ENV_NAME, "--deployment", "backend")
    assert proc.returncode == 0, proc.stderr
    assert "to revision 1 (registry.example/spywatcher-backend:1.4.0)" in proc.stdout  # the plan
    assert (
        f"OK {BACKEND} restored revision 1 (registry.example/spywatcher-backend:1.4.0); was revision 2"
        in proc.stdout
    )
    proc = inv_kube("app.rollback", "--env", ENV_NAME, "--deployment", "backend", "--to-revision", "9")
    assert proc.returncode == 2
    assert "--to-revision 9" in one_line_error(proc) and "known: [2, 3]" in proc.stderr


def test_restart_and_logs(inv_kube, fake_kube):
    proc = inv_kube("app.restart", "--env", ENV_NAME, "--deployment", "frontend")
    assert proc.returncode == 0, proc.stderr
    proc = inv_kube("app.logs", "--env", ENV_NAME, "--deployment", "frontend", "--since", "10m")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("starting") >= 2
    proc = inv_kube("app.logs", "--env", ENV_NAME, "--deployment", "frontend", "--since", "soon")
    assert proc.returncode == 2 and "--since soon: not a duration" in one_line_error(proc)


@pytest.mark.parametrize(
    "task,args", [("app.scale", ["--replicas", "4"]), ("app.restart", []), ("app.rollback", [])]
)
@pytest.mark.parametrize("timeout", ["0", "-5"])
def test_a_timeout_that_is_not_positive_is_exit_2_before_any_change(inv_kube, fake_kube, task, args, timeout):
    proc = inv_kube(task, "--env", ENV_NAME, "--deployment", "backend", *args, "--timeout", timeout)
    assert proc.returncode == 2, proc.stderr
    assert (
        one_line_error(proc) == f"error: --timeout {timeout}: must be a positive number of seconds, e.g. 300"
    )
    assert not [r for r in fake_kube.requests if r[0] in ("PATCH", "POST", "DELETE")]


def test_logs_say_which_pod_has_none_and_print_the_others(inv_kube, fake_kube):
    first, second = [p["metadata"]["name"] for p in fake_kube.pods(selector="app=frontend")]
    fake_kube.hold_start(first)  # the API answers 400 for its log
    proc = inv_kube("app.logs", "--env", ENV_NAME, "--deployment", "frontend")
    assert proc.returncode == 0, proc.stderr
    assert (
        f'[{first}] (no logs: container "app" in pod "{first}" is waiting to start: ContainerCreating)'
        in proc.stdout
    )
    assert f"{second} starting" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_unknown_deployment_is_exit_2_and_lists_known(inv_kube, fake_kube):
    proc = inv_kube("app.restart", "--env", ENV_NAME, "--deployment", "worker")
    assert proc.returncode == 2
    assert one_line_error(proc) == "error: --deployment worker: unknown deployment; known: backend, frontend"


def test_sandbox_has_no_cluster(state_dir):
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    for args in (
        ["app.status"],
        ["app.scale", "--deployment", "backend", "--replicas", "3"],
        ["cluster.nodes"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert "environment sandbox (sandbox) has no Kubernetes cluster" in one_line_error(proc)


def test_production_needs_confirmation_before_any_change(inv_kube, fake_kube):
    import yaml

    cfg = yaml.safe_load(inv_kube.config_file.read_text())
    cfg["ops"]["environments"][ENV_NAME]["production"] = True
    inv_kube.config_file.write_text(yaml.safe_dump(cfg))
    proc = inv_kube("app.scale", "--env", ENV_NAME, "--deployment", "backend", "--replicas", "4", "--yes")
    assert proc.returncode == 2
    assert "needs SPYWATCHER_OPS_CONFIRM=kubetest" in proc.stderr
    assert fake_kube.get("deployments", BACKEND)["spec"]["replicas"] == 3
    proc = inv_kube(
        "app.scale",
        "--env",
        ENV_NAME,
        "--deployment",
        "backend",
        "--replicas",
        "4",
        "--yes",
        env={"SPYWATCHER_OPS_CONFIRM": ENV_NAME},
    )
    assert proc.returncode == 0, proc.stderr
    assert fake_kube.get("deployments", BACKEND)["spec"]["replicas"] == 4


def test_drill_scenarios_on_aws_and_the_sandbox(inv_kube, state_dir):
    proc = inv_kube("dr.scenarios", "--env", ENV_NAME, "--json")
    assert proc.returncode == 0, proc.stderr
    found = {s["name"]: s for s in json.loads(proc.stdout)["scenarios"]}
    for name in ("app-pod-loss", "node-loss", "zone-loss"):
        assert found[name]["environments"] == ["aws"] and found[name]["rto_target_s"] == 300
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "dr.drill", "--scenario", "node-loss"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert (
        "--scenario node-loss: the sandbox has no cluster; application drills need an EKS cluster "
        "(it runs on aws environments)" in proc.stderr
    )
    assert not (state_dir / "journal").exists()
