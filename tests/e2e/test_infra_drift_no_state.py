"""`inv infra.drift` on an environment Terraform never applied says so: the resources are
not under Terraform yet (no state) and would be created, not 'drift' (still exit 1: the
infrastructure is not what the code says). Real terraform, local backend."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]

ONE = """
terraform {
  backend "local" {}
}
resource "terraform_data" "database" {
  input = "db"
}
"""
TWO = (
    ONE
    + """
resource "terraform_data" "cache" {
  input = "cache"
}
"""
)


class Local:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "tf"
        self.dir.mkdir()
        (self.dir / "main.tf").write_text(ONE)
        self.conf = tmp / "ops.yaml"
        tf = {"dir": str(self.dir), "backend": {"type": "local"}}
        config = {"ops": {"state_dir": str(tmp / "state"), "environments": {"sandbox": {"terraform": tf}}}}
        self.conf.write_text(yaml.safe_dump(config))

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


def test_drift_before_any_apply_says_no_state_and_what_would_be_created(tmp_path):
    local = Local(tmp_path)
    (local.dir / "main.tf").write_text(TWO)
    done = local("infra.drift", "--env", "sandbox", code=1)
    text = done.stdout + done.stderr
    assert "not under Terraform yet (no state): 2 resource(s) would be created" in text, text
    assert "drift in" not in text, text
    report = json.loads(local("infra.drift", "--env", "sandbox", "--json", code=1).stdout)
    assert report["no_state"] is True and report["drifted"] is True


def test_drift_after_an_apply_is_still_drift(tmp_path):
    local = Local(tmp_path)
    local("infra.plan")
    local("infra.apply", "--yes")
    (local.dir / "main.tf").write_text(TWO)
    done = local("infra.drift", "--env", "sandbox", code=1)
    text = done.stdout + done.stderr
    assert "drift in 1 resource(s): terraform_data.cache" in text, text
    assert "no state" not in text, text
