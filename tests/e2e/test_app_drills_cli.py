"""`inv dr.drill` on an aws environment whose cluster is the in-test Kubernetes
API server: the application drills end to end through the real CLI, with the
health URL on loopback, moto (server) for the lock, STS and CloudWatch, and
IAM's policy simulation on a loopback endpoint (moto lacks it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.kube import ENV_NAME

pytestmark = pytest.mark.e2e

NODES = ["ip-10-0-1-10.ec2.internal", "ip-10-0-2-10.ec2.internal", "ip-10-0-3-10.ec2.internal"]


@pytest.fixture
def app_drills(inv_kube, fake_kube, health, iam_sim):
    """inv_kube with a health URL, a suite of the three application drills, and IAM simulated."""
    config = yaml.safe_load(inv_kube.config_file.read_text())
    config["ops"]["environments"][ENV_NAME].update(
        health_url=health.url, drill_suite=["app-pod-loss", "node-loss", "zone-loss"]
    )
    inv_kube.config_file.write_text(yaml.safe_dump(config))
    fake_kube.ready_after = 0.4  # replacement pods take a moment to pass their readiness probe
    # ...and pass it only once inv's deployments-ready probe (every 0.25 s) has read a deployment
    # short since they started: a loaded machine can stall it past a 0.4 s outage
    fake_kube.ready_when = lambda short_answers: short_answers > 0

    def run(*args, **kw):
        env = {"AWS_ENDPOINT_URL_IAM": iam_sim.url, **kw.pop("env", {})}
        return inv_kube(*args, env=env, timeout=180, **kw)

    return run


def mutations(fake):
    return [r for r in fake.requests if r[0] in ("POST", "PATCH", "DELETE")]


def test_the_suite_runs_all_three_drills_and_measures_the_application_rto(
    app_drills, fake_kube, health, iam_sim, state_dir, tmp_path
):
    before = {p["metadata"]["name"] for p in fake_kube.pods(selector="app=backend")}
    proc = app_drills(
        "dr.drill", "--env", ENV_NAME, "--yes", "--json", "--report-dir", str(tmp_path / "reports")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    rows = {r["scenario"]: r for r in result["scorecard"]}
    assert list(rows) == ["app-pod-loss", "node-loss", "zone-loss"]
    for name, row in rows.items():
        assert row["outcome"] == "met", (name, row)
        assert row["rto_target_s"] == 300 and row["rpo_s"] is None
        # measured, not assumed: replacements need their 0.4 s readiness delay
        assert 0.3 < row["rto_s"] < 30, (name, row)
        found = sorted(
            p.suffix for p in (tmp_path / "reports").glob(f"*-{ENV_NAME}-{name}-{row['report_id']}.*")
        )
        assert found == [".html", ".json", ".md"], found

    def report_of(name):
        return json.loads(
            next((tmp_path / "reports").glob(f"*-{name}-{rows[name]['report_id']}.json")).read_text()
        )

    report = report_of("app-pod-loss")
    assert len(set(report["details"]["pods"]) & before) == 2  # half of 3, rounded up
    assert report["details"]["readiness_rto_s"] == report["rto"]["achieved_s"]
    assert report["environment"] == {"name": ENV_NAME, "kind": "aws"}
    assert {p["name"] for p in report["probes"]} == {"app-health", "deployments-ready"}
    zone = report_of("zone-loss")
    assert zone["fault"]["description"].startswith("lost zone us-east-1")
    # everything the drills cordoned is schedulable again, the deployments whole
    assert not [n for n in NODES if fake_kube.get("nodes", n)["spec"].get("unschedulable")]
    assert len(fake_kube.pods(selector="app=backend")) == 3
    # the permissions were simulated for the caller: per scenario, one call per service,
    # against the resource itself where the toolkit knows its ARN (the lock table)
    # kubetest reaches its cluster through a kubeconfig context: eks:DescribeCluster is never called, nor asked for
    services = [sorted({a.split(":")[0] for a in r["ActionNames"]}) for r in iam_sim.requests]
    assert services == [["cloudwatch"], ["dynamodb"], ["sts"]] * 3, services
    lock = next(r for r in iam_sim.requests if r["ActionNames"][0].startswith("dynamodb:"))
    assert lock["ResourceArns"] == ["arn:aws:dynamodb:us-east-1:123456789012:table/spywatcher-ops-locks"]
    assert iam_sim.requests[0]["ResourceArns"] == []  # cloudwatch: simulated on "*"
    assert not [r for r in iam_sim.requests if "eks:DescribeCluster" in r["ActionNames"]]
    assert iam_sim.requests[0]["PolicySourceArn"].startswith("arn:aws:iam::")
    history = app_drills("dr.history", "--env", ENV_NAME, "--scenario", "node-loss", "--json")
    assert history.returncode == 0, history.stderr
    (group,) = json.loads(history.stdout)["groups"]
    assert group["scenario"] == "node-loss" and [r["id"] for r in group["last_runs"]] == [
        rows["node-loss"]["report_id"]
    ]


def test_scorecard_for_one_scenario(app_drills, fake_kube):
    proc = app_drills("dr.drill", "--env", ENV_NAME, "--scenario", "node-loss", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("node-loss "))
    assert " / 5.0 min" in line and "MET" in line and line.rstrip().endswith(".html")
    assert "node-loss: " in proc.stdout  # the summary line under the table


def test_a_denied_permission_fails_preflight_and_injects_nothing(app_drills, fake_kube, iam_sim):
    iam_sim.deny.add("cloudwatch:PutMetricData")
    proc = app_drills("dr.drill", "--env", ENV_NAME, "--scenario", "app-pod-loss", "--yes")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "IAM permissions: denied: cloudwatch:PutMetricData (implicitDeny)" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert mutations(fake_kube) == []


def test_a_zone_that_cannot_be_drained_fails_preflight_and_cordons_nothing(app_drills, fake_kube):
    fake_kube.add_pod("debug-shell", NODES[1])  # no controller: a drain would lose it
    proc = app_drills(
        "dr.drill", "--env", ENV_NAME, "--scenario", "zone-loss", "--param", "zone=us-east-1b", "--yes"
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert (
        "drain possible: pods without a controller would be lost: spywatcher/debug-shell"
        in proc.stdout + proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert mutations(fake_kube) == []
    assert not [n for n in NODES if fake_kube.get("nodes", n)["spec"].get("unschedulable")]


def test_a_share_that_is_not_a_number_is_exit_2(app_drills, fake_kube):
    proc = app_drills(
        "dr.drill", "--env", ENV_NAME, "--scenario", "app-pod-loss", "--param", "share=half", "--yes"
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        "error: --param share=half: not a number; use more than 0 and at most 1, e.g. share=0.5"
    )
    assert mutations(fake_kube) == []


def test_an_endpoint_without_policy_simulation_fails_preflight_cleanly(app_drills, fake_kube, inv_kube):
    # moto itself: it answers SimulatePrincipalPolicy with a body botocore cannot parse
    proc = app_drills(
        "dr.preflight",
        "--env",
        ENV_NAME,
        "--scenario",
        "node-loss",
        env={"AWS_ENDPOINT_URL_IAM": inv_kube.moto_url},
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "IAM permissions: could not simulate the caller's policy" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert mutations(fake_kube) == []


def test_the_default_aws_suite_includes_app_pod_loss_only_with_a_health_url(inv_kube, tmp_path: Path):
    proc = inv_kube("dr.scenarios", "--env", ENV_NAME)
    assert proc.returncode == 0, proc.stderr
    assert "environments: aws (default suite: aws (when health_url is set))" in proc.stdout
    proc = inv_kube(
        "dr.drill", "--env", ENV_NAME, "--dry-run", "--json"
    )  # no health_url in inv_kube's config
    # exit 3, always: kubetest has no RDS instance (moto), so db-failover's preflight fails; the
    # suite that was preflighted is still printed, which is what this test reads
    assert proc.returncode == 3, proc.stderr
    assert "not found in us-east-1" in proc.stderr
    names = json.dumps(json.loads(proc.stdout))
    assert "db-failover" in names and "app-pod-loss" not in names


def test_leftovers_of_an_earlier_drill_are_part_of_the_plan_and_wait_for_the_answer(
    app_drills, fake_kube, inv_kube
):
    import json as _json

    node = NODES[2]
    journal = inv_kube.state_dir / "journal" / f"{ENV_NAME}.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    with journal.open("a") as fh:  # what a node-loss drill killed after its cordon leaves behind
        for record in (
            {"event": "start", "op_id": "dead1", "op": "dr.drill", "env": ENV_NAME, "args": {}},
            {
                "event": "step",
                "op_id": "dead1",
                "op": "dr.drill",
                "env": ENV_NAME,
                "step": "undo",
                "status": "pending",
                "undo": {"id": "u1", "kind": "uncordon", "nodes": [node]},
            },
        ):
            fh.write(_json.dumps(record) + "\n")
    with fake_kube.lock:
        fake_kube.store["nodes"][("", node)]["spec"]["unschedulable"] = True

    proc = app_drills("dr.preflight", "--env", ENV_NAME, "--scenario", "app-pod-loss")
    assert (
        f"left by drill dead1: uncordon ['{node}'] (inv dr.drill cleans it up, after confirmation)"
        in proc.stdout
    )
    assert fake_kube.get("nodes", node)["spec"].get("unschedulable")  # a preflight changes nothing here
    assert mutations(fake_kube) == []

    proc = app_drills("dr.drill", "--env", ENV_NAME, "--scenario", "app-pod-loss", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"first, clean up after drill dead1: uncordon ['{node}']" in proc.stdout
    assert fake_kube.get("nodes", node)["spec"].get("unschedulable")  # a dry run changes nothing
    assert mutations(fake_kube) == []

    proc = app_drills("dr.drill", "--env", ENV_NAME, "--scenario", "app-pod-loss")  # no --yes, no terminal
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fake_kube.get("nodes", node)["spec"].get("unschedulable")  # refused: nothing cleaned either
    assert mutations(fake_kube) == []

    proc = app_drills("dr.drill", "--env", ENV_NAME, "--scenario", "app-pod-loss", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"cleaned up after drill dead1: uncordoned {node}" in proc.stdout
    assert not fake_kube.get("nodes", node)["spec"].get("unschedulable")


def test_production_drills_need_the_typed_name_or_the_opt_in(app_drills, fake_kube, inv_kube):
    config = yaml.safe_load(inv_kube.config_file.read_text())
    config["ops"]["environments"][ENV_NAME]["production"] = True
    inv_kube.config_file.write_text(yaml.safe_dump(config))
    proc = app_drills("dr.drill", "--env", ENV_NAME, "--scenario", "app-pod-loss", "--yes")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "SPYWATCHER_OPS_CONFIRM" in proc.stderr and mutations(fake_kube) == []
    proc = app_drills(
        "dr.drill",
        "--env",
        ENV_NAME,
        "--scenario",
        "app-pod-loss",
        "--yes",
        env={"SPYWATCHER_OPS_CONFIRM": ENV_NAME},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r for r in mutations(fake_kube) if r[0] == "DELETE"]  # the drill deleted pods
