"""The EKS steps through `inv maint.run --env staging --yes`, end to end (issue 14).

The real `inv` in a subprocess against:
- a moto server for what moto has: the RDS instance, its Secrets Manager credentials, the
  pre-maintenance snapshot, CloudWatch alarms and metrics, the DynamoDB lock table;
- a loopback fake of the EKS REST API (tests/support/eks_api_server.py: moto 5.2 has no EKS updates,
  insights or add-on versions) that advances each update over describe_update polls;
- the in-test Kubernetes API server, whose nodes EKS "replaces" during node-group updates;
- a real TLS PostgreSQL behind the RDS instance's tunnel, where the run's probes write.

The plan is a test plan (ops.maintenance.plans_dir) with the shipped plan's Kubernetes steps in
its order for staging; the shipped plan's data-tier steps need RDS and ElastiCache operations
moto lacks and are tested with Stubber in test_maint_aws.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.aws import STAGING_DB
from support.kube import write_kubeconfig
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]
CLUSTER = "spywatcher-staging-eks"
ADDONS = {
    "vpc-cni": "v1.16.0-eksbuild.1",
    "coredns": "v1.10.1-eksbuild.4",
    "kube-proxy": "v1.28.1-eksbuild.1",
}
DEFAULTS_129 = {  # the fake's default add-on versions for Kubernetes 1.29 (as EKS marks them)
    "vpc-cni": "v1.18.3-eksbuild.1",
    "coredns": "v1.11.1-eksbuild.9",
    "kube-proxy": "v1.29.7-eksbuild.5",
}


@pytest.fixture
def eks(fake_kube: Any) -> Any:
    from support.eks_api_server import FakeEks

    fake = FakeEks(CLUSTER, polls_to_finish=3)
    fake.add_nodegroup("workers")
    for name, version in ADDONS.items():
        fake.add_addon(name, version)
    fake.add_insight("Deprecated APIs removed in Kubernetes v1.29", "PASSING")
    fake.serve()
    yield fake
    fake.close()


def is_nodegroup_update(update: dict[str, Any]) -> bool:
    return any(p["type"] == "ReleaseVersion" for p in update["params"])


def replace_nodes(fake_kube: Any, new_ami: str) -> Any:
    """What EKS does during a node-group update: per poll, one new node up and one old node gone."""
    old = sorted(n["metadata"]["name"] for n in fake_kube.store["nodes"].values())

    def advance(update: dict[str, Any], poll: int) -> None:
        if not is_nodegroup_update(update):
            return
        if poll > len(old) or ("", old[poll - 1]) not in fake_kube.store["nodes"]:
            return
        with fake_kube.lock:
            fake_kube.add_node(f"ip-10-0-9-{poll}.ec2.internal", "us-east-1a", ami=new_ami)
            gone = old[poll - 1]
            for (ns, name), pod in list(fake_kube.store["pods"].items()):
                if pod["spec"].get("nodeName") == gone:
                    fake_kube._delete_pod(ns, name)
            fake_kube.store["nodes"].pop(("", gone))

    return advance


STEPS = [
    {"step": "eks-upgrade", "poll_s": 0.05, "timeout_s": 30},
    {"step": "eks-nodegroups", "poll_s": 0.05, "timeout_s": 30},
]


@pytest.fixture
def probe_table_dropped(tls_postgres: Any) -> Iterator[None]:
    """Drop the drill table the run's probes make in the session's shared `spywatcher` database
    (when it was not there before): tests that count its tables run after this one."""
    import psycopg

    from spywatcher_ops.drills.probes import DRILL_TABLE

    def exists() -> bool:
        with psycopg.connect(**tls_postgres.dsn("spywatcher"), autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (f"public.{DRILL_TABLE}",)).fetchone()
            return row is not None and row[0] is not None

    there_before = exists()
    yield
    if not there_before:
        tls_postgres.execute(f"DROP TABLE IF EXISTS public.{DRILL_TABLE}", dbname="spywatcher")


@pytest.fixture
def maint(
    moto_staging: Any, tls_postgres: Any, probe_table_dropped: None, fake_kube: Any, eks: Any, tmp_path: Path
) -> Any:
    """Runs `inv -f <config> ARGS` for staging (kind aws) with a private state folder."""
    plans = tmp_path / "plans"
    plans.mkdir()

    def write_plan(steps: list[dict[str, Any]]) -> None:
        (plans / "sunday.yaml").write_text(
            yaml.safe_dump(
                {
                    "description": "the Kubernetes part of the Sunday plan",
                    "environments": {"staging": {"window": "always", "steps": steps}},
                }
            )
        )

    write_plan(STEPS)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url)
    config = tmp_path / "ops.yaml"

    def write_config(shipped_plans: bool = False, lock_ttl_s: float = 900, **extra: Any) -> None:
        staging = {
            "db_tunnels": {STAGING_DB: f"{tls_postgres.host}:{tls_postgres.port}"},
            "kube_context": "fake",
            "kubeconfig": str(kubeconfig),
            **extra,
        }
        ops = {
            "aws": {"poll_seconds": 0.05, "lock_ttl_seconds": lock_ttl_s},
            "maintenance": {} if shipped_plans else {"plans_dir": str(plans)},
            "environments": {"staging": staging},
        }
        config.write_text(yaml.safe_dump({"ops": ops}))

    write_config()
    state = tmp_path / "state"

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "INVOKE_OPS_STATE_DIR": str(state),
            "AWS_ENDPOINT_URL": moto_staging["endpoint"],
            "AWS_ENDPOINT_URL_EKS": eks.url,  # the EKS API and the one SSM parameter it documents
            "AWS_ENDPOINT_URL_SSM": eks.url,
            "COLUMNS": "250",
        }
        return subprocess.run(
            [sys.executable, "-m", "invoke", "-f", str(config), *args],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def popen(*args: str, stdout: Any) -> subprocess.Popen[str]:
        """`inv ARGS > log 2>&1` as a scheduler runs it, left running (to be signalled)."""
        environ = {
            **os.environ,
            "INVOKE_OPS_STATE_DIR": str(state),
            "AWS_ENDPOINT_URL": moto_staging["endpoint"],
            "AWS_ENDPOINT_URL_EKS": eks.url,
            "AWS_ENDPOINT_URL_SSM": eks.url,
        }
        return subprocess.Popen(
            [sys.executable, "-m", "invoke", "-f", str(config), *args],
            cwd=ROOT,
            env=environ,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    run.popen = popen  # type: ignore[attr-defined]
    run.state = state  # type: ignore[attr-defined]
    run.write_plan = write_plan  # type: ignore[attr-defined]
    run.write_config = write_config  # type: ignore[attr-defined]
    return run


def journal(state: Path) -> list[dict[str, Any]]:
    from spywatcher_ops.core.journal import read

    return read(state / "journal" / "staging.jsonl")


def step_records(state: Path) -> dict[str, dict[str, Any]]:
    """The last record of each maintenance step of the run, by step name."""
    out: dict[str, dict[str, Any]] = {}
    for r in journal(state):
        if r.get("step") == "maint-step":
            out[r["step_name"]] = r
    return out


def eks_updates(eks: Any) -> list[str]:
    """The EKS update calls (POSTs under /clusters; SSM's POST / and the insights query are reads)."""
    return [
        p for m, p in eks.calls if m == "POST" and p.startswith("/clusters/") and not p.endswith("insights")
    ]


def test_run_upgrades_the_control_plane_one_minor_then_addons_then_nodegroups(maint, eks, fake_kube):
    eks.on_advance = replace_nodes(fake_kube, "ami-0new")
    done = maint("maint.run", "--env", "staging", "--yes", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert report["state"] == "complete"
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("eks-upgrade", "ok"),
        ("eks-nodegroups", "ok"),
    ]
    # what EKS holds now: one minor version up, add-ons at 1.29's defaults, the node group at 1.29
    assert eks.cluster["version"] == "1.29"
    assert {a: eks.addons[a]["addonVersion"] for a in eks.addons} == DEFAULTS_129
    assert eks.nodegroups["workers"]["version"] == "1.29"
    # in that order: control plane, the three add-ons, then the node group
    updates = eks_updates(eks)
    assert updates[0] == f"/clusters/{CLUSTER}/updates"
    assert all("/addons/" in p for p in updates[1:4]) and len(updates) == 5
    assert updates[4] == f"/clusters/{CLUSTER}/node-groups/workers/update-version"
    # the journal: the run's pre-checks, the snapshot, then each step with its own checks and result
    records = journal(maint.state)
    kinds = [r.get("step") for r in records if r.get("step")]
    assert kinds.index("prechecks") < kinds.index("snapshot") < kinds.index("maint-step")
    steps = step_records(maint.state)
    up = steps["eks-upgrade"]
    assert [c["name"] for c in up["prechecks"]] == [
        "one minor version",
        "upgrade insights",
        "removed APIs",
        "node groups",
        "add-ons",
    ]
    assert all(c["status"] == "ok" for c in up["prechecks"] + up["postchecks"])
    assert up["details"]["control_plane"]["from"] == "1.28" and up["details"]["control_plane"]["to"] == "1.29"
    assert {a["name"]: a["to"] for a in up["details"]["addons"]} == DEFAULTS_129
    assert [(n["nodegroup"], n["to"]) for n in up["details"]["nodegroups"]] == [("workers", "1.29")]
    shown = [e["message"] for e in up["events"] if e["code"] == "nodes"]
    assert shown and "nodes replaced 3/3" in shown[-1]
    # the nodes EKS replaced are the cluster's nodes now
    assert {
        n["metadata"]["labels"]["eks.amazonaws.com/nodegroup-image"]
        for n in fake_kube.store["nodes"].values()
    } == {"ami-0new"}
    # eks-nodegroups after it: the node group is on 1.29's newest release already, nothing to do
    ng = steps["eks-nodegroups"]
    assert ng["status"] == "ok" and ng["details"] == {"updated": []}
    assert "workers: 1.29 release 1.29.10-20241121 (newest 1.29.10-20241121)" in ng["prechecks"][0]["detail"]
    # the run's report on disk says the same
    markdown = Path(report["reports"]["markdown"]).read_text()
    assert "| 1 | eks-upgrade | ok |" in markdown and "| 2 | eks-nodegroups | ok |" in markdown
    assert "control plane 1.28 -> 1.29: update " in markdown and "nodes replaced 3/3" in markdown


def test_an_addon_with_no_version_for_the_target_stops_the_run_before_anything_changes(maint, eks):
    del eks.addon_versions["coredns"]["1.29"]
    done = maint("maint.run", "--env", "staging", "--yes")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "add-ons: no version of coredns for Kubernetes 1.29" in done.stdout + done.stderr
    # nothing changed: no update was started, the cluster, its add-ons and node groups as they were
    assert eks_updates(eks) == []
    assert eks.cluster["version"] == "1.28" and eks.nodegroups["workers"]["version"] == "1.28"
    assert {a: eks.addons[a]["addonVersion"] for a in eks.addons} == ADDONS
    steps = step_records(maint.state)
    assert steps["eks-upgrade"]["status"] == "failed"
    assert steps["eks-upgrade"]["details"] == {} and steps["eks-upgrade"]["rollback"] is None
    assert steps["eks-nodegroups"]["status"] == "not-started"


def test_a_nodegroup_update_that_times_out_stops_the_run_saying_what_was_left(maint, eks):
    maint.write_plan([{"step": "eks-upgrade", "poll_s": 0.05, "timeout_s": 2}, STEPS[1]])

    def stick(update: dict[str, Any], poll: int) -> None:  # the control plane's update goes through
        if is_nodegroup_update(update):
            eks.stuck_updates.add("VersionUpdate")

    eks.on_advance = stick
    done = maint("maint.run", "--env", "staging", "--yes")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    steps = step_records(maint.state)
    up = steps["eks-upgrade"]
    assert up["status"] in ("failed", "rolled-back")
    assert f"aws eks describe-update --name {CLUSTER} --update-id" in up["error"]
    assert "cannot be downgraded" in up["rollback"]["detail"]  # what is left: said, not undone
    assert eks.cluster["version"] == "1.29"  # the control plane went up before the node group stuck
    assert steps["eks-nodegroups"]["status"] == "not-started"


NODE = "ip-10-0-1-10.ec2.internal"  # a node of the in-test cluster: the host worker-1 is it


def test_the_shipped_order_hosts_then_control_plane_addons_nodegroups(maint, eks, fake_kube, fleet):
    """The staging part 2 of maintenance/sunday.yaml: os-patch on a real sshd host that is a node
    (drained, patched, rebooted, uncordoned), then eks-upgrade, then eks-nodegroups."""
    shipped = yaml.safe_load((ROOT / "maintenance" / "sunday.yaml").read_text())
    order = [s["step"] for s in shipped["environments"]["staging"]["steps"]]
    assert order[-3:] == ["os-patch", "eks-upgrade", "eks-nodegroups"]
    host = fleet.add("worker-1")
    maint.write_config(ssh=fleet.ssh_config(**{"worker-1": {"kubernetes_node": True, "node_name": NODE}}))
    maint.write_plan([{"step": "os-patch", "reboot_timeout_s": 30, "drain_timeout_s": 20}, *STEPS])
    eks.on_advance = replace_nodes(fake_kube, "ami-0new")
    done = maint("maint.run", "--env", "staging", "--yes", "--json", timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("os-patch", "ok"),
        ("eks-upgrade", "ok"),
        ("eks-nodegroups", "ok"),
    ]
    patched = step_records(maint.state)["os-patch"]["details"]["hosts"]
    assert [(h["host"], h["status"], h["rebooted"]) for h in patched] == [("worker-1", "ok", True)]
    assert host.boots() == 1 and host.state()["installed"]  # the security updates, then the reboot
    # hosts first: the EKS updates started after the host was back and its node uncordoned
    starts = [
        r["step_name"]
        for r in journal(maint.state)
        if r.get("step") == "maint-step" and r["status"] == "started"
    ]
    assert starts == ["os-patch", "eks-upgrade", "eks-nodegroups"]
    assert eks.cluster["version"] == "1.29" and eks.nodegroups["workers"]["version"] == "1.29"
    assert not any(n["spec"].get("unschedulable") for n in fake_kube.store["nodes"].values())


def test_inv_maint_plan_shows_the_shipped_part_2_steps_with_their_prechecks(maint, eks):
    maint.write_config(shipped_plans=True)
    done = maint("maint.plan", "--env", "staging")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(maint("maint.plan", "--env", "staging", "--json").stdout)
    steps = {s["step"]: s for s in doc["steps"]}
    assert list(steps)[-3:] == ["os-patch", "eks-upgrade", "eks-nodegroups"] and doc["not_started"] == []
    assert [(c["name"], c["status"]) for c in steps["eks-upgrade"]["prechecks"]] == [
        ("one minor version", "ok"),
        ("upgrade insights", "ok"),
        ("removed APIs", "ok"),
        ("node groups", "ok"),
        ("add-ons", "ok"),
    ]
    assert steps["os-patch"]["prechecks"][0]["status"] == "skip"
    assert "no SSH hosts configured" in steps["os-patch"]["prechecks"][0]["detail"]
    for name in ("os-patch", "eks-upgrade", "eks-nodegroups"):
        assert name in done.stdout
    assert "1.28 -> 1.29" in done.stdout and "nothing to patch" in done.stdout
    assert eks_updates(eks) == []  # a plan changes nothing


def test_no_ssh_hosts_skips_os_patch_visibly_and_the_eks_steps_still_run(maint, eks, fake_kube):
    """The shipped plan runs os-patch on staging/production, and an environment may list no SSH
    hosts: the step is skipped ("nothing to patch"), said in the plan, the run's log and the report,
    and with max_errors 0 the Kubernetes steps after it still run (they used to be stopped weekly)."""
    maint.write_plan([{"step": "os-patch"}, *STEPS])
    eks.on_advance = replace_nodes(fake_kube, "ami-0new")
    plan = maint("maint.plan", "--env", "staging")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert "SKIP" in plan.stdout and "no SSH hosts configured" in plan.stdout
    done = maint("maint.run", "--env", "staging", "--yes")  # not a terminal: as a scheduler keeps it
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "os-patch" in log and "skipped" in log and "nothing to patch" in log
    # each step's start and end is a line of the log, so a run that hangs shows where
    for line in ("step 1. os-patch started", "step 1. os-patch: skipped", "step 2. eks-upgrade: ok"):
        assert line in log, log[-3000:]
    steps = step_records(maint.state)
    assert steps["os-patch"]["status"] == "skipped"
    assert "no SSH hosts configured" in steps["os-patch"]["reason"]
    assert steps["eks-upgrade"]["status"] == "ok" and steps["eks-nodegroups"]["status"] == "ok"
    report = maint("maint.report", "--env", "staging", "latest")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert "skipped" in report.stdout and "nothing to patch" in report.stdout
    # a skipped step ran nothing: no history line (no duration to learn from)
    history = (maint.state / "maintenance" / "history.jsonl").read_text()
    assert '"os-patch"' not in history


def test_killed_mid_reboot_of_a_node_then_resume_uncordons_it(maint, eks, fake_kube, fleet):
    """SIGKILL while a node's host reboots (drained, cordoned by os-patch), then --resume: the
    resumed step finds the node already cordoned. It was cordoned by os-patch (the mark on the
    node says so), so it is uncordoned at the end, not left out of scheduling for good."""
    import signal
    import time

    host = fleet.add("worker-1", down_s=1.0)
    ssh = fleet.ssh_config(**{"worker-1": {"kubernetes_node": True, "node_name": NODE}})
    maint.write_config(ssh=ssh)  # lock_ttl_seconds 900: the killed run's lock is taken over, not waited out
    maint.write_plan([{"step": "os-patch", "reboot_timeout_s": 30, "drain_timeout_s": 20}])
    log = maint.state.parent / "run.log"
    with open(log, "w") as out:
        proc = maint.popen("maint.run", "--env", "staging", "--yes", stdout=out)
        deadline = time.monotonic() + 90
        while "rebooting" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)  # the reboot has started: the host is going down
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert fake_kube.get("nodes", NODE)["spec"].get("unschedulable")  # cordoned, the run killed
    status = maint("maint.status", "--env", "staging")
    run_id = status.stdout.split("--resume ")[1].split()[0]
    # the scheduler's log of the killed run names the run, so on-call can resume it from the log alone
    assert f"run {run_id} started" in log.read_text(), log.read_text()[-3000:]
    time.sleep(1.5)  # the host is back from its reboot
    # the killed run's DynamoDB lock (15 min to go) names this host and a pid that is gone: taken over
    done = maint("maint.run", "--env", "staging", "--yes", "--resume", run_id, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    taken = [line for line in done.stderr.splitlines() if "taken over from dead holder" in line]
    assert len(taken) == 1 and f"pid {proc.pid} " in taken[0], done.stderr[-3000:]
    assert step_records(maint.state)["os-patch"]["status"] == "ok"
    assert not fake_kube.get("nodes", NODE)["spec"].get("unschedulable"), "left cordoned after --resume"
    assert host.boots() >= 1


def test_ctrl_c_while_a_node_reboots_stops_now_and_leaves_the_node_cordoned_saying_so(
    maint, eks, fake_kube, fleet
):
    """Ctrl-C while os-patch waits for a node's host to come back from its reboot: the run stops
    at once (not when the host is back, up to reboot_timeout_s later), the node stays cordoned
    (its host is down: its pods must not return yet) and the last line says so with the command;
    a --resume once the host is back finishes and uncordons it."""
    import signal
    import time

    host = fleet.add("worker-1", down_s=15.0)
    ssh = fleet.ssh_config(**{"worker-1": {"kubernetes_node": True, "node_name": NODE}})
    maint.write_config(ssh=ssh)
    maint.write_plan([{"step": "os-patch", "reboot_timeout_s": 60, "drain_timeout_s": 20}])
    log = maint.state.parent / "run.log"
    with open(log, "w") as out:
        proc = maint.popen("maint.run", "--env", "staging", "--yes", stdout=out)
        deadline = time.monotonic() + 90
        while (
            "waiting for SSH" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()[-3000:]
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
    text = log.read_text()
    assert took < 8, (took, text[-3000:])  # the host is down for 15 s: not waited for
    # patched and rebooting: not "failed and rolled back" (exit 4), the packages stay installed
    assert code == 1, text[-3000:]
    assert fake_kube.get("nodes", NODE)["spec"].get("unschedulable")  # its host is still down
    last = text.strip().splitlines()[-1]
    assert f"node {NODE} stays cordoned" in last and f"inv cluster.uncordon {NODE} --env staging" in last, (
        last
    )
    assert "the current step was rolled back" not in text  # the packages are in, the host rebooted
    assert "its rollback: partial: packages are not downgraded: worker-1 (" in last, last
    import re

    run_id = re.findall(r"inv maint.run --env staging --resume ([0-9a-f]+)", last)[0]
    deadline = time.monotonic() + 40
    while not host.boots() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    done = maint("maint.run", "--env", "staging", "--yes", "--resume", run_id, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not fake_kube.get("nodes", NODE)["spec"].get("unschedulable")


def test_ctrl_c_while_a_node_drains_before_any_patch_is_rolled_back_exit_4(maint, eks, fake_kube, fleet):
    """Ctrl-C while os-patch drains the first node, before any package command: nothing was changed
    on any host and the node is uncordoned again, so the run is 'failed and rolled back' (exit 4)."""
    import signal
    import time

    host = fleet.add("worker-1")
    ssh = fleet.ssh_config(**{"worker-1": {"kubernetes_node": True, "node_name": NODE}})
    maint.write_config(ssh=ssh)
    maint.write_plan([{"step": "os-patch", "reboot_timeout_s": 30, "drain_timeout_s": 60}])
    # a second backend pod on the node and a budget that allows one disruption (the pre-check
    # passes); the replacement never becomes ready, so the second eviction waits: the drain stalls
    backend = next(name for (_, name) in fake_kube.store["deployments"] if name.endswith("-backend"))
    fake_kube.add_replica_on(backend, NODE)
    time.sleep(0.5)  # the new pod passes its readiness probe
    with fake_kube.lock:
        pdb = next(p for (_, name), p in fake_kube.store["pdbs"].items() if "backend" in name)
        pdb["spec"]["minAvailable"] = 3
    fake_kube.ready_after = 3600
    log = maint.state.parent / "run.log"
    with open(log, "w") as out:
        proc = maint.popen("maint.run", "--env", "staging", "--yes", stdout=out)
        deadline = time.monotonic() + 90
        while (
            f"node {NODE} cordoned" not in log.read_text()
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(1.0)  # in the drain's wait for the blocked eviction
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 4, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert "its rollback: no host was patched" in last and "packages are not downgraded" not in last, last
    assert not fake_kube.get("nodes", NODE)["spec"].get("unschedulable"), "left cordoned"
    assert host.state()["installed"] == [] and host.boots() == 0
