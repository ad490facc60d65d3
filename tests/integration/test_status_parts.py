"""`inv status`: parts read in parallel with a deadline; real sandbox; aws through moto and the in-test
Kubernetes API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from spywatcher_ops.status.model import Line, exit_code, failed, gather, ok, warn


def _by_part(results: Any) -> dict[str, list[Line]]:
    return {r.name: r.lines for r in results}


def test_a_part_that_times_out_or_raises_is_failed_and_the_rest_still_shows():
    def slow() -> list[Line]:
        time.sleep(5)
        return [ok("slow", "never seen")]

    def broken() -> list[Line]:
        raise RuntimeError("connection reset by peer")

    started = time.monotonic()
    results = gather({"fast": lambda: [ok("fast", "fine")], "slow": slow, "broken": broken}, 0.5)
    assert time.monotonic() - started < 1.5  # the slow part did not hold the others
    parts = _by_part(results)
    assert [r.name for r in results] == ["fast", "slow", "broken"]
    assert parts["fast"] == [ok("fast", "fine")]
    assert parts["slow"][0].level == "FAILED" and "did not answer within 0.5 s" in parts["slow"][0].text
    assert parts["broken"][0].text == "could not be read: connection reset by peer"
    assert all(line.unreadable for line in parts["slow"] + parts["broken"])


def test_exit_codes():
    assert exit_code([ok("a", "x"), warn("b", "y")]) == 0
    assert exit_code([ok("a", "x"), failed("b", "down")]) == 1
    unreadable = Line("c", "FAILED", "did not answer", unreadable=True)
    assert exit_code([ok("a", "x"), unreadable]) == 3
    assert exit_code([failed("b", "down"), unreadable]) == 1


# --- aws: moto + the in-test Kubernetes API -------------------------------------------------


def _aws_resources(now: datetime, *, free_gib: float) -> None:
    import boto3

    rds = boto3.client("rds", region_name="us-east-1")
    rds.create_db_instance(
        DBInstanceIdentifier="spywatcher-kubetest-db",
        Engine="postgres",
        EngineVersion="15.3",
        DBInstanceClass="db.t3.medium",
        AllocatedStorage=50,
        MultiAZ=True,
        BackupRetentionPeriod=7,
        MasterUsername="postgres",
        MasterUserPassword="master-Secret-1",
    )
    boto3.client("elasticache", region_name="us-east-1").create_replication_group(
        ReplicationGroupId="spywatcher-kubetest-redis",
        ReplicationGroupDescription="cache",
        Engine="redis",
        CacheNodeType="cache.t3.medium",
        NumCacheClusters=2,
        AutomaticFailoverEnabled=True,
    )
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    db = [{"Name": "DBInstanceIdentifier", "Value": "spywatcher-kubetest-db"}]
    cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "FreeStorageSpace",
                "Dimensions": db,
                "Timestamp": now - timedelta(minutes=1),
                "Value": free_gib * 2**30,
                "Unit": "Bytes",
            },
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": db,
                "Timestamp": now - timedelta(minutes=1),
                "Value": 400,
                "Unit": "Count",
            },
        ],
    )
    cw.put_metric_data(
        Namespace="AWS/ElastiCache",
        MetricData=[
            {
                "MetricName": "DatabaseMemoryUsagePercentage",
                "Timestamp": now - timedelta(minutes=1),
                "Value": 42,
                "Dimensions": [{"Name": "CacheClusterId", "Value": "spywatcher-kubetest-redis-001"}],
            }
        ],
    )
    cw.put_metric_alarm(
        AlarmName="spywatcher-kubetest-api-5xx-rate",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName="spywatcher-kubetest-api-5xx-rate", StateValue="ALARM", StateReason="5xx")


def test_status_on_aws_reads_rds_elasticache_cloudwatch_and_the_cluster(kube_env: Any, fake_kube: Any):
    from spywatcher_ops.status.collect import status

    now = datetime.now(UTC)
    _aws_resources(now, free_gib=4)
    backend = "spywatcher-kubetest-backend"
    pod = next(p for (ns, name), p in fake_kube.store["pods"].items() if name.startswith(backend))
    fake_kube.restarted[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = (
        now - timedelta(minutes=10)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    for (_ns, name), hpa in fake_kube.store["hpas"].items():
        if name == backend:
            hpa["spec"]["maxReplicas"] = 3  # backend runs 3: at its maximum
    results = status(kube_env, 10)
    parts = _by_part(results)
    text = {name: " | ".join(f"{x.level} {x.text}" for x in lines) for name, lines in parts.items()}
    assert text["database"].startswith("OK spywatcher-kubetest-db: available, primary in"), text["database"]
    assert "Multi-AZ standby in" in text["database"]
    assert "FAILED storage: 4.0 GiB free of 50.0 GiB (8% free)" in text["database"]
    assert "OK connections: 400 of 405 (99%)".replace("OK", "FAILED") in text["database"]
    assert "OK spywatcher-kubetest-redis-001/0001: primary" in text["cache"]
    assert "OK memory of spywatcher-kubetest-redis-001: 42% used" in text["cache"]
    assert "WARN backend: 3/3 ready, 1 restart(s) in the last hour" in text["application"]
    assert "WARN backend: HPA at its maximum (3/3)" in text["application"]
    assert "OK frontend: 2/2 ready, 0 restart(s) in the last hour" in text["application"]
    assert text["nodes"] == "OK 3 of 3 ready"
    assert text["alarms"] == "FAILED 1 in ALARM: spywatcher-kubetest-api-5xx-rate"
    assert text["window"].startswith("OK restorable from")
    storage = next(x for x in parts["database"] if x.text.startswith("storage"))
    assert storage.hint and "low-disk-space" in storage.hint
    assert exit_code([x for lines in parts.values() for x in lines]) == 1


def test_status_on_aws_a_cordoned_node_and_a_deployment_down(kube_env: Any, fake_kube: Any):
    from spywatcher_ops.status.collect import status

    _aws_resources(datetime.now(UTC), free_gib=40)
    node = sorted(name for (_ns, name) in fake_kube.store["nodes"])[0]
    fake_kube.store["nodes"][("", node)].setdefault("spec", {})["unschedulable"] = True
    frontend = "spywatcher-kubetest-frontend"
    dep = next(d for k, d in fake_kube.store["deployments"].items() if k[-1] == frontend)
    dep["spec"]["replicas"] = 0  # scaled to zero: ready 0/0 is not down
    parts = _by_part(status(kube_env, 10))
    assert parts["nodes"][0].level == "WARN" and f"cordoned: {node}" in parts["nodes"][0].text
    assert any("40.0 GiB free of 50.0 GiB" in x.text and x.level == "OK" for x in parts["database"])
    assert [(x.level, x.text) for x in parts["application"]][1] == (
        "OK",
        "frontend: 0/0 ready, 0 restart(s) in the last hour",
    )


def test_status_on_aws_without_a_cluster_skips_the_application(ops_config: Any):
    """An aws environment whose EKS cluster does not exist: application and nodes SKIPPED."""
    import boto3
    from moto import mock_aws
    from support.aws import aws_env

    from spywatcher_ops.status.collect import status

    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1")
        _aws_resources(datetime.now(UTC), free_gib=40)
        ops_config.ops.environments["kubetest"] = {"kind": "aws", "region": "us-east-1"}
        parts = _by_part(status(aws_env(ops_config, name="kubetest"), 10))
    for part in ("application", "nodes"):
        assert parts[part][0].level == "SKIPPED", parts[part]
        assert parts[part][0].text == "no cluster: EKS cluster spywatcher-kubetest-eks not found in us-east-1"


def test_the_last_maintenance_run_is_read_from_the_journal(ops_config: Any):
    """`maint.run` records are the runs; a plan or a notice is not. A run that failed is FAILED."""
    from support.aws import aws_env

    from spywatcher_ops.status.records import last_maintenance

    env = aws_env(ops_config)
    assert last_maintenance(env)[0].text == "no maintenance run on record"
    with env.journal.operation("maint.notice", env.name, {}):
        pass
    assert last_maintenance(env)[0].text == "no maintenance run on record"
    with env.journal.operation("maint.run", env.name, {"plan": "sunday"}):
        pass
    line = last_maintenance(env)[0]
    assert line.level == "OK" and line.text.startswith("last run maint.run ") and line.text.endswith(": ok")
    try:
        with env.journal.operation("maint.run", env.name, {"plan": "sunday"}):
            raise RuntimeError("step db-engine failed")
    except RuntimeError:
        pass
    line = last_maintenance(env)[0]
    assert line.level == "FAILED" and "step db-engine failed" in line.text, line
