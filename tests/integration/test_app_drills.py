"""Application drills (app-pod-loss, node-loss, zone-loss) end to end on the
in-test Kubernetes API server, with a loopback health URL that follows the
backend's readiness, through the drills engine (runner, preflight, cleanup)."""

from __future__ import annotations

import pytest
from support.kube import ENV_NAME

from spywatcher_ops.core.errors import BadInput, Refused
from spywatcher_ops.drills.measure import Stability
from spywatcher_ops.drills.probes import Cadence
from spywatcher_ops.drills.reporting import report
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios import application as app_scenarios
from spywatcher_ops.drills.scenarios import registry

NODES = ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal", "ip-10-0-3-10.ec2.internal"]


def options(**params):
    return DrillOptions(
        timeout_s=20,
        # An outage here is a 503 or a short deployment, answered at once. A slow answer is the
        # loaded test machine stalling this process (its probes and its servers together), which
        # the drill would count as impact at the default slow_s of 0.5 s: not what these tests test.
        cadence=Cadence(interval=0.05, retry_interval=0.02, op_timeout=5.0),
        stability=Stability(stable_count=3, slow_s=5.0),
        steady_count=2,
        steady_timeout_s=5,
        params=params,
    )


@pytest.fixture
def drill_env(kube_config, kube_aws, health, fake_kube):
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    kube_config.ops.environments[ENV_NAME]["health_url"] = health.url
    fake_kube.ready_after = 0.4  # replacement pods take a moment to pass their readiness probe
    # ...and pass it only once the deployments-ready probe has read a deployment short: it polls
    # every 0.25 s, and a loaded machine can stall it past a 0.4 s outage, which it then never saw
    fake_kube.ready_when = lambda short_answers: short_answers > 0
    return build(load(kube_config), ENV_NAME)


def allow_iam(env, scenario):
    """The engine's IAM policy simulation (moto lacks iam:SimulatePrincipalPolicy): allow everything asked."""
    from support.aws import stub_iam_simulation

    from spywatcher_ops.drills.aws import required_actions

    actions = required_actions(env, scenario)
    # the kubetest environment reaches its cluster through a kubeconfig context: no EKS call to allow
    assert "eks:DescribeCluster" not in actions and "cloudwatch:PutMetricData" in actions
    return stub_iam_simulation(env, scenario)


def run(env, name, **params):
    """What `inv dr.drill --scenario NAME` does: preflight, run, report (suite.py)."""
    from spywatcher_ops.drills import suite

    scenario = registry.get(name, env.kind)
    opts = options(**params)
    allow_iam(env, scenario)
    (checked,) = suite.preflight_all(env, [scenario], opts)
    assert checked.ok, [c.to_dict() for c in checked.checks if not c.ok]
    result = suite.run_suite(env, [checked], opts, report_dir=env.settings.state_dir / "reports")
    (row,) = result.rows
    records = suite.find_drill(env.settings.state_dir, row.report_id)
    return row, records, checked.checks


def measured(records):
    return next(r for r in records if r.get("step") == "measured")


def cordoned(fake):
    return [n for n in NODES if fake.get("nodes", n)["spec"].get("unschedulable")]


def test_scenarios_are_registered_for_aws_only():
    scenarios = registry.load()
    for name in ("app-pod-loss", "node-loss", "zone-loss"):
        assert scenarios[name].kinds == ("aws",) and scenarios[name].part == "application"
    with pytest.raises(BadInput, match="--scenario node-loss: the sandbox has no cluster"):
        registry.get("node-loss", "sandbox")


