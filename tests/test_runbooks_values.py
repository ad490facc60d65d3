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
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from spywatcher_ops.core.clock import SystemClock
from spywatcher_ops.core.errors import BadInput, Refused
from spywatcher_ops.runbooks.check import check_invocation, load_collection, task_table
from spywatcher_ops.runbooks.engine import Options, Outcome, Walk
from spywatcher_ops.runbooks.model import parse
from spywatcher_ops.runbooks.timeline import Timeline
from spywatcher_ops.runbooks.values import argv_for, check_value

ROOT = Path(__file__).resolve().parents[1]
INV = [sys.executable, "-m", "invoke"]

HEADER = """---
title: {title}
summary: a test runbook
triggers: [test-alarm]
severity: low
owner: tests
last_reviewed: 2026-11-01
inputs:
  which:
    prompt: a runbook name
  to:
    prompt: a time
    kind: time
---

"""


def write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(HEADER.format(title=name) + body)
    return path


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


@pytest.fixture(scope="module")
def table() -> dict:
    return task_table(load_collection(str(ROOT)))


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


def test_every_task_declares_whether_it_changes_things(table: dict) -> None:
    collection = load_collection(str(ROOT))
    for name in collection.task_names:
        task = collection[name]
        assert isinstance(getattr(task, "read_only", None), bool), f"{name} is not an ops_task"
        spec = table[name]
        mutates = "--dry-run" in spec.flags or "--yes" in spec.flags
        assert spec.read_only is (not mutates), name
    assert table["db.verify"].read_only and table["db.window"].read_only
    assert not table["db.failover"].read_only and not table["runbook.run"].read_only


# through the engine ----------------------------------------------------------------------


class Scripted:
    """A terminal with typed answers, keeping what was said."""

    def __init__(self, answers: Sequence[str], interactive: bool = True) -> None:
        self.answers = list(answers)
        self.interactive = interactive
        self.said: list[str] = []

    def say(self, text: str = "", style: str | None = None) -> None:
        self.said.append(text)

    def markdown(self, text: str) -> None:
        self.said.append(text)

    def ask(self, prompt: str) -> str:
        self.said.append(prompt)
        return self.answers.pop(0)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bool]] = []

    def __call__(self, words: Sequence[str], read_only: bool = False) -> Outcome:
        self.calls.append((list(words), read_only))
        return Outcome(0, "", ["python", *words])


def walk(
    tmp_path: Path, body: str, table: dict, answers: Sequence[str] = (), **values: str
) -> tuple[Walk, Recorder, Scripted]:
    path = write(tmp_path / "books", "t", body)
    rb = parse(path.read_text(), name="t", path=path)
    recorder, term = Recorder(), Scripted(answers, interactive=bool(answers))
    options = Options(
        env="sandbox",
        incident="INC-1",
        yes=not answers,
        values={"env": "sandbox", "incident": "INC-1", "db_instance": "spywatcher-sandbox-db", **values},
    )
    w = Walk(
        rb,
        options,
        timeline=Timeline(tmp_path / "state", "INC-1", SystemClock()),
        terminal=term,  # type: ignore[arg-type]
        execute=recorder,
        clock=SystemClock(),
        table=table,
    )
    return w, recorder, term


def test_engine_asks_again_for_a_bad_value_and_passes_the_good_one_as_one_argument(
    tmp_path: Path, table: dict
) -> None:
    body = "## 1. Verify\n\n```sh run=diagnostic\ninv db.verify --env {env} --instance {which}\n```\n"
    w, recorder, term = walk(tmp_path, body, table, answers=["x db.failover --yes", "--yes", "restored-1"])
    w.run()
    assert recorder.calls == [(["inv", "db.verify", "--env", "sandbox", "--instance", "restored-1"], True)]
    assert sum("not a valid identifier for {which}" in line for line in term.said) == 2


