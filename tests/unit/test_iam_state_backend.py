"""What Terraform needs on its S3 state backend, as the drills' IAM preflight simulates it
(backends/aws/iam.py, issue 15), and that the shipped drills policy allows it. Pure: no AWS."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import yaml
from support.paths import ROOT

from spywatcher_ops.backends.aws.iam import state_backend_access

BACKEND = {
    "type": "s3",
    "bucket": "spywatcher-tfstate",
    "key": "staging/terraform.tfstate",
    "region": "eu-west-1",
}


def test_bucket_state_key_and_dynamodb_lock_table_each_on_their_own_arn():
    groups = state_backend_access(
        {**BACKEND, "dynamodb_table": "spywatcher-tflock"},
        "staging/terraform.tfstate",
        partition="aws",
        account="123456789012",
    )
    assert groups == [
        (["s3:ListBucket", "s3:GetBucketVersioning"], ["arn:aws:s3:::spywatcher-tfstate"]),
        (["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::spywatcher-tfstate/staging/terraform.tfstate"]),
        (
            ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
            ["arn:aws:dynamodb:eu-west-1:123456789012:table/spywatcher-tflock"],
        ),
    ]


def test_s3_lock_file_of_a_workspace_in_another_partition():
    groups = state_backend_access(
        {**BACKEND, "use_lockfile": True},
        "env:/staging-us-west-2/staging/terraform.tfstate",
        partition="aws-us-gov",
        account="123456789012",
    )
    assert groups[-1] == (
        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        ["arn:aws-us-gov:s3:::spywatcher-tfstate/env:/staging-us-west-2/staging/terraform.tfstate.tflock"],
    )
    assert not [g for g in groups if g[0][0].startswith("dynamodb:")]


def test_a_local_state_needs_nothing():
    assert state_backend_access({"type": "local"}, "", partition="aws", account="1") == []


def test_the_shipped_policy_allows_the_state_backend_of_the_shipped_environments():
    """deploy/iam/drills-policy.json is what a 'denied' hint points at: it covers the state
    backend of invoke.yaml's environments, action by action, on the resources asked."""
    policy = json.loads((ROOT / "deploy" / "iam" / "drills-policy.json").read_text())
    statements = [st for st in policy["Statement"] if st["Effect"] == "Allow"]
    environments = yaml.safe_load((ROOT / "invoke.yaml").read_text())["ops"]["environments"]
    checked = 0
    for name, env in environments.items():
        backend = (env.get("terraform") or {}).get("backend")
        if not backend or backend.get("type", "s3") != "s3":
            continue  # a local state (the sandbox's) needs no AWS permission
        for use_lockfile in (False, True):
            for actions, resources in state_backend_access(
                {**backend, "use_lockfile": use_lockfile},
                backend["key"],
                partition="aws",
                account="123456789012",
            ):
                for action in actions:
                    for resource in resources:
                        assert any(
                            action in st["Action"] and fnmatchcase(resource, st["Resource"])
                            for st in statements
                        ), (name, action, resource)
                        checked += 1
    assert checked >= 16
