"""app.* domain functions against the in-test Kubernetes API server, through the
official client (kubeconfig context) and a moto-backed lock."""

from __future__ import annotations

import json

import pytest
from support.kube import ENV_NAME

from spywatcher_ops.cluster import deployments
from spywatcher_ops.cluster.objects import pick_revision, rollout_state
from spywatcher_ops.core.errors import BadInput, Refused, TimedOut

BACKEND = f"spywatcher-{ENV_NAME}-backend"
FRONTEND = f"spywatcher-{ENV_NAME}-frontend"


def yes(_plan):
    return True


def patches(fake):
    return [r for r in fake.requests if r[0] in ("PATCH", "POST", "DELETE")]


def deploy_image(fake, name, image):
    """What a CI deploy does: a new image in the pod template."""
    with fake.lock:
        dep = fake.store["deployments"][("spywatcher", name)]
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
        dep["metadata"]["generation"] += 1


def test_status_shows_replicas_spread_hpa_pdb_and_recent_warnings(kube_env, fake_kube):
    pod = fake_kube.pods(selector="app=backend")[0]["metadata"]["name"]
    fake_kube.add_event(pod, "Unhealthy", "Readiness probe failed: HTTP 503", ago=60)
    fake_kube.add_event(pod, "BackOff", "an old one", ago=7200)
    data = deployments.status(kube_env)
    backend, frontend = data["deployments"]
    assert (backend["name"], backend["desired"], backend["ready"], backend["updated"]) == (BACKEND, 3, 3, 3)
    assert backend["pods_per_zone"] == {"us-east-1a": 1, "us-east-1b": 1, "us-east-1c": 1}
    assert sum(backend["pods_per_node"].values()) == 3
    assert backend["hpa"] == {"name": BACKEND, "min": 2, "max": 10, "current": 3}
    assert backend["pdbs"] == [
        {"name": f"{BACKEND}-pdb", "min_available": 1, "max_unavailable": None, "disruptions_allowed": 2}
    ]
    assert [w["message"] for w in backend["warnings"]] == ["Readiness probe failed: HTTP 503"]
    assert frontend["hpa"]["max"] == 5 and frontend["warnings"] == []
    assert backend["images"] == ["registry.example/spywatcher-backend:1.4.0"]
    json.dumps(data)  # --json must be able to print it


def test_scale_within_hpa_bounds_waits_for_the_rollout(kube_env, fake_kube):
    seen = []
    result = deployments.scale(
        kube_env, "backend", 5, force=False, approve=yes, interval=0.05, progress=seen.append
    )
    assert result["ready"] == 5 and result["previous"] == 3
    assert fake_kube.get("deployments", BACKEND)["status"]["readyReplicas"] == 5
    assert any("of 5" in s for s in seen), seen
    journal = [
        json.loads(line)
        for line in (kube_env.settings.state_dir / "journal" / f"{ENV_NAME}.jsonl").read_text().splitlines()
    ]
    assert [r["event"] for r in journal][0] == "start" and journal[-1]["outcome"] == "ok"
    assert journal[-1]["result"]["replicas"] == 5


@pytest.mark.parametrize(
    "short,replicas,bounds", [("backend", 11, "2-10"), ("backend", 1, "2-10"), ("frontend", 6, "2-5")]
)
def test_scale_outside_hpa_bounds_is_refused_without_a_call(kube_env, fake_kube, short, replicas, bounds):
    with pytest.raises(
        BadInput, match=rf"--replicas {replicas}: outside the bounds of HPA .*\({bounds}\); pass --force"
    ):
        deployments.scale(kube_env, short, replicas, force=False, approve=yes, interval=0.05)
    assert patches(fake_kube) == []


def test_scale_outside_bounds_with_force(kube_env, fake_kube):
    deployments.scale(kube_env, "frontend", 6, force=True, approve=yes, interval=0.05)
    assert fake_kube.get("deployments", FRONTEND)["status"]["readyReplicas"] == 6


def test_dry_run_makes_no_call(kube_env, fake_kube):
    result = deployments.scale(kube_env, "backend", 4, force=False, approve=lambda plan: False)
    assert (
        result["dry_run"] and result["plan"]["steps"][0]["action"] == "AppsV1Api.patch_namespaced_deployment"
    )
    assert result["plan"]["steps"][0]["params"]["body"] == {"spec": {"replicas": 4}}
    assert patches(fake_kube) == []


def test_unknown_deployment_lists_the_known_ones(kube_env, fake_kube):
    with pytest.raises(BadInput, match="--deployment worker: unknown deployment; known: backend, frontend"):
        deployments.scale(kube_env, "worker", 3, force=False, approve=yes)


