"""ElastiCache replication groups as moto makes them, for the Stubber-based cache
tests (unit) and the cache drills on AWS (integration).
"""

from __future__ import annotations

import copy
from typing import Any

from moto import mock_aws

GROUP = "spywatcher-staging-redis"
REGION = "us-east-1"


def create_group(client: Any, group_id: str = GROUP, **extra: Any) -> None:
    params: dict[str, Any] = {
        "ReplicationGroupId": group_id,
        "ReplicationGroupDescription": "spywatcher cache",
        "Engine": "redis",
        "CacheNodeType": "cache.t3.medium",
        "ReplicasPerNodeGroup": 1,
        "AutomaticFailoverEnabled": True,
        "MultiAZEnabled": True,
    }
    params.update(extra)
    client.create_replication_group(**params)


def moto_group(**extra: Any) -> dict[str, Any]:
    """A real-shaped DescribeReplicationGroups item, made by moto."""
    with mock_aws():
        import boto3

        client = boto3.client("elasticache", region_name=REGION)
        create_group(client, **extra)
        return client.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0]


def swapped(group: dict[str, Any], status: str = "available") -> dict[str, Any]:
    out = copy.deepcopy(group)
    out["Status"] = status
    for ng in out["NodeGroups"]:
        ng["Status"] = status
        for member in ng["NodeGroupMembers"]:
            member["CurrentRole"] = "replica" if member["CurrentRole"] == "primary" else "primary"
    return out