def test_app_pod_loss_measures_readiness_while_the_health_url_stays_up(drill_env, fake_kube, health):
    before = {p["metadata"]["name"] for p in fake_kube.pods(selector="app=backend")}
    row, records, _ = run(drill_env, "app-pod-loss")
    assert row.outcome == "met", row.summary
    rep = report.build(records)
    d = rep["details"]
    assert len(set(d["pods"]) & before) == 2  # half of 3, rounded up
    assert d["health_impacted"] is False and d["health_rto_s"] == 0.0
    assert 0.3 < d["readiness_rto_s"] < 5  # the replacements' readiness probe delay, measured
    assert rep["rto"]["achieved_s"] == d["readiness_rto_s"] and rep["rto"]["target_s"] == 300
    assert rep["rpo"]["achieved_s"] is None and rep["rpo"]["verdict"] == "n/a"
    kinds = [e["kind"] for e in rep["timeline"]]
    assert kinds[0] == "fault" and "recovered" in kinds
    assert rep["fault"]["description"] == "deleted 2 of 3 backend pods"
    assert all(c["status"] == "ok" for c in rep["recheck"])


def test_losing_every_backend_pod_is_an_outage_on_the_health_url(drill_env, fake_kube, health):
    # the outage lasts until both probes' targets answered it (the health URL a 503)
    fake_kube.ready_when = lambda short_answers: short_answers > 0 and 503 in health.answers
    row, records, _ = run(drill_env, "app-pod-loss", share=1)
    rep = report.build(records)
    assert row.outcome == "met"
    assert rep["details"]["health_impacted"] is True and 0.3 < rep["details"]["health_rto_s"] < 5
    assert 503 in health.answers
    assert rep["rto"]["achieved_s"] >= rep["details"]["health_rto_s"]
    assert {p["name"]: p["impacted"] for p in rep["probes"]} == {
        "app-health": True,
        "deployments-ready": True,
    }


def test_node_loss_drains_the_busiest_node_and_uncordons_it(drill_env, fake_kube):
    row, records, checks = run(drill_env, "node-loss")
    assert row.outcome == "met", row.summary
    rep = report.build(records)
    assert rep["details"]["nodes"] == [NODES[0]] and rep["details"]["evicted"]
    assert 0 < rep["rto"]["achieved_s"] < 10
    assert cordoned(fake_kube) == []  # the rollback uncordoned it
    steps = [r.get("step") for r in records]
    assert "undo" in steps and "undone" in steps
    statuses = {c.name: c.status for c in checks}
    assert statuses["another schedulable node"] == "ok" and statuses["IAM permissions"] == "ok"
    assert statuses["frontend not-ready toleration"] == "warn"  # predicted: the default 300 s


def test_zone_loss_cordons_every_node_of_the_zone(drill_env, fake_kube):
    fake_kube.add_node("ip-10-0-4-10.ec2.internal", "us-east-1b")
    row, records, _ = run(drill_env, "zone-loss", zone="us-east-1b")
    assert row.outcome == "met", row.summary
    rep = report.build(records)
    assert sorted(rep["details"]["nodes"]) == [NODES[1], "ip-10-0-4-10.ec2.internal"]
    assert rep["fault"]["description"] == "lost zone us-east-1b: cordoned and drained 2 node(s)"
    assert not [p for p in fake_kube.pods() if p["spec"]["nodeName"] in rep["details"]["nodes"]]
    assert cordoned(fake_kube) == [] and not fake_kube.get("nodes", "ip-10-0-4-10.ec2.internal")["spec"].get(
        "unschedulable"
    )


def test_preflight_predicts_misses(kube_config, kube_aws):
    """One replica, no PDB, no readiness probe, default toleration, one zone: each is named."""
    from support.kube_api_server import FakeKube, HealthServer, wait_ready

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load
    from spywatcher_ops.drills.scenario import Check

    fake = FakeKube(ready_after=0.05)
    fake.add_node("ip-a", "us-east-1a")
    fake.add_node("ip-b", "us-east-1a")
    fake.add_deployment(f"spywatcher-{ENV_NAME}-backend", replicas=1, app="backend", readiness_probe=False)
    fake.add_deployment(f"spywatcher-{ENV_NAME}-frontend", replicas=2, app="frontend")
    fake.serve()
    health = HealthServer(fake)
    health.serve()
    try:
        wait_ready(fake)
        from support.kube import write_kubeconfig

        write_kubeconfig(
            __import__("pathlib").Path(kube_config.ops.environments[ENV_NAME]["kubeconfig"]), fake.url
        )
        kube_config.ops.environments[ENV_NAME]["health_url"] = health.url
        env = build(load(kube_config), ENV_NAME)
        checks: dict[str, Check] = {
            c.name: c for c in registry.get("zone-loss", "aws").checks(env, options())
        }
    finally:
        health.close()
        fake.close()
    assert checks["backend replicas"].status == "warn" and "1 replica" in checks["backend replicas"].detail
    assert (
        checks["backend zone spread"].status == "warn"
        and "us-east-1a" in checks["backend zone spread"].detail
    )
    assert checks["backend PodDisruptionBudget"].status == "warn"
    assert checks["backend readiness probe"].status == "warn"
    tol = checks["backend not-ready toleration"]
    assert (
        tol.status == "warn"
        and "300 s (the Kubernetes default)" in tol.detail
        and "300 s application RTO" in tol.detail
    )
    assert checks["another zone"].status == "failed"  # both nodes in one zone: nothing would be left
    assert checks["health URL"].status == "ok"


