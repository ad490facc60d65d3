"""Ctrl-C or SIGTERM on `inv infra.plan` / `inv infra.apply` while terraform holds the
state lock: terraform gets exactly one SIGINT, stops gracefully, and the lock is free. The real inv, terraform binary, S3 backend
and DynamoDB lock on the session's moto server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest
from support.infra import TF_LOCK_TABLE
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]

RESOURCES = 1500  # enough for terraform to hold the state lock for a while (about 1-3 s)


def _slow_config(world: Any) -> None:
    body = ['terraform {\n  backend "s3" {}\n}\n']
    body += [f'resource "terraform_data" "r{i}" {{\n  input = "r{i}"\n}}\n' for i in range(RESOURCES)]
    (world.config_dir / "main.tf").write_text("\n".join(body))


def _lock_held(world: Any) -> bool:
    items = world.ddb().scan(TableName=TF_LOCK_TABLE)["Items"]
    return any("Info" in item for item in items)  # the lock item; the -md5 digest item has none


def _wait_for_lock(world: Any, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not _lock_held(world):
        assert time.monotonic() < deadline and proc.poll() is None, "terraform never took the lock"
        time.sleep(0.01)


def _start(world: Any, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["inv", "-f", str(world.conf_file), *args],
        cwd=ROOT,
        env=world.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def test_ctrl_c_on_inv_infra_plan_stops_terraform_gracefully_and_frees_the_lock(tf_world):
    """As in a terminal: SIGINT to inv's whole process group, terraform included; inv waits for
    its graceful stop (a second SIGINT would make it exit at once, holding the lock)."""
    _slow_config(tf_world)
    proc = _start(tf_world, "infra.plan", "--env", "staging")
    try:
        _wait_for_lock(tf_world, proc)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert not _lock_held(tf_world)
    ends = [r for r in tf_world.journal() if r.get("event") == "end" and r.get("op") == "infra.plan"]
    assert ends and ends[-1]["outcome"] != "ok"


def test_sigterm_to_inv_alone_stops_terraform_plan_with_one_sigint(tf_world):
    """A SIGTERM (a CI timeout, systemd) reaches inv only: inv passes one SIGINT on."""
    _slow_config(tf_world)
    proc = _start(tf_world, "infra.plan", "--env", "staging")
    try:
        _wait_for_lock(tf_world, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err, err
    assert not _lock_held(tf_world)


SLOW_APPLY_TF = """
terraform {
  backend "s3" {}
}

resource "terraform_data" "slow" {
  input = "slow"
  provisioner "local-exec" {
    command = "sleep 20"
  }
}
"""


def test_ctrl_c_on_inv_infra_apply_lets_terraform_write_the_state(tf_world):
    """Ctrl-C in a terminal reaches terraform too; inv must not send a second SIGINT, which makes
    terraform 'exit immediately' without writing the state or releasing the lock."""
    (tf_world.config_dir / "main.tf").write_text(SLOW_APPLY_TF)
    planned = tf_world.inv("infra.plan", "--env", "staging")
    assert planned.returncode == 0, planned.stderr
    proc = _start(tf_world, "infra.apply", "--env", "staging", "--yes")
    try:
        _wait_for_lock(tf_world, proc)
        time.sleep(1.0)  # the provisioner is running
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Two interrupts received" not in err, err
    assert not _lock_held(tf_world)
    state = tf_world.state()  # written on the way out: the resource is there, tainted
    assert [r["name"] for r in state["resources"]] == ["slow"]
