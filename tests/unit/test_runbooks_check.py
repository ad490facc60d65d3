"""Runbook format and `runbook.check`: parsing, and every lint rule with the file
and line it names. Commands are checked against a real invoke Collection (a small
one built here, and the project's own through the CLI)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from invoke import Collection
from support.runbooks import BROKEN

from spywatcher_ops.core.cli import ops_task as task
from spywatcher_ops.runbooks.check import check_alarms, check_command, check_runbook, task_table
from spywatcher_ops.runbooks.model import Block, parse, substitute


@task(help={"to": "t", "name": "n", "env": "e", "dry_run": "d", "wait": "w", "jobs": "j", "yes": "y"})
def restore(c, to=None, name=None, env=None, dry_run=False, wait=True, jobs=4, yes=False):
    """Restore."""


@task(help={"env": "e", "instance": "i"})
def verify(c, env=None, instance=None):
    """Verify."""


@task
def show(c, name):
    """Show by name (a positional)."""


def table():
    ns = Collection()
    db = Collection("db")
    db.add_task(restore)
    db.add_task(verify)
    db.add_task(show)
    ns.add_collection(db)
    return task_table(ns)


def test_commands_are_checked_against_the_real_task_options() -> None:
    t = table()
    assert (
        check_command("inv db.restore --env {env} --to {to} --name x --no-wait", t, runnable="mutating") == []
    )
    assert check_command("inv db.verify --env {env}", t, runnable="diagnostic") == []
    assert check_command("inv db.show somebook", t, runnable=None) == []
    (missing,) = check_command("inv db.restor --env {env}", t, runnable=None)
    assert "task db.restor does not exist; did you mean db.restore" in missing
    (flag,) = check_command("inv db.restore --env {env} --too 1", t, runnable=None)
    assert "--too: task db.restore has no such option; did you mean --to?" in flag
    assert "--dry-run" in flag  # the accepted options are listed
    (value,) = check_command("inv db.restore --env {env} --name", t, runnable=None)
    assert "--name: needs a value" in value
    (jobs,) = check_command("inv db.restore --env {env} --jobs many", t, runnable=None)
    assert "--jobs many: db.restore expects a whole number" in jobs
    (short,) = check_command("inv db.restore -e {env}", t, runnable=None)
    assert "-e: use the long option name" in short
    (switch,) = check_command("inv db.restore --env {env} --yes=1", t, runnable=None)
    assert "is a switch and takes no value" in switch
    (positional,) = check_command("inv db.show", t, runnable=None)
    assert "db.show needs --name" in positional
    (two,) = check_command("inv db.verify --env {env} db.show x", t, runnable=None)
    assert "takes no further arguments (one task per command)" in two


def test_runnable_commands_must_target_the_chosen_environment_and_diagnostics_must_not_mutate() -> None:
    t = table()
    (no_env,) = check_command("inv db.verify", t, runnable="diagnostic")
    assert "add --env {env}" in no_env
    (fixed,) = check_command("inv db.verify --env production", t, runnable="diagnostic")
    assert "--env production: hard-coded environment; use --env {env}" in fixed
    (mutates,) = check_command("inv db.restore --env {env} --to {to}", t, runnable="diagnostic")
    assert "mark the block run=mutating, or add --dry-run" in mutates
    assert check_command("inv db.restore --env {env} --to {to} --dry-run", t, runnable="diagnostic") == []
    (shell,) = check_command("aws rds describe-db-instances", t, runnable="mutating")
    assert "a runnable block holds one `inv` command" in shell
    assert check_command("aws rds describe-db-instances", t, runnable=None) == []  # shown to a human: fine


def test_a_broken_runbook_gets_file_line_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text(BROKEN)
    runbook = parse(BROKEN, name="broken", path=path)
    problems = [str(p) for p in check_runbook(runbook, table(), today=date(2026, 11, 26))]
    where = str(path)
    expected = [
        f"{where}:1: front matter: `summary` is missing",
        f"{where}:3: front matter: `triggers` is missing",
        f"{where}:4: front matter: severity urgent: use one of critical, high, medium, low",
        f"{where}:6: front matter: last_reviewed 2099-01-01: is in the future",
        f"{where}:9: `inv db.nope --x`: task db.nope does not exist",
        f"{where}:13: a runnable block holds exactly one command; this one has 2",
        f"{where}:18: step 3: expected step 2",
        f"{where}:18: step 3: placeholder {{when}} is not built in",
        f"{where}:20: run=sometimes: use run=diagnostic (read-only) or run=mutating",
        f"{where}:24: code block attribute colour=red: accepted are run=diagnostic, run=mutating, manual",
        f"{where}:29: `inv db.restore --env {{env}} --bogus`: --bogus: task db.restore has no such option",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), f"missing: {line}\n" + "\n".join(problems)
    assert len(problems) == len(expected), "\n".join(problems)


def test_parsing_keeps_reading_order_and_placeholders_are_strict(tmp_path: Path) -> None:
    text = """---
title: T
---
## 1. Mixed

Before.

```sh run=diagnostic
inv db.verify --env {env} \\
  --instance {name}
```

Between `{env}`; shell ${home} and JSON '{"a": 1}' are left alone.

```sh
echo shown only
```

```sh run=mutating
inv db.restore --env {env}
```
After.
"""
    rb = parse(text, name="t", path=tmp_path / "t.md")
    (step,) = rb.steps
    kinds = [type(s).__name__ if isinstance(s, Block) else s.splitlines()[0] for s in step.segments()]
    assert kinds == [
        "Before.",
        "Block",
        "Between `{env}`; shell ${home} and JSON '{\"a\": 1}' are left alone.",
        "Block",
        "After.",
    ]
    assert step.kind == "mutating"
    assert step.runnable[0].commands() == [(9, "inv db.verify --env {env} --instance {name}")]
    assert step.placeholders() == ["env", "name"]
    assert substitute("x {env} ${env} {other}", {"env": "prod"}) == "x prod ${env} {other}"


def test_runbooks_never_take_secrets_as_inputs(tmp_path: Path) -> None:
    text = "---\ninputs:\n  db_password: {prompt: the password}\n---\n## 1. A\n\nx {db_password}\n"
    problems = [str(p) for p in check_runbook(parse(text, name="s", path=tmp_path / "s.md"), table())]
    assert any(":2: front matter: input db_password looks like a secret" in p for p in problems), problems


def test_alarms_in_config_need_a_runbook(tmp_path: Path) -> None:
    rb = parse("---\ntriggers: [db-down, slow pages]\n---\n", name="a", path=tmp_path / "a.md")
    (problem,) = check_alarms([rb], ["db-down", "cache-down"])
    assert "alarm cache-down (ops.alarms) has no runbook" in str(problem)