def test_preflight_without_health_url_fails(kube_env, fake_kube):
    checks = {c.name: c for c in app_scenarios.NodeLoss().checks(kube_env, options())}
    assert checks["health URL"].status == "failed" and "health_url is not set" in checks["health URL"].detail
    assert checks["backend not-ready toleration"].status == "ok"  # the fixture's backend tolerates 30 s
    assert checks["frontend not-ready toleration"].status == "warn"


def test_a_killed_node_drill_is_uncordoned_by_the_next_cleanup(drill_env, fake_kube):
    from spywatcher_ops.drills.cleanup import clean_up

    journal = drill_env.journal
    journal.write({"event": "start", "op_id": "dead1", "op": "dr.drill", "env": ENV_NAME, "args": {}})
    journal.write(
        {
            "event": "step",
            "op_id": "dead1",
            "op": "dr.drill",
            "env": ENV_NAME,
            "step": "undo",
            "status": "pending",
            "undo": {"id": "u1", "kind": "uncordon", "nodes": [NODES[1]]},
        }
    )
    with fake_kube.lock:
        fake_kube.store["nodes"][("", NODES[1])]["spec"]["unschedulable"] = True
    done = clean_up(drill_env)
    (action,) = done[0]["actions"]
    assert (action["kind"], action["status"], action["detail"]) == (
        "uncordon",
        "ok",
        f"uncordoned {NODES[1]}",
    )
    assert cordoned(fake_kube) == []


def test_plans_show_the_calls(drill_env, fake_kube):
    plan = registry.get("node-loss", "aws").plan(drill_env, options())
    actions = [s.action for s in plan.steps]
    assert actions[0] == "CoreV1Api.patch_node" and "CoreV1Api.create_namespaced_pod_eviction" in actions
    plan = registry.get("app-pod-loss", "aws").plan(drill_env, options(share=1))
    assert [s.action for s in plan.steps] == ["CoreV1Api.delete_namespaced_pod"] * 3
    with pytest.raises(BadInput, match="--param share=2: out of range"):
        registry.get("app-pod-loss", "aws").plan(drill_env, options(share=2))


def test_steady_state_recheck(drill_env, fake_kube):
    scenario = registry.get("node-loss", "aws")
    assert all(c.ok for c in scenario.recheck(drill_env))
    with fake_kube.lock:
        for (ns, _name), pod in list(fake_kube.store["pods"].items()):
            if ns == "spywatcher" and pod["metadata"]["labels"].get("app") == "backend":
                fake_kube.ready_at[pod["metadata"]["uid"]] = float("inf")  # readiness probes start failing
    checks = {c.name: c for c in scenario.recheck(drill_env)}
    assert checks["health URL"].status == "failed" and "503" in checks["health URL"].detail
    assert checks["backend ready"].status == "failed" and checks["frontend ready"].ok


def mutations(fake):
    return [r for r in fake.requests if r[0] in ("POST", "PATCH", "DELETE")]


