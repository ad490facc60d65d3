"""Terraform.plan runs the caller's `meanwhile` work while terraform plans, and an
error or a SIGTERM during it stops terraform gracefully (one SIGINT): the state lock is
released, not left held by a SIGKILLed terraform. The real terraform binary and its S3 backend with the
DynamoDB lock on the session's moto server.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.infra import TF_LOCK_TABLE
from support.paths import ROOT

pytestmark = [pytest.mark.real]

RESOURCES = 1500  # enough for terraform to hold the state lock for a while (about 1-3 s)


def _slow_config(world: Any) -> None:
    body = ['terraform {\n  backend "s3" {}\n}\n']
    body += [f'resource "terraform_data" "r{i}" {{\n  input = "r{i}"\n}}\n' for i in range(RESOURCES)]
    (world.config_dir / "main.tf").write_text("\n".join(body))


def _infrastructure(world: Any) -> Any:
    from invoke import Config

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    config = Config(project_location=str(ROOT), runtime_path=str(world.conf_file))
    config.load_project()
    config.load_runtime()
    infra = build(load(config), "staging").parts.infrastructure()
    infra.prepare()
    return infra


def _lock_held(world: Any) -> bool:
    items = world.ddb().scan(TableName=TF_LOCK_TABLE)["Items"]
    return any("Info" in item for item in items)  # the lock item; the -md5 digest item has none


def _wait_for_lock(world: Any) -> None:
    deadline = time.monotonic() + 30
    while not _lock_held(world):
        assert time.monotonic() < deadline, "terraform never took the state lock"
        time.sleep(0.01)


def test_meanwhile_runs_while_terraform_holds_the_lock_and_the_plan_is_complete(tf_world, tmp_path: Path):
    _slow_config(tf_world)
    infra = _infrastructure(tf_world)
    out = tmp_path / "p.tfplan"
    seen: list[bool] = []

    def meanwhile() -> None:
        _wait_for_lock(tf_world)
        seen.append(not out.exists())  # terraform writes the plan file at its end

    planned = infra.plan(out, meanwhile=meanwhile)
    assert seen == [True]
    assert planned["changes"] is True and out.exists()
    assert len(planned["resource_changes"]) == RESOURCES
    assert not _lock_held(tf_world)


class Terminated(KeyboardInterrupt):
    """What core.cli raises for SIGTERM/SIGHUP: a signal terraform did not get."""


@pytest.mark.parametrize("error", [Terminated, RuntimeError])
def test_an_error_or_sigterm_while_terraform_plans_stops_it_gracefully(
    tf_world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error
):
    _slow_config(tf_world)
    infra = _infrastructure(tf_world)
    sent: list[int] = []
    real = subprocess.Popen.send_signal

    def recorded(proc: subprocess.Popen, sig: int) -> None:  # the real call, recorded
        sent.append(sig)
        real(proc, sig)

    monkeypatch.setattr(subprocess.Popen, "send_signal", recorded)

    def failing() -> None:
        _wait_for_lock(tf_world)
        raise error("stop")

    with pytest.raises(error):
        infra.plan(tmp_path / "p.tfplan", meanwhile=failing)
    assert sent == [signal.SIGINT]  # terraform did not get this one itself: exactly one, from us
    # ...and it stopped gracefully: a SIGKILLed terraform leaves the lock item behind
    assert not _lock_held(tf_world)
    again = infra.plan(tmp_path / "again.tfplan")  # -lock-timeout=0s: would fail on a held lock
    assert again["changes"] is True
