"""Terraform for real: the terraform binary, its S3 backend and DynamoDB lock
against the session's moto server (bucket with versioning), and configurations
of built-in `terraform_data` resources in a tmp folder (no provider download).
`tf_world.inv(...)` runs the real `inv` with a config naming all of it.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.paths import ROOT

BUCKET = "spywatcher-tfstate"
TF_LOCK_TABLE = "tflock"
OPS_LOCK_TABLE = "spywatcher-ops-locks"
KEY = "staging/terraform.tfstate"

MAIN_TF = """
terraform {
  backend "s3" {}
}

variable "size" {
  type    = string
  default = "small"
}

variable "fail" {
  type    = bool
  default = false
}

resource "terraform_data" "database" {
  input = "db-${var.size}"
}

resource "terraform_data" "web" {
  input = "web-${var.size}"
}

resource "terraform_data" "worker" {
  input = "worker-${var.size}"
  depends_on = [terraform_data.web]
  provisioner "local-exec" {
    command = var.fail ? "echo worker boot failed >&2; exit 3" : "true"
  }
}
"""


@dataclass
class TfWorld:
    endpoint: str
    tmp: Path
    config_dir: Path
    state_dir: Path
    conf_file: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def ddb(self) -> Any:
        import boto3

        return boto3.client("dynamodb", endpoint_url=self.endpoint, region_name="us-east-1")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "TF_CLI_CONFIG_FILE": "/dev/null",
            "COLUMNS": "200",
            **self.extra_env,
        }

    def config(self, **terraform: Any) -> None:
        """Rewrite the test config; keyword arguments override environments.staging.terraform keys."""
        tf = {
            "dir": str(self.config_dir),
            "workspace": "default",
            "var_files": [],
            "stateful": ["aws_db_instance", "terraform_data.database"],
            "backend": {
                "bucket": BUCKET,
                "key": KEY,
                "region": "us-east-1",
                "dynamodb_table": TF_LOCK_TABLE,
                "endpoints": {"s3": self.endpoint, "dynamodb": self.endpoint},
                "use_path_style": True,
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "skip_region_validation": True,
            },
        }
        tf.update(terraform)
        conf = {
            "ops": {
                "state_dir": str(self.state_dir),
                "aws": {"poll_seconds": 0.2},
                "environments": {"staging": {"terraform": tf}},
            }
        }
        self.conf_file.write_text(yaml.safe_dump(conf))

    def inv(
        self, *args: str, timeout: float = 180, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["inv", "-f", str(self.conf_file), *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL if input is None else None,
            input=input,
        )

    def terraform(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Bare terraform on the same configuration (its own data dir), as a user would run it."""
        env = {**self.env(), "TF_IN_AUTOMATION": "1", "TF_DATA_DIR": str(self.tmp / "bare-data")}
        return subprocess.run(
            ["terraform", *args],
            cwd=cwd or self.config_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def backend_file(self) -> Path:
        path = self.tmp / "bare-backend.hcl"
        path.write_text(
            f'bucket = "{BUCKET}"\nkey = "{KEY}"\nregion = "us-east-1"\ndynamodb_table = "{TF_LOCK_TABLE}"\n'
            f'endpoints = {{ s3 = "{self.endpoint}", dynamodb = "{self.endpoint}" }}\nuse_path_style = true\n'
            "skip_credentials_validation = true\nskip_requesting_account_id = true\n"
            "skip_metadata_api_check = true\nskip_region_validation = true\n"
        )
        return path

    def versions(self) -> list[dict[str, Any]]:
        found = self.s3().list_object_versions(Bucket=BUCKET, Prefix=KEY).get("Versions", [])
        return sorted(found, key=lambda v: v["LastModified"], reverse=True)

    def state(self) -> dict[str, Any]:
        import json

        return json.loads(self.s3().get_object(Bucket=BUCKET, Key=KEY)["Body"].read())

    def journal(self) -> list[dict[str, Any]]:
        import json

        path = self.state_dir / "journal" / "staging.jsonl"
        return (
            [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if path.exists()
            else []
        )


def reset_moto(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def make_tf_backend(moto_server: str, *, ops_lock: bool = True) -> None:
    """In the moto server: the state bucket (versioning on), terraform's lock table and (unless the
    environment's fixture made it already) the ops lock table."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1")
    ddb.create_table(
        TableName=TF_LOCK_TABLE,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if ops_lock:
        ddb.create_table(
            TableName=OPS_LOCK_TABLE,
            KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


@pytest.fixture
def tf_world(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TfWorld:
    """A fresh moto state: the state bucket (versioning on), terraform's lock table, the ops lock table;
    a terraform_data configuration in tmp; a test config for `inv -f`."""
    reset_moto(moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    make_tf_backend(moto_server)
    config_dir = tmp_path / "infra"
    config_dir.mkdir()
    (config_dir / "main.tf").write_text(MAIN_TF)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    world = TfWorld(moto_server, tmp_path, config_dir, state_dir, tmp_path / "ops.yaml")
    world.config()
    return world