def test_params_are_declared_and_share_is_checked_before_anything_runs():
    scenarios = registry.load()
    assert set(scenarios["app-pod-loss"].params) == {"share"}
    assert set(scenarios["node-loss"].params) == {"node"}
    assert set(scenarios["zone-loss"].params) == {"zone"}
    pod_loss = app_scenarios.AppPodLoss()
    with pytest.raises(BadInput) as err:
        pod_loss.check_params({"share": "half"})
    assert str(err.value) == "--param share=half: not a number; use more than 0 and at most 1, e.g. share=0.5"
    for bad in ("0", "1.5", "nan", "-0.2"):
        with pytest.raises(
            BadInput, match=f"--param share={bad}: out of range; use more than 0 and at most 1"
        ):
            pod_loss.check_params({"share": bad})
    pod_loss.check_params({"share": "0.25"})
    pod_loss.check_params({"zone": "us-east-1a"})  # not its key: the caller checks unknown keys


def test_iam_actions_depend_on_how_the_cluster_is_reached(kube_config, kube_aws):
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load
    from spywatcher_ops.drills.aws import required_actions

    scenario = registry.get("node-loss", "aws")
    through_kubeconfig = build(load(kube_config), ENV_NAME)
    assert scenario.aws_actions_for(through_kubeconfig) == ()
    actions = required_actions(through_kubeconfig, scenario)
    assert "eks:DescribeCluster" not in actions and "cloudwatch:PutMetricData" in actions
    del kube_config.ops.environments[ENV_NAME][
        "kube_context"
    ]  # the EKS way: DescribeCluster for endpoint and CA
    through_eks = build(load(kube_config), ENV_NAME)
    assert scenario.aws_actions_for(through_eks) == ("eks:DescribeCluster",)
    assert "eks:DescribeCluster" in required_actions(through_eks, scenario)


def _orphan(fake):
    fake.add_pod("debug-shell", NODES[1])  # `kubectl run`: no controller would re-create it


def _strict_pdb(fake):
    with fake.lock:  # needs all 3 backend pods healthy: no eviction can ever be allowed
        fake.store["pdbs"][("spywatcher", f"spywatcher-{ENV_NAME}-backend-pdb")]["spec"] = {
            "selector": {"matchLabels": {"app": "backend"}},
            "maxUnavailable": 0,
        }


@pytest.mark.parametrize(
    "blocker,expected",
    [
        (_orphan, "pods without a controller would be lost: spywatcher/debug-shell"),
        (
            _strict_pdb,
            f"PodDisruptionBudget spywatcher/spywatcher-{ENV_NAME}-backend-pdb needs all 3 pods healthy",
        ),
    ],
)
@pytest.mark.parametrize(
    "name,param", [("zone-loss", {"zone": "us-east-1b"}), ("node-loss", {"node": NODES[1]})]
)
def test_a_drain_that_could_never_finish_fails_preflight_and_touches_nothing(
    drill_env, fake_kube, blocker, expected, name, param
):
    from spywatcher_ops.drills import suite

    blocker(fake_kube)
    scenario = registry.get(name, "aws")
    opts = options(**param)
    allow_iam(drill_env, scenario)
    (checked,) = suite.preflight_all(drill_env, [scenario], opts)
    assert not checked.ok
    failed = [c for c in checked.checks if c.status == "failed"]
    assert [c.name for c in failed] == ["drain possible"] and failed[0].detail.startswith(expected)
    assert isinstance(suite.not_ready([checked]), Exception)  # dr.preflight / dr.drill: exit 3
    with pytest.raises(Refused, match=expected):  # and the plan refuses it, like cluster.drain
        scenario.plan(drill_env, opts)
    assert cordoned(fake_kube) == [] and mutations(fake_kube) == []


def test_a_pod_scheduled_just_before_the_cordon_is_evicted_too(drill_env, fake_kube):
    late = []
    # the scheduler places one more backend pod on the node right before the drill cordons it
    fake_kube.before["patch_node"] = lambda: late.append(
        fake_kube.add_replica_on(f"spywatcher-{ENV_NAME}-backend", NODES[1])
    )
    row, records, _ = run(drill_env, "node-loss", node=NODES[1])
    assert row.outcome == "met", row.summary
    assert late and late[0]["metadata"]["name"] in fake_kube.evictions
    assert not [p for p in fake_kube.pods() if p["spec"]["nodeName"] == NODES[1]]
    assert cordoned(fake_kube) == []


