"""The sandbox's own SSH host: started and stopped with the sandbox, and patched end
to end by `inv maint.run --env sandbox` (the os-patch step over fabric, for real)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.paths import ROOT

from spywatcher_ops.backends.sandbox import sshhost


def inv(state_dir: Path, plans_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "INVOKE_OPS_STATE_DIR": str(state_dir),
        "INVOKE_OPS_MAINTENANCE_PLANS_DIR": str(plans_dir),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def test_inv_maint_run_patches_the_sandbox_host(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    state_dir = env.settings.state_dir
    folder = sshhost.folder(env)
    boot_before = (folder / "boot_id").read_text()
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "sunday.yaml").write_text(
        "environments:\n  sandbox:\n    window: always\n    steps:\n      - step: os-patch\n"
        "        reboot_timeout_s: 60\n"
    )
    listed = inv(state_dir, plans, "maint.hosts", "--env", "sandbox", "--json")
    assert listed.returncode == 0, listed.stderr
    (host,) = json.loads(listed.stdout)["hosts"]
    assert (host["name"], host["pending_security"], host["pending_all"]) == ("sandbox-host", 2, 3)

    run = inv(state_dir, plans, "maint.run", "--env", "sandbox", "--yes", "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    packages = json.loads((folder / "packages.json").read_text())
    assert sorted(p["name"] for p in packages["installed"]) == ["linux-image-amd64", "openssl"]
    assert [p["name"] for p in packages["pending"]] == ["tzdata"]
    assert (folder / "boot_id").read_text() != boot_before  # it rebooted, and came back
    after = json.loads(inv(state_dir, plans, "maint.hosts", "--env", "sandbox", "--json").stdout)["hosts"][0]
    assert (after["reachable"], after["pending_security"], after["reboot_required"]) == (True, 0, False)


def test_a_host_that_does_not_come_back_in_time_stops_the_run(sandbox_env: Any, tmp_path: Path) -> None:
    env = sandbox_env
    folder = sshhost.folder(env)
    # the sandbox's package manager gets a kernel update again (its packages.json is the host's state)
    packages = json.loads((folder / "packages.json").read_text())
    packages["pending"] = [
        {
            "name": "linux-image-amd64",
            "from": "6.1.119-1",
            "to": "6.1.123-1",
            "security": True,
            "reboot": True,
        }
    ]
    (folder / "packages.json").write_text(json.dumps(packages))
    plans = tmp_path / "plans"
    plans.mkdir()
    # the host is down ~1 s after its reboot starts 1.3 s in: a 1 s wait cannot see it back
    (plans / "sunday.yaml").write_text(
        "max_errors: 5\nenvironments:\n  sandbox:\n    window: always\n    steps:\n"
        "      - step: os-patch\n        reboot_timeout_s: 1\n      - db-housekeeping\n"
    )
    run = inv(env.settings.state_dir, plans, "maint.run", "--env", "sandbox", "--yes", "--json")
    assert run.returncode == 1, run.stderr[-2000:]
    report = json.loads(run.stdout)
    first, second = report["steps"]
    assert first["status"] in ("failed", "rolled-back") and "did not answer SSH within 1 s" in first["error"]
    host = first["details"]["hosts"][0]
    assert (host["host"], host["status"]) == ("sandbox-host", "not-back")
    assert second["status"] == "not-started"  # max_errors 5 would go on: a host not back stops the run
    assert "run " in run.stderr and "failed" in run.stderr
    deadline = time.monotonic() + 30  # it comes back on its own afterwards
    while not sshhost.status(env)["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sshhost.status(env)["running"]