def test_deployment_missing_from_the_cluster_lists_what_is_there(kube_env, fake_kube):
    with fake_kube.lock:
        del fake_kube.store["deployments"][("spywatcher", FRONTEND)]
    with pytest.raises(
        BadInput, match=f"deployment {FRONTEND} not found in namespace spywatcher; present: {BACKEND}"
    ):
        deployments.restart(kube_env, "frontend", approve=yes)


def test_restart_replaces_every_pod(kube_env, fake_kube):
    before = {p["metadata"]["name"] for p in fake_kube.pods(selector="app=backend")}
    deployments.restart(kube_env, "backend", approve=yes, interval=0.05)
    after = {p["metadata"]["name"] for p in fake_kube.pods(selector="app=backend")}
    assert len(after) == 3 and not before & after
    annotations = fake_kube.get("deployments", BACKEND)["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_rollback_restores_the_previous_revision_and_its_image(kube_env, fake_kube):
    deploy_image(fake_kube, BACKEND, "registry.example/spywatcher-backend:1.5.0-bad")
    fake_kube.reconcile()
    result = deployments.rollback(kube_env, "backend", approve=yes, interval=0.05)
    assert (result["from_revision"], result["restored_revision"]) == (2, 1)
    assert result["images"] == ["registry.example/spywatcher-backend:1.4.0"]
    assert result["previous_images"] == ["registry.example/spywatcher-backend:1.5.0-bad"]
    dep = fake_kube.get("deployments", BACKEND)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.4.0")
    assert "pod-template-hash" not in dep["spec"]["template"]["metadata"]["labels"]
    assert (
        dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    )  # like kubectl: a new revision
    assert {p["spec"]["containers"][0]["image"] for p in fake_kube.pods(selector="app=backend")} == {
        "registry.example/spywatcher-backend:1.4.0"
    }


def test_rollback_to_a_revision_that_does_not_exist(kube_env, fake_kube):
    deploy_image(fake_kube, BACKEND, "registry.example/spywatcher-backend:1.5.0")
    with pytest.raises(BadInput, match=r"--to-revision 7: .* has no revision 7; known: \[1, 2\]"):
        deployments.rollback(kube_env, "backend", to_revision=7, approve=yes)
    assert patches(fake_kube) == []


def test_rollback_to_the_current_revision_says_so_in_one_sentence(kube_env, fake_kube):
    deploy_image(fake_kube, BACKEND, "registry.example/spywatcher-backend:1.5.0")
    with pytest.raises(BadInput) as err:
        deployments.rollback(kube_env, "backend", to_revision=2, approve=yes)
    assert str(err.value) == (
        f"--to-revision 2: {BACKEND} is already at revision 2, the current one; "
        "give an earlier one; known: [1, 2]"
    )
    assert patches(fake_kube) == []


def test_rollback_refuses_when_the_deployment_changed_after_the_plan(kube_env, fake_kube):
    deploy_image(fake_kube, BACKEND, "registry.example/spywatcher-backend:1.5.0-bad")
    fake_kube.reconcile()
    kube = kube_env.cluster.kube
    planned = {}

    def someone_scales_meanwhile(plan):
        planned["rv"] = plan.steps[0].params["body"][0]["value"]  # the plan's `test` op
        kube.execute(kube.step_scale(BACKEND, 4))  # another operator, between the plan and its apply
        return True

    with pytest.raises(Refused) as err:
        deployments.rollback(kube_env, "backend", approve=someone_scales_meanwhile, interval=0.05)
    now = fake_kube.get("deployments", BACKEND)
    assert str(err.value) == (
        f"{BACKEND} changed since the plan was made (resourceVersion {planned['rv']}, "
        f"now {now['metadata']['resourceVersion']}); nothing was applied; run the rollback again"
    )
    assert err.value.exit_code == 2
    # the API rejected the whole patch: the bad image stays, only the other operator's change landed
    assert now["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.5.0-bad")
    assert now["spec"]["replicas"] == 4
    journal = (kube_env.settings.state_dir / "journal" / f"{ENV_NAME}.jsonl").read_text().splitlines()
    assert json.loads(journal[-1])["outcome"] == "Refused"


def test_the_api_answers_a_failed_json_patch_test_like_the_real_one(kube_env, fake_kube):
    from spywatcher_ops.core.ports import KubeError

    body = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}]
    with pytest.raises(KubeError) as err:
        kube_env.cluster.kube.call(
            "AppsV1Api", "patch_namespaced_deployment", name=BACKEND, namespace="spywatcher", body=body
        )
    assert (err.value.status, err.value.reason, err.value.body["kind"], err.value.body["code"]) == (
        422,
        "Invalid",
        "Status",
        422,
    )
    assert err.value.api_message == "the server rejected our request due to an error in our request"
    assert err.value.causes == ["testing value /metadata/resourceVersion failed: test failed"]


