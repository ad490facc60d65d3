"""Values in runbook commands (issue 10, item 5): each value is checked against its
input's kind and is ONE argument; a command that would run more than the task it shows
is refused; a diagnostic step never runs a task that changes things, whatever its label.

Reproduced first: `inv runbook.run data-corruption --var 'restore_name=x db.failover --yes'`
ran a real failover from a diagnostic step (the value was spliced into the command
string and split again into a second task).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from support.paths import ROOT
from support.runbooks import HEADER, write

from spywatcher_ops.core.clock import SystemClock
from spywatcher_ops.core.errors import BadInput, Refused
from spywatcher_ops.runbooks.check import check_invocation, load_collection, task_table
from spywatcher_ops.runbooks.engine import Options, Outcome, Walk
from spywatcher_ops.runbooks.model import parse
from spywatcher_ops.runbooks.timeline import Timeline
from spywatcher_ops.runbooks.values import argv_for, check_value


@pytest.fixture(scope="module")
def table() -> dict:
    return task_table(load_collection(str(ROOT)))


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
