"""Runbook format and `runbook.check`: parsing, and every lint rule with the file
and line it names. Commands are checked against a real invoke Collection (a small
one built here, and the project's own through the CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT
from support.runbooks import BROKEN


def test_check_cli_exit_code_and_alarm_config(tmp_path: Path, state_dir: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "broken.md").write_text(
        BROKEN.replace("db.verify", "runbook.list").replace("db.restore", "runbook.lst")
    )
    config = tmp_path / "alarms.yaml"
    config.write_text("ops:\n  alarms: [orphan-alarm]\n")
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir))
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "-f", str(config), "runbook.check", "--path", str(books)],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        f"{books / 'broken.md'}:29: `inv runbook.lst --env {{env}} --bogus`: task runbook.lst does not exist; did you mean runbook.list"
        in done.stdout
    )
    assert "alarm orphan-alarm (ops.alarms) has no runbook" in done.stdout
    assert "problem(s) in" in done.stderr
