"""ElastiCache: status and node-group checks against moto; TestFailover and its
quota with botocore's Stubber (moto has neither TestFailover nor DescribeEvents).
Stubbed responses for DescribeReplicationGroups are taken from moto, so their
shape is the real one, and the Stubber validates every request and response.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.elasticache import GROUP, REGION, create_group
from support.paths import ROOT


@pytest.mark.e2e
def test_inv_cache_status_on_staging_through_a_moto_server(moto_server: str, tmp_path: Path) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    import boto3

    create_group(boto3.client("elasticache", region_name=REGION, endpoint_url=moto_server))
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(tmp_path), "AWS_ENDPOINT_URL": moto_server}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "cache.status", "--env", "staging", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["kind"] == "aws" and sorted(n["role"] for n in data["nodes"]) == ["primary", "replica"]
    assert data["nodes"][0]["details"]["automatic_failover"] == "enabled"

    table = subprocess.run(
        [sys.executable, "-m", "invoke", "cache.status", "--env", "staging"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    assert (
        f"replication group {GROUP}: available; automatic failover enabled; Multi-AZ enabled" in table.stdout
    )
