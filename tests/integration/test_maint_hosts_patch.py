"""The os-patch maintenance step on real sshd test hosts (tests/support/sshd_host.py), with
cordon / drain / uncordon on the in-test Kubernetes API server for hosts that are nodes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.hosts import hosts_env
from support.kube import kube_env_spec, write_kubeconfig

from spywatcher_ops.maintenance.os_patch import OS_PATCH
from spywatcher_ops.maintenance.steps import STEPS, StepContext

NODE = "ip-10-0-1-10.ec2.internal"
BACKEND = "spywatcher-hosttest-backend"


def ctx_for(env: Any, max_errors: int = 0, **settings: Any) -> StepContext:
    values = {k: s.default for k, s in STEPS["os-patch"].settings.items()}
    values.update({"reboot_timeout_s": 20, "drain_timeout_s": 10, **settings})
    events: list[tuple[str, str]] = []
    ctx = StepContext(
        env=env,
        settings=values,
        progress=lambda _s: None,
        note=lambda code, msg, at=None: events.append((code, msg)),
        max_errors=max_errors,
    )
    ctx.state["events"] = events
    return ctx


def run_step(ctx: StepContext) -> tuple[list[Any], dict[str, Any] | None, list[Any]]:
    pre = OS_PATCH.precheck(ctx)
    if not all(c.ok for c in pre):
        return pre, None, []
    details = OS_PATCH.action(ctx)
    return pre, details, OS_PATCH.postcheck(ctx, {"impact": {}, "lost": {}})


def names(installed: list[dict[str, Any]]) -> list[str]:
    return sorted(p["name"] for p in installed)


def test_security_updates_then_a_reboot_then_verified(ops_config, fleet):
    host = fleet.add("web-1")
    env = hosts_env(ops_config, fleet.ssh_config())
    ctx = ctx_for(env)
    pre, details, post = run_step(ctx)
    assert [c.status for c in pre] == ["ok"], pre
    assert (
        "web-1: Debian GNU/Linux 12 (bookworm), 2 security / 3 pending, " not in pre[0].detail
    )  # no reboot flag yet
    assert pre[0].detail == "web-1: Debian GNU/Linux 12 (bookworm), 2 security / 3 pending"
    row = details["hosts"][0]
    assert (row["status"], row["rebooted"]) == ("ok", True), row["detail"]
    assert names(host.state()["installed"]) == ["linux-image-amd64", "openssl"]
    assert [p["name"] for p in host.state()["pending"]] == ["tzdata"]  # not a security update
    assert host.boots() == 1 and not host.reboot_required()
    assert [c.status for c in post] == ["ok"]
    calls = [" ".join(c) for c in host.state()["calls"]]
    assert "apt-get -y -q install --only-upgrade openssl linux-image-amd64" in calls


def test_all_updates_on_a_dnf_host_without_reboot_when_none_is_required(ops_config, fleet):
    updates = [
        {"name": "curl", "from": "8.3.0-1", "to": "8.5.0-1.amzn2023", "security": False, "reboot": False},
        {
            "name": "openssl-libs",
            "from": "3.0.8-1",
            "to": "3.0.8-2.amzn2023",
            "security": True,
            "reboot": False,
        },
    ]
    host = fleet.add("al-1", os_id="amzn", updates=updates)
    env = hosts_env(ops_config, fleet.ssh_config())
    _, details, post = run_step(ctx_for(env, updates="all"))
    assert details["hosts"][0]["status"] == "ok" and details["hosts"][0]["rebooted"] is False
    assert names(host.state()["installed"]) == ["curl", "openssl-libs"] and host.boots() == 0
    assert ["dnf", "-y", "-q", "upgrade"] in host.state()["calls"]
    assert [c.status for c in post] == ["ok"]


def test_an_unreachable_host_is_skipped_and_max_errors_decides(ops_config, fleet):
    fleet.add("web-1")
    fleet.add("web-2", start=False)  # never answers
    fleet.add("web-3", trust=True).new_host_key()  # its key changed: refused, so skipped too
    env = hosts_env(ops_config, fleet.ssh_config())
    pre, details, _ = run_step(ctx_for(env, max_errors=1))
    assert details is None and pre[-1].status == "failed"  # 2 unreachable > max_errors 1: nothing is done
    assert "web-2 skipped" in pre[-1].detail and "CHANGED" in pre[-1].detail
    assert fleet.hosts["web-1"].state()["installed"] == []

    pre, details, post = run_step(ctx_for(env, max_errors=2))
    assert pre[-1].status == "warn"
    assert [(h["host"], h["status"]) for h in details["hosts"]] == [
        ("web-1", "ok"),
        ("web-2", "unreachable"),
        ("web-3", "unreachable"),
    ]
    assert post[0].status == "failed" and "skipped (unreachable): web-2, web-3" in post[0].detail


def test_a_host_that_does_not_come_back_stops_the_run(ops_config, fleet):
    first = fleet.add("web-1")
    fleet.add("web-2")
    first.never_come_back()
    env = hosts_env(ops_config, fleet.ssh_config())
    ctx = ctx_for(env, max_errors=5, reboot_timeout_s=3)
    _, details, post = run_step(ctx)
    assert [(h["host"], h["status"]) for h in details["hosts"]] == [
        ("web-1", "not-back"),
        ("web-2", "not-started"),
    ], details
    assert "did not answer SSH within 3 s after its reboot" in ctx.state["stop_run"]
    assert fleet.hosts["web-2"].state()["installed"] == [] and post[0].status == "failed"


@pytest.fixture
def node_env(ops_config, fleet, fake_kube, kube_aws, tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_kube.url)
    ops_config.ops.aws.poll_seconds = 0.05
    fleet.add("worker-1")

    def make(**host_extra: Any) -> Any:
        ssh = fleet.ssh_config(**{"worker-1": {"kubernetes_node": True, "node_name": NODE, **host_extra}})
        spec = kube_env_spec(kubeconfig)
        spec.pop("kind"), spec.pop("region"), spec.pop("production")
        return hosts_env(ops_config, ssh, "kubetest", **spec)

    return make


def cordoned(fake: Any, name: str) -> bool:
    return bool(fake.get("nodes", name)["spec"].get("unschedulable"))


def test_a_node_is_drained_patched_rebooted_and_uncordoned(node_env, fake_kube, fleet):
    env = node_env()
    before = [p["metadata"]["name"] for p in fake_kube.pods() if p["spec"].get("nodeName") == NODE]
    ctx = ctx_for(env)
    pre, details, post = run_step(ctx)
    assert [c.name for c in pre] == ["hosts", f"drain {NODE}"] and all(c.status == "ok" for c in pre)
    row = details["hosts"][0]
    assert (
        row["status"] == "ok"
        and row["rebooted"]
        and sorted(row["evicted"]) == sorted(f"spywatcher/{p}" for p in before)
    )
    assert not cordoned(fake_kube, NODE) and fleet.hosts["worker-1"].boots() == 1
    assert [p for p in fake_kube.pods() if p["spec"].get("nodeName") == NODE] == []  # they moved
    assert [c.status for c in post] == ["ok"]


def test_a_pdb_that_forbids_any_eviction_fails_the_precheck_by_name(node_env, fake_kube, fleet):
    with fake_kube.lock:
        fake_kube.store["pdbs"][("spywatcher", "spywatcher-kubetest-backend-pdb")]["spec"] = {
            "selector": {"matchLabels": {"app": "backend"}},
            "maxUnavailable": 0,
        }
    pre, details, _ = run_step(ctx_for(node_env()))
    assert details is None and pre[-1].status == "failed"
    assert (
        "PodDisruptionBudget spywatcher/spywatcher-kubetest-backend-pdb needs all 3 pods healthy"
        in pre[-1].detail
    )
    assert not cordoned(fake_kube, NODE) and fleet.hosts["worker-1"].state()["installed"] == []


def test_a_drain_blocked_at_run_time_uncordons_and_leaves_the_host_alone(node_env, fake_kube, fleet):
    from spywatcher_ops.cluster import deployments

    env = node_env()
    deployments.scale(env, "backend", 6, force=False, approve=lambda _p: True, interval=0.05)
    with fake_kube.lock:
        fake_kube.store["pdbs"][("spywatcher", "spywatcher-kubetest-backend-pdb")]["spec"]["minAvailable"] = 5
    fake_kube.ready_after = 3600  # replacements never become ready: the second eviction stays blocked
    _, details, post = run_step(ctx_for(env, drain_timeout_s=2))
    row = details["hosts"][0]
    assert (
        row["status"] == "failed" and "drain of node" in row["detail"] and "node uncordoned" in row["detail"]
    )
    assert "PodDisruptionBudget" in row["detail"]
    assert not cordoned(fake_kube, NODE) and fleet.hosts["worker-1"].state()["installed"] == []
    assert post[0].status == "failed"


def test_not_back_leaves_the_node_cordoned_with_the_command(node_env, fake_kube, fleet):
    fleet.hosts["worker-1"].never_come_back()
    ctx = ctx_for(node_env(), reboot_timeout_s=2)
    _, details, post = run_step(ctx)
    assert details["hosts"][0]["status"] == "not-back" and cordoned(fake_kube, NODE)
    assert (
        post[-1].name == "nodes schedulable"
        and post[-1].hint == f"inv cluster.uncordon {NODE} --env kubetest"
    )
    assert f"`inv cluster.uncordon {NODE} --env kubetest`" in ctx.state["stop_run"]
    assert "left as they are" in OS_PATCH.rollback(ctx) and cordoned(fake_kube, NODE)


def test_max_concurrency_patches_hosts_at_the_same_time(ops_config, fleet):
    for name in ("web-1", "web-2", "web-3"):
        fleet.add(name, down_s=2.0)
    env = hosts_env(ops_config, fleet.ssh_config())
    ctx = ctx_for(env, max_concurrency=3)
    assert all(c.ok for c in OS_PATCH.precheck(ctx))
    started = time.monotonic()
    details = OS_PATCH.action(ctx)
    wall = time.monotonic() - started
    post = OS_PATCH.postcheck(ctx, {"impact": {}, "lost": {}})
    assert [(h["host"], h["status"], h["rebooted"]) for h in details["hosts"]] == [
        ("web-1", "ok", True),
        ("web-2", "ok", True),
        ("web-3", "ok", True),
    ]
    # each host is down 2 s for its reboot: together, not one after the other
    seconds = [h["seconds"] for h in details["hosts"]]
    assert wall < sum(seconds) * 0.7, (wall, seconds)
    assert all(h.boots() == 1 for h in fleet.hosts.values()) and [c.status for c in post] == ["ok"]


def test_a_node_whose_host_is_lost_after_the_drain_is_uncordoned_again(node_env, fake_kube, fleet):
    ctx = ctx_for(node_env())
    assert all(c.ok for c in OS_PATCH.precheck(ctx))
    fleet.hosts["worker-1"].stop()  # gone between the pre-check and its turn
    details = OS_PATCH.action(ctx)
    row = details["hosts"][0]
    assert row["status"] == "failed" and "cannot be reached" in row["detail"] and row["evicted"]
    assert not cordoned(fake_kube, NODE) and not row["left_cordoned"]
    post = OS_PATCH.postcheck(ctx, {"impact": {}, "lost": {}})
    assert [c.status for c in post] == ["failed"]  # hosts patched: failed; no node left cordoned