def test_the_cleanup_uncordons_only_what_the_drill_cordoned(drill_env, fake_kube):
    from spywatcher_ops.core.ports import CORDONED_BY
    from spywatcher_ops.drills.cleanup import clean_up

    journal = drill_env.journal
    journal.write({"event": "start", "op_id": "dead2", "op": "dr.drill", "env": ENV_NAME, "args": {}})
    journal.write(
        {
            "event": "step",
            "op_id": "dead2",
            "op": "dr.drill",
            "env": ENV_NAME,
            "step": "undo",
            "status": "pending",
            "undo": {
                "id": "u1",
                "kind": "uncordon",
                "by": "dead2",
                "nodes": [NODES[0], NODES[1], "ip-10-0-9-99.ec2.internal"],
            },
        }
    )
    with fake_kube.lock:
        for node, mark in ((NODES[0], "dead2"), (NODES[1], "maintenance-ticket-7")):
            obj = fake_kube.store["nodes"][("", node)]
            obj["spec"]["unschedulable"] = True
            obj["metadata"].setdefault("annotations", {})[CORDONED_BY] = mark
    (done,) = clean_up(drill_env)
    (action,) = done["actions"]
    assert action["status"] == "ok", action
    assert action["detail"] == (
        f"uncordoned {NODES[0]}; ip-10-0-9-99.ec2.internal no longer exist(s); "
        f"left {NODES[1]} alone (not cordoned by this drill, or since by someone else)"
    )
    assert cordoned(fake_kube) == [NODES[1]]  # someone else's cordon stands
    assert CORDONED_BY not in (fake_kube.get("nodes", NODES[0])["metadata"].get("annotations") or {})
    assert clean_up(drill_env) == []  # settled: not retried


def test_a_drill_marks_the_nodes_it_cordons(drill_env, fake_kube):
    from spywatcher_ops.core.ports import CORDONED_BY

    row, records, _ = run(drill_env, "node-loss")
    assert row.outcome == "met", row.summary
    patches = [r for r in fake_kube.requests if r[0] == "PATCH" and "/nodes/" in r[1]]
    assert patches, fake_kube.requests
    op_id = records[0]["op_id"]
    undo = next(r["undo"] for r in records if r.get("step") == "undo" and r["undo"]["kind"] == "uncordon")
    assert undo["by"] == op_id
    assert not [
        n for n in NODES if (fake_kube.get("nodes", n)["metadata"].get("annotations") or {}).get(CORDONED_BY)
    ]


def test_an_uncordon_and_cordon_by_anyone_else_clears_the_drills_mark(drill_env, fake_kube):
    """Drill dead3 is killed; the on-call uncordons the node, later drains it for maintenance:
    the next cleanup must not uncordon it in the middle of that."""
    from spywatcher_ops.core.ports import CORDONED_BY
    from spywatcher_ops.drills.cleanup import clean_up

    kube = drill_env.cluster.kube
    node = NODES[2]
    journal = drill_env.journal
    journal.write({"event": "start", "op_id": "dead3", "op": "dr.drill", "env": ENV_NAME, "args": {}})
    journal.write(
        {
            "event": "step",
            "op_id": "dead3",
            "op": "dr.drill",
            "env": ENV_NAME,
            "step": "undo",
            "status": "pending",
            "undo": {"id": "u1", "kind": "uncordon", "by": "dead3", "nodes": [node]},
        }
    )
    kube.execute(kube.step_cordon(node, by="dead3"))  # what the drill did
    assert fake_kube.get("nodes", node)["metadata"]["annotations"][CORDONED_BY] == "dead3"
    kube.execute(kube.step_cordon(node, cordon=False))  # inv cluster.uncordon
    kube.execute(kube.step_cordon(node))  # inv cluster.drain, later
    assert CORDONED_BY not in (fake_kube.get("nodes", node)["metadata"].get("annotations") or {})
    (done,) = clean_up(drill_env)
    assert "left" in done["actions"][0]["detail"] and cordoned(fake_kube) == [node]
