"""Bad input caught before any task body, for every task at once (issue 10, item 9):
option values invoke cannot convert, empty strings, INVOKE_OPS_* numbers, and a
runbook run whose checks failed ending with exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

INV = [sys.executable, "-m", "invoke"]


def inv(args: list[str], state_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), NO_COLOR="1", COLUMNS="200")
    env.update(extra)
    return subprocess.run(
        INV + args,
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def one_line_exit_2(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dr.history", "--last", "abc"], "--last abc: not a whole number"),
        (["dr.drill", "--timeout", "abc"], "--timeout abc: not a whole number"),
        (["dr.drill", "--stable", "1.5"], "--stable 1.5: not a whole number"),
        (["app.scale", "--replicas", "abc", "--deployment", "backend"], "--replicas abc: not a whole number"),
    ],
)
def test_a_value_invoke_cannot_convert_is_exit_2_in_one_line(
    args: list[str], needle: str, state_dir: Path
) -> None:
    one_line_exit_2(inv(args, state_dir), needle)
    assert not (state_dir / "journal").exists()  # nothing ran


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dr.history", "--env", ""], "--env '': empty"),
        (["dr.drill", "--scenario", "", "--dry-run"], "--scenario '': empty"),
        (["db.restore", "--to", "latest", "--name", "", "--dry-run"], "--name '': empty"),
        (["runbook.show", ""], "NAME '': empty"),
    ],
)
def test_an_empty_string_is_exit_2_not_the_default(args: list[str], needle: str, state_dir: Path) -> None:
    one_line_exit_2(inv(args, state_dir), needle)
    assert not (state_dir / "journal").exists()


def test_numbers_in_invoke_ops_variables(state_dir: Path) -> None:
    fraction = inv(["dr.scenarios", "--json"], state_dir, INVOKE_OPS_TARGETS_RTO_DATABASE="0.5")
    assert fraction.returncode == 0, fraction.stderr
    failover = next(s for s in json.loads(fraction.stdout)["scenarios"] if s["name"] == "db-failover")
    assert failover["rto_target_s"] == 0.5, failover
    one_line_exit_2(
        inv(["dr.scenarios"], state_dir, INVOKE_OPS_TARGETS_RTO_DATABASE="abc"),
        "INVOKE_OPS_TARGETS_RTO_DATABASE=abc: ops.targets.rto.database must be a number",
    )
    one_line_exit_2(
        inv(["dr.scenarios"], state_dir, INVOKE_OPS_RETENTION_DAYS="1.5"),
        "INVOKE_OPS_RETENTION_DAYS=1.5: ops.retention.days must be a whole number",
    )


RUNBOOK = """---
title: Checks
summary: a test runbook whose check fails
triggers: [test-alarm]
severity: low
owner: tests
last_reviewed: 2026-11-01
---

## 1. Look

```sh run=diagnostic
inv runbook.list --path {books}
```

## 2. Verify

```sh run=diagnostic
inv runbook.show no-such-runbook --path {books}
```

## 3. Record

Write it down.
"""


def test_runbook_run_yes_ends_exit_1_naming_the_failed_checks(tmp_path: Path, state_dir: Path) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "checks.md").write_text(RUNBOOK.format(books=books))
    done = inv(["runbook.run", "checks", "--path", str(books), "--incident", "INC-3", "--yes"], state_dir)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "these steps failed: step 2 (Verify)" in done.stderr
    assert "completed. Timeline" not in done.stdout
    shown = inv(["runbook.timeline", "--incident", "INC-3", "--format", "json"], state_dir)
    records = json.loads(shown.stdout)["records"]
    assert [r["outcome"] for r in records if r["event"] == "run-end"] == ["completed-with-failures"]
    # Walked to the end: nothing left for --resume, and the incident can be run again.
    again = inv(["runbook.run", "checks", "--path", str(books), "--incident", "INC-3", "--resume"], state_dir)
    assert again.returncode == 2 and "no unfinished run" in again.stderr


def test_help_typed_after_a_task_with_a_positional_is_not_taken_as_its_value(state_dir: Path) -> None:
    """invoke hands `--help` to a task's positional (`inv runbook.show --help` looked up a runbook
    called --help); an option-looking positional is exit 2 pointing at `inv --help TASK`."""
    for args in (["runbook.show", "--help"], ["dr.report", "-h"]):
        done = inv(args, state_dir)
        one_line_exit_2(done, "looks like an option, not a value", "inv --help TASK")