def test_engine_refuses_a_diagnostic_step_whose_task_changes_things(tmp_path: Path, table: dict) -> None:
    # runbook.check would stop this runbook; the engine checks again on its own, on the exact argv.
    body = "## 1. Look\n\n```sh run=diagnostic\ninv db.failover --env {env}\n```\n"
    w, recorder, _ = walk(tmp_path, body, table)
    with pytest.raises(Refused, match="db.failover changes things"):
        w.run()
    assert recorder.calls == []
    ends = [r for r in w.timeline.records() if r["event"] == "run-end"]
    assert ends and ends[-1]["outcome"] == "failed"
    # Given --dry-run, the same task makes no change and may run in a diagnostic step.
    ok, recorder, _ = walk(
        tmp_path / "b",
        "## 1. Look\n\n```sh run=diagnostic\ninv db.failover --env {env} --dry-run\n```\n",
        table,
    )
    ok.run()
    assert recorder.calls == [(["inv", "db.failover", "--env", "sandbox", "--dry-run"], True)]


def test_engine_rechecks_values_recorded_by_an_earlier_run(tmp_path: Path, table: dict) -> None:
    body = "## 1. Verify\n\n```sh run=diagnostic\ninv db.verify --env {env} --instance {which}\n```\n\n## 2. Wait\n\nDo it.\n"
    w, _, _ = walk(tmp_path, body, table)
    w.timeline.write(
        {"event": "run-start", "run": "r1", "runbook": "t", "env": "sandbox", "steps": ["Verify", "Wait"]}
    )
    w.timeline.write({"event": "input", "run": "r1", "name": "which", "value": "x db.failover --yes"})
    w.opt.resume = True
    with pytest.raises(BadInput, match=r"\{which\} \(from the timeline\)='x db.failover --yes'"):
        w.prepare()


def test_argv_is_built_word_by_word_and_checked_as_one_task(table: dict) -> None:
    kinds = {"env": "environment", "to": "time", "name": "identifier"}
    argv = argv_for(
        "inv db.restore --env {env} --to={to} --name {name}",
        {"env": "sandbox", "to": "2026-11-25T14:03:00Z", "name": "a-b"},
        kinds,
    )
    assert argv == ["inv", "db.restore", "--env", "sandbox", "--to=2026-11-25T14:03:00Z", "--name", "a-b"]
    with pytest.raises(BadInput):
        argv_for("inv db.verify --instance {name}", {"name": "x db.failover --yes"}, kinds)
    # The exact argv: anything invoke would run as a second task is a problem.
    second = ["inv", "db.verify", "--env", "sandbox", "--instance", "x", "db.failover", "--yes"]
    assert any("one task per command" in p for p in check_invocation(second, table, runnable="mutating"))
    assert check_invocation(second[:6], table, runnable="diagnostic") == []
    # A value is one argument even when invoke would read it as a value with spaces.
    assert (
        check_invocation(
            ["inv", "db.verify", "--instance", "x db.failover --yes"], table, runnable="diagnostic"
        )
        == []
    )
    for kind, good, bad in [
        ("integer", "3", "3.5"),
        ("duration", "10m", "10 m"),
        ("environment", "staging", "Prod!"),
    ]:
        assert check_value("v", good, kind) == good
        with pytest.raises(BadInput):
            check_value("v", bad, kind)


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


def test_runbook_check_knows_the_kinds(tmp_path: Path, table: dict) -> None:
    from spywatcher_ops.runbooks.check import check_runbook

    text = (
        HEADER.format(title="k")
        .replace("    kind: time\n", "    kind: colour\n")
        .replace("    prompt: a runbook name\n", "    prompt: a runbook name\n    default: two words\n")
    )
    path = tmp_path / "k.md"
    path.write_text(text + "## 1. Look\n\n```sh run=diagnostic\ninv db.window --env {env}\n```\n")
    problems = [p.message for p in check_runbook(parse(path.read_text(), name="k", path=path), table)]
    assert any("input to: kind colour is unknown; use one of identifier, time" in p for p in problems), (
        problems
    )
    assert any("default of which='two words': not a valid identifier" in p for p in problems), problems