def test_rollback_without_history_is_bad_input(kube_env, fake_kube):
    with pytest.raises(BadInput, match="no revision before the current 1"):
        deployments.rollback(kube_env, "frontend", approve=yes)


def test_rollout_that_does_not_finish_fails_at_its_deadline(kube_env, fake_kube):
    fake_kube.ready_after = 60  # the new pods' readiness probes never pass in time
    with pytest.raises(
        TimedOut,
        match=f"gave up waiting for the rollout of {BACKEND} after 1 s; last status: .*old replicas pending termination; the change stays applied",
    ):
        deployments.restart(kube_env, "backend", approve=yes, timeout=0.6, interval=0.1)
    # old pods keep serving: a rolling update never takes the old ReplicaSet below what is ready
    assert fake_kube.get("deployments", BACKEND)["status"]["readyReplicas"] >= 3


def test_logs_since(kube_env, fake_kube):
    pod = fake_kube.pods(selector="app=frontend")[0]["metadata"]["name"]
    fake_kube.add_log("spywatcher", pod, "GET /health 200", ago=5)
    fake_kube.add_log("spywatcher", pod, "too old", ago=3600)
    data = deployments.logs(kube_env, "frontend", since_seconds=600)
    lines = [line for p in data for line in p["lines"]]
    assert any(line.endswith("GET /health 200") for line in lines)
    assert not any("too old" in line for line in lines)
    assert len(data) == 2


def test_logs_of_a_pod_not_started_yet_do_not_hide_the_others(kube_env, fake_kube):
    first, second = [p["metadata"]["name"] for p in fake_kube.pods(selector="app=frontend")]
    fake_kube.add_log("spywatcher", second, "GET /health 200", ago=5)
    fake_kube.hold_start(first)  # the API answers 400 for its log
    data = {p["pod"]: p for p in deployments.logs(kube_env, "frontend", since_seconds=600)}
    assert data[first]["lines"] == []
    assert data[first]["error"] == f'container "app" in pod "{first}" is waiting to start: ContainerCreating'
    assert data[second]["error"] is None and data[second]["lines"][-1].endswith("GET /health 200")


def test_logs_read_the_default_container_of_multi_container_pods(kube_env, fake_kube):
    node = fake_kube.pods(selector="app=frontend")[0]["spec"]["nodeName"]
    # without a container name the API answers 400 for these
    fake_kube.add_pod("frontend-debug", node, labels={"app": "frontend"}, containers=["proxy", "web"])
    fake_kube.add_pod(
        "frontend-annotated",
        node,
        labels={"app": "frontend"},
        containers=["proxy", "web"],
        annotations={"kubectl.kubernetes.io/default-container": "web"},
    )
    data = {p["pod"]: p for p in deployments.logs(kube_env, "frontend", since_seconds=600)}
    assert (data["frontend-debug"]["container"], data["frontend-debug"]["error"]) == ("proxy", None)
    assert (data["frontend-annotated"]["container"], data["frontend-annotated"]["error"]) == ("web", None)
    assert data["frontend-annotated"]["lines"][-1].endswith("frontend-annotated starting")
    assert ("frontend-annotated", "web") in fake_kube.log_reads and (
        "frontend-debug",
        "proxy",
    ) in fake_kube.log_reads


def test_rollout_state_follows_kubectl():
    dep = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3},
    }
    assert rollout_state(dep).status == "waiting for the controller to see the change"
    dep["status"]["observedGeneration"] = 2
    assert rollout_state(dep).done
    dep["status"].update(replicas=5, updatedReplicas=3)
    assert rollout_state(dep).status == "2 old replicas pending termination"


def test_pick_revision_ignores_replicasets_of_other_deployments():
    dep = {"metadata": {"uid": "d1", "annotations": {"deployment.kubernetes.io/revision": "3"}}}

    def rs(rev, uid="d1"):
        return {
            "metadata": {
                "name": f"rs{rev}",
                "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                "ownerReferences": [{"uid": uid}],
            }
        }

    assert pick_revision(dep, [rs(1), rs(2), rs(3), rs(9, "other")], 0)["metadata"]["name"] == "rs2"
    with pytest.raises(LookupError, match="is already at revision 3, the current one"):
        pick_revision(dep, [rs(1), rs(3)], 3)
