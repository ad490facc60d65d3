"""The full-rebuild drill's IAM preflight covers what Terraform needs on its state backend
(issue 15): ListBucket and GetBucketVersioning on the state bucket, GetObject and PutObject on
the state key of the workspace the rebuild applies, and the DynamoDB lock table's items, each
simulated against its own ARN. Through the real `inv dr.preflight` on aws (moto server), with
the IAM simulation on loopback answering per action and resource as IAM does."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from support.aws import COPY_REGION
from support.infra import BUCKET, KEY, MAIN_TF, TF_LOCK_TABLE, TfWorld, make_tf_backend

DR_WORKSPACE = "staging-us-west-2"
ACCOUNT = "123456789012"  # moto's
DR_STATE = f"arn:aws:s3:::{BUCKET}/env:/{DR_WORKSPACE}/{KEY}"
LOCK_TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TF_LOCK_TABLE}"
DRILL = ("--env", "staging", "--scenario", "full-rebuild", "--param", f"region={COPY_REGION}")


@pytest.fixture
def world(moto_staging, iam_sim, tmp_path, monkeypatch):
    """staging on a moto server with the S3 state backend and a DR region whose newest snapshot
    copy is fresh, so the IAM simulation is the only preflight check that can fail."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    make_tf_backend(moto_staging["endpoint"], ops_lock=False)
    config_dir = tmp_path / "infra"
    config_dir.mkdir()
    (config_dir / "main.tf").write_text(MAIN_TF)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    w = TfWorld(moto_staging["endpoint"], tmp_path, config_dir, state_dir, tmp_path / "ops.yaml")
    w.extra_env["AWS_ENDPOINT_URL_IAM"] = iam_sim.url
    w.config(dr_regions={COPY_REGION: {"workspace": DR_WORKSPACE}})
    conf = yaml.safe_load(w.conf_file.read_text())
    conf["ops"]["environments"]["staging"]["kms_keys"] = {COPY_REGION: moto_staging["west_key"]}
    w.conf_file.write_text(yaml.safe_dump(conf))
    ok(w.inv("db.snapshot", "--env", "staging", "--copy-to-region", COPY_REGION, "--yes"))
    iam_sim.requests.clear()
    return w


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_state_backend_is_simulated_on_its_own_resources(world, iam_sim):
    done = ok(world.inv("dr.preflight", *DRILL))
    assert "IAM permissions" in done.stdout
    asked = {(a, r) for req in iam_sim.requests for a in req["ActionNames"] for r in req["ResourceArns"]}
    assert {
        ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
        ("s3:GetBucketVersioning", f"arn:aws:s3:::{BUCKET}"),
        ("s3:GetObject", DR_STATE),
        ("s3:PutObject", DR_STATE),
        ("dynamodb:DescribeTable", LOCK_TABLE),
        ("dynamodb:GetItem", LOCK_TABLE),
        ("dynamodb:PutItem", LOCK_TABLE),
        ("dynamodb:DeleteItem", LOCK_TABLE),
    } <= asked, asked
    # each group on its own resource: the bucket's actions are never asked on an object, nor the reverse
    for req in iam_sim.requests:
        if req["ActionNames"][0].startswith("s3:"):
            assert len(req["ResourceArns"]) == 1, req


@pytest.mark.parametrize(
    "action, resource",
    [
        ("s3:PutObject", DR_STATE),
        ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
        ("dynamodb:PutItem", LOCK_TABLE),
    ],
)
def test_a_caller_lacking_one_fails_the_preflight_naming_action_and_resource(
    world, iam_sim, action, resource
):
    iam_sim.deny_on.add((action, resource))
    done = ok(world.inv("dr.preflight", *DRILL), 3)
    assert f"IAM permissions: denied: {action} on {resource} (implicitDeny)" in done.stdout + done.stderr
