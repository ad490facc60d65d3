"""The runbooks we ship: they pass `inv runbook.check` against the real task
collection (CI runs this), they list and render, and each ends with a
verification and with what to record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

from spywatcher_ops.runbooks.library import SHIPPED

NAMES = {
    "database-unavailable",
    "data-corruption",
    "cache-unavailable",
    "database-credentials-compromised",
    "drill-failed",
    "service-down",
    "high-error-rate",
    "elevated-response-time",
    "high-cpu-memory",
    "low-disk-space",
    "replication-degraded",
    "cache-redundancy-lost",
}


def inv(args: list[str], state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.e2e
def test_every_shipped_runbook_passes_runbook_check(state_dir: Path) -> None:
    done = inv(["runbook.check"], state_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "12 runbook(s) checked" in done.stdout


@pytest.mark.e2e
def test_list_and_show(state_dir: Path) -> None:
    listed = inv(["runbook.list", "--json"], state_dir)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == NAMES
    assert all(r["severity"] and r["triggers"] and r["summary"] for r in rows.values())
    shown = inv(["runbook.show", "data-corruption"], state_dir)
    assert shown.returncode == 0, shown.stderr
    assert "Restore into a new instance" in shown.stdout
    assert "inv db.restore --env {env} --to {to} --name {restore_name}" in shown.stdout
    assert "run=mutating" not in shown.stdout  # rendered, not the source
    raw = inv(["runbook.show", "data-corruption", "--raw"], state_dir)
    assert raw.stdout == (SHIPPED / "data-corruption.md").read_text()
