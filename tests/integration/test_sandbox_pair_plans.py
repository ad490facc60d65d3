"""The plans of the sandbox pair's role changes (failover, swap, Multi-AZ style restart) name
the exact sandbox calls, in order, with the nodes and ports of the real pair: --dry-run shows
what runs. Pinned here so that sharing the code that builds them changes none of them."""

from __future__ import annotations

import pytest

from spywatcher_ops.backends.sandbox.maintenance import SandboxMaintenance

pytestmark = pytest.mark.real


def test_failover_swap_and_maintenance_plans_name_the_pairs_nodes(pg_pair_factory):
    pair = pg_pair_factory()
    db = pair.database
    state = pair.state()
    main_id = state["main"]
    main = state["instances"][main_id]
    p, s = main["primary"], main["standby"]
    pnode, snode = state["nodes"][p], state["nodes"][s]

    failover = db.plan_failover().to_dict()
    assert failover["title"] == f"fail over {main_id} from {p} to {s}"
    assert failover["notes"] == []
    assert [(x["target"], x["action"], x["params"], x["mutating"]) for x in failover["steps"]] == [
        ("sandbox", "kill", {"node": p, "pid": pnode["pid"], "signal": "SIGKILL"}, True),
        ("sandbox", "pg_ctl_promote", {"node": s, "port": snode["port"]}, True),
        ("sandbox", "rebuild_standby", {"node": p, "method": "pg_rewind, else pg_basebackup"}, True),
    ]
    assert [x["why"] for x in failover["steps"]] == [
        "the primary stops abruptly, with its children, like losing its availability zone",
        "synchronous_standby_names is cleared on the new primary until a standby streams",
        "",
    ]

    with pair.box.statefile.editing() as edited:  # a second instance to swap in (only its name is read)
        edited["instances"]["restored-plan"] = dict(edited["instances"][main_id], created_by_us=True)
    swap = db.plan_swap("restored-plan", "old-plan").to_dict()
    assert swap["title"] == f"swap restored-plan in as {main_id}; keep the old pair as old-plan"
    assert [(x["action"], x["params"]) for x in swap["steps"]] == [
        ("stop_pair", {"instance": main_id, "rename_to": "old-plan"}),
        (
            "take_endpoint",
            {"instance": "restored-plan", "rename_to": main_id, "ports": [pnode["port"], snode["port"]]},
        ),
        ("build_standby", {"instance": main_id, "replication": state["replication"]}),
    ]
    assert [x["why"] for x in swap["steps"]] == [
        "the old pair is stopped and kept (data intact) under its new name",
        "the restored server restarts on the endpoint's ports, so clients reconnect to it",
        "",
    ]
    assert all(x["target"] == "sandbox" and x["mutating"] for x in swap["steps"])
    assert swap["notes"] == [  # the reverse command is printed once, after the swap
        "the old pair is stopped (pg_ctl -m fast): connections opened before the swap are closed; "
        f"clients reconnect to the same ports and reach restored-plan, now {main_id}"
    ]
    with pair.box.statefile.editing() as edited:
        del edited["instances"]["restored-plan"]

    maint = SandboxMaintenance(pair.environment)
    idle = maint.plan_database_maintenance().to_dict()
    assert idle == {
        "title": f"apply 0 pending-reboot change(s) to {main_id} the Multi-AZ way",
        "steps": [],
        "notes": ["nothing pending"],
    }
    maint.queue_change("max_connections", "120")
    plan = maint.plan_database_maintenance().to_dict()
    assert plan["title"] == f"apply 1 pending-reboot change(s) to {main_id} the Multi-AZ way"
    assert plan["notes"] == []
    assert [(x["target"], x["action"], x["params"], x["mutating"]) for x in plan["steps"]] == [
        ("sandbox", "restart_standby", {"node": s, "parameters": {"max_connections": "120"}}, True),
        ("sandbox", "switchover", {"from": p, "to": s}, True),
        ("sandbox", "restart_as_standby", {"node": p, "parameters": {"max_connections": "120"}}, True),
    ]
    assert [x["why"] for x in plan["steps"]] == [
        "the standby first; the primary's commits stop waiting for it meanwhile",
        "CHECKPOINT, clean shutdown of the primary, standby checked to hold its final WAL, promote",
        "the old primary follows the new one (pg_rewind, else a fresh base backup)",
    ]


def test_the_cache_rolling_restart_plan_names_the_pairs_nodes(sandbox_cache_env):
    from spywatcher_ops.backends.sandbox.redis.cache import SandboxCache
    from spywatcher_ops.backends.sandbox.redis.rolling import plan_rolling_restart

    cache = SandboxCache(sandbox_cache_env)
    primary, replica = cache._healthy_pair()
    plan = plan_rolling_restart(sandbox_cache_env).to_dict()
    assert plan["title"] == (
        f"rolling restart of the sandbox cache ({cache.master_name}): {replica.id}, failover, {primary.id}"
    )
    assert plan["notes"] == []
    assert [(x["target"], x["action"], x["params"], x["mutating"], x["why"]) for x in plan["steps"]] == [
        (
            "sandbox",
            "restart",
            {"node": replica.id, "replicaof": f"{primary.host}:{primary.port}"},
            True,
            "the replica first: the primary keeps serving",
        ),
        (
            "sentinel",
            "SENTINEL FAILOVER",
            {"master_name": cache.master_name, "to": replica.id},
            True,
            "a planned failover: the sentinels promote the replica without waiting to detect a failure",
        ),
        (
            "sandbox",
            "restart",
            {"node": primary.id, "replicaof": f"{replica.host}:{replica.port}"},
            True,
            "the old primary comes back as a replica of the new one",
        ),
    ]
