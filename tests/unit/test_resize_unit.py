"""db.resize and cache.resize: refused classes (exit 2, nothing done), the sandbox's rolling restart
for real with the client impact measured by the drill probes, RDS and ElastiCache through moto."""

from __future__ import annotations

from typing import Any

from support.aws import aws_env


def test_cache_resize_on_elasticache(staging_aws: Any, ops_config: Any):
    import boto3

    from spywatcher_ops.recovery.resize import cache_resize

    ec = boto3.client("elasticache", region_name="us-east-1")
    ec.create_replication_group(
        ReplicationGroupId="spywatcher-staging-redis",
        ReplicationGroupDescription="cache",
        Engine="redis",
        CacheNodeType="cache.t3.small",
        NumCacheClusters=2,
    )
    ops_config.ops.aws.poll_seconds = 0.01
    env = aws_env(ops_config)
    outcome = cache_resize(env, "cache.t3.medium", "now", approve=lambda plan: True, measure=False)
    assert outcome.applied and outcome.old == "cache.t3.small"
    assert ec.describe_replication_groups()["ReplicationGroups"][0]["CacheNodeType"] == "cache.t3.medium"
    records = (env.settings.state_dir / "journal" / "staging.jsonl").read_text()
    assert '"op": "cache.resize"' in records and '"step": "modify_replication_group"' in records
