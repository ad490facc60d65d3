"""`inv infra.state` and `inv infra.state-restore` on the local backend (the
sandbox's kind of Terraform state, a file under state_dir): the versions are the
copies infra.apply keeps before each apply; a rollback pushes one back through
real `terraform state push`, keeping the current one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]

LOCAL_TF = """
terraform {
  backend "local" {}
}
variable "size" {
  type    = string
  default = "small"
}
resource "terraform_data" "database" {
  input = "db-${var.size}"
}
"""


class Local:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.dir = tmp / "tf"
        self.dir.mkdir()
        (self.dir / "main.tf").write_text(LOCAL_TF)
        self.conf = tmp / "ops.yaml"
        self.size("small")

    def size(self, size: str) -> None:
        tfvars = self.tmp / f"{size}.tfvars"
        tfvars.write_text(f'size = "{size}"\n')
        tf = {"dir": str(self.dir), "backend": {"type": "local"}, "var_files": [str(tfvars)]}
        self.conf.write_text(
            yaml.safe_dump(
                {
                    "ops": {
                        "state_dir": str(self.tmp / "state"),
                        "environments": {"sandbox": {"terraform": tf}},
                    }
                }
            )
        )

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["inv", "-f", str(self.conf), *args],
            cwd=ROOT,
            env={**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def state(self) -> dict:
        return json.loads((self.tmp / "state" / "terraform" / "sandbox" / "terraform.tfstate").read_text())


def test_local_state_versions_and_rollback(tmp_path):
    tf = Local(tmp_path)
    assert "no state yet" in tf("infra.state").stdout
    tf("infra.plan")
    tf("infra.apply", "--yes")
    tf.size("big")
    tf("infra.plan")
    tf("infra.apply", "--yes")
    listed = json.loads(tf("infra.state", "--versions", "--json").stdout)
    # the current file, and the copy taken before the second apply (the first had no state to copy)
    assert [v["id"] == "current" for v in listed["versions"]] == [True, False]
    now_serial = listed["versions"][0]["serial"]
    assert now_serial > listed["versions"][1]["serial"] == 1
    old = listed["versions"][1]["id"]
    assert old.endswith("-serial1") and listed["versions"][1]["lineage"] == listed["lineage"]

    declined = tf("infra.state-restore", "--version", old, code=2)
    assert "~ terraform_data.database" in declined.stdout  # shown before asking; no terminal: refused
    assert tf.state()["serial"] == now_serial

    done = tf("infra.state-restore", "--version", old, "--yes")
    assert "state rolled back to" in done.stdout
    state = tf.state()
    assert state["serial"] > now_serial and state["lineage"] == listed["lineage"]
    assert state["resources"][0]["instances"][0]["attributes"]["input"]["value"] == "db-small"
    # the state before the rollback is kept as a version of its own
    after = json.loads(tf("infra.state", "--versions", "--json").stdout)["versions"]
    kept = [v for v in after if v["id"].startswith("before-restore-")]
    assert len(kept) == 1 and kept[0]["serial"] == now_serial
    # terraform accepts the rolled-back state: with size big configured, it wants the change again
    assert "terraform_data.database" in tf("infra.drift", code=1).stdout


def test_local_state_restore_of_an_unknown_or_foreign_version(tmp_path):
    tf = Local(tmp_path)
    tf("infra.plan")
    tf("infra.apply", "--yes")
    missing = tf("infra.state-restore", "--version", "../../etc/passwd", "--yes", code=2)
    assert "--version ../../etc/passwd: no such state version" in missing.stderr
    backups = tmp_path / "state" / "terraform" / "sandbox" / "backups"
    backups.mkdir(exist_ok=True)
    foreign = {**tf.state(), "lineage": "another-state-0000", "serial": 9}
    (backups / "foreign.tfstate").write_text(json.dumps(foreign))
    refused = tf("infra.state-restore", "--version", "foreign", "--yes", code=2)
    assert "lineage another-state-0000 is not the current state's" in refused.stderr
    assert tf.state()["serial"] == 1
