"""Values in runbook commands (issue 10, item 5): each value is checked against its
input's kind and is ONE argument; a command that would run more than the task it shows
is refused; a diagnostic step never runs a task that changes things, whatever its label.

Reproduced first: `inv runbook.run data-corruption --var 'restore_name=x db.failover --yes'`
ran a real failover from a diagnostic step (the value was spliced into the command
string and split again into a second task).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import ROOT
from support.runbooks import write

INV = [sys.executable, "-m", "invoke"]


def env_for(state_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), TERM="dumb", NO_COLOR="1", COLUMNS="200")
    env.update(extra)
    return env


def inv(args: list[str], state_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        INV + args,
        cwd=str(ROOT),
        env=env_for(state_dir, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def journal(state_dir: Path) -> list[dict]:
    path = state_dir / "journal" / "sandbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# through inv ---------------------------------------------------------------------------


def test_a_value_is_never_split_into_a_second_task(tmp_path: Path, state_dir: Path) -> None:
    books = tmp_path / "books"
    write(
        books,
        "peek",
        f"## 1. Show it\n\n```sh run=diagnostic\ninv runbook.show {{which}} --path {books} --raw\n```\n",
    )
    attack = f"which=peek runbook.check --path {books}"
    done = inv(["runbook.run", "peek", "--path", str(books), "--var", attack, "--yes"], state_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    # One line naming the value and what is accepted; nothing ran, nothing was recorded.
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"--var which='peek runbook.check --path {books}': not a valid identifier" in done.stderr
    assert "runbook(s) checked" not in done.stdout
    assert "title: peek" not in done.stdout
    assert not (state_dir / "incidents").exists()

    # A good value still works, and runs exactly the one task.
    ok = inv(["runbook.run", "peek", "--path", str(books), "--var", "which=peek", "--yes"], state_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "title: peek" in ok.stdout


def test_values_of_each_kind_are_checked_before_anything_runs(tmp_path: Path, state_dir: Path) -> None:
    books = tmp_path / "books"
    write(
        books,
        "when",
        "## 1. Restore plan\n\n```sh run=diagnostic\ninv db.restore --env {env} --to {to} --dry-run\n```\n",
    )
    for value in ("yesterday", "2026-11-25 14:03", "2026-11-25T14:03:00", "--yes", "latest db.failover"):
        done = inv(["runbook.run", "when", "--path", str(books), "--var", f"to={value}", "--yes"], state_dir)
        assert done.returncode == 2, (value, done.stdout, done.stderr)
        assert "not a valid time for {to}; use ISO 8601 with a zone" in done.stderr, done.stderr
    assert not (state_dir / "incidents").exists()
    assert journal(state_dir) == []


def test_a_task_that_changes_things_refuses_to_run_as_a_read_only_command(state_dir: Path) -> None:
    # What the engine sets for every diagnostic command: the task's own declaration decides.
    refused = inv(["db.failover", "--env", "sandbox", "--yes"], state_dir, SPYWATCHER_OPS_READ_ONLY="1")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "changes things" in refused.stderr and "nothing was done" in refused.stderr
    assert journal(state_dir) == []
    read_only = inv(["dr.history", "--env", "sandbox"], state_dir, SPYWATCHER_OPS_READ_ONLY="1")
    assert read_only.returncode == 0, read_only.stderr


# on the sandbox ----------------------------------------------------------------------------


def database_nodes(state_dir: Path) -> list[tuple]:
    status = json.loads(inv(["sandbox.status", "--json"], state_dir).stdout)
    return sorted((n.get("name"), n.get("role"), n.get("port"), n.get("pid")) for n in status["database"])


@pytest.fixture
def sandbox_up(state_dir: Path) -> Iterator[None]:
    up = inv(["sandbox.up"], state_dir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield
    finally:
        down = inv(["sandbox.down", "--purge", "--yes"], state_dir)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.real
@pytest.mark.e2e
def test_a_diagnostic_step_cannot_be_turned_into_a_failover_on_the_sandbox(
    tmp_path: Path, state_dir: Path, sandbox_up: None, ops_config
) -> None:
    import psycopg

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    database = build(load(ops_config), "sandbox").database
    with psycopg.connect(**database.connection(None).kwargs(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")  # so db.verify passes
    books = tmp_path / "books"
    write(
        books,
        "check-db",
        "## 1. Verify the database\n\n```sh run=diagnostic\ninv db.verify --env {env} --instance {which}\n```\n",
    )
    before = database_nodes(state_dir)
    attack = "which=spywatcher-sandbox-db db.failover --yes"
    done = inv(["runbook.run", "check-db", "--path", str(books), "--var", attack, "--yes"], state_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not a valid identifier" in done.stderr
    # The data-corruption runbook as the issue ran it: refused before its first step.
    shipped = inv(
        [
            "runbook.run",
            "data-corruption",
            "--var",
            "restore_name=x db.failover --yes",
            "--var",
            "to=latest",
            "--yes",
        ],
        state_dir,
    )
    assert shipped.returncode == 2, shipped.stdout + shipped.stderr
    assert "--var restore_name='x db.failover --yes'" in shipped.stderr
    assert not [r for r in journal(state_dir) if r.get("op") in ("db.failover", "db.restore", "db.snapshot")]
    assert database_nodes(state_dir) == before  # the same primary, same pids: nothing failed over

    # The legitimate use of the same runbook still runs the one task.
    ok = inv(
        ["runbook.run", "check-db", "--path", str(books), "--var", "which=spywatcher-sandbox-db", "--yes"],
        state_dir,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    started = [r["op"] for r in journal(state_dir) if r.get("event") == "start"]
    assert started[-2:] == ["runbook.run", "db.verify"] and "db.failover" not in started, started
