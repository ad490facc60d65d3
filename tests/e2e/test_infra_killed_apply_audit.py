"""`inv infra.apply` killed (SIGKILL) while terraform applies: terraform finishes on its own.

terraform's output used to reach inv through a pipe: with inv gone, terraform's next line
(a provisioner's output, a "Still creating...") hit a closed pipe, SIGPIPE killed it mid-apply,
and the state never recorded what it had made (on the sandbox: an empty state file that
`inv infra.state` then called "not JSON"; on S3: resources outside the state, the lock held).
Real terraform, local backend, a built-in resource whose provisioner takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]

SLOW_TF = """
terraform {
  backend "local" {}
}
resource "terraform_data" "slow" {
  input = "v1"
  provisioner "local-exec" {
    command = "sleep 2; echo provisioned"
  }
}
resource "terraform_data" "after" {
  input      = "v1"
  depends_on = [terraform_data.slow]
}
"""


def test_apply_killed_mid_provisioning_leaves_terraform_to_finish_and_record_it(tmp_path: Path) -> None:
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "main.tf").write_text(SLOW_TF)
    conf = tmp_path / "ops.yaml"
    tf = {"dir": str(tmp_path / "tf"), "backend": {"type": "local"}}
    conf.write_text(
        yaml.safe_dump(
            {"ops": {"state_dir": str(tmp_path / "state"), "environments": {"sandbox": {"terraform": tf}}}}
        )
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}

    def inv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["inv", "-f", str(conf), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )

    assert inv("infra.plan").returncode == 0
    log = tmp_path / "apply.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["inv", "-f", str(conf), "infra.apply", "--yes"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while "Provisioning with 'local-exec'" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    state_file = tmp_path / "state" / "terraform" / "sandbox" / "terraform.tfstate"
    lock_info = state_file.with_name(".terraform.tfstate.lock.info")
    deadline = time.monotonic() + 30
    while lock_info.exists() and time.monotonic() < deadline:  # terraform unlocks when it is done
        time.sleep(0.2)
    time.sleep(0.5)
    body = state_file.read_text()
    assert body.strip(), "terraform died with inv: the state is empty"
    assert sorted(r["name"] for r in json.loads(body)["resources"]) == ["after", "slow"]
    listed = inv("infra.state")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert inv("infra.drift").returncode == 0  # what terraform made is in the state


def test_an_empty_state_file_left_by_a_killed_terraform_reads_as_no_state(tmp_path: Path) -> None:
    """terraform itself SIGKILLed (a pod or machine gone) before its first state write leaves an
    empty state file (and a stale lock info beside it); terraform reads that as no state, and so
    must inv, instead of 'is not JSON'."""
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "main.tf").write_text(SLOW_TF.replace("sleep 2; ", ""))
    conf = tmp_path / "ops.yaml"
    tf = {"dir": str(tmp_path / "tf"), "backend": {"type": "local"}}
    conf.write_text(
        yaml.safe_dump(
            {"ops": {"state_dir": str(tmp_path / "state"), "environments": {"sandbox": {"terraform": tf}}}}
        )
    )
    folder = tmp_path / "state" / "terraform" / "sandbox"
    folder.mkdir(parents=True)
    (folder / "terraform.tfstate").write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}

    def inv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["inv", "-f", str(conf), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )

    listed = inv("infra.state", "--versions")
    assert listed.returncode == 0 and "no state yet" in listed.stdout, listed.stdout + listed.stderr
    assert inv("infra.plan").returncode == 0
    applied = inv("infra.apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads((folder / "terraform.tfstate").read_text())["resources"]
