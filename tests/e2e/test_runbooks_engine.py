"""`inv runbook.run` as a responder uses it: a real terminal (pexpect), real `inv`
subprocesses as the runbook's commands, the timeline read back afterwards.

The test runbooks live in a tmp folder (`--path`); their commands are harmless
real tasks (`inv runbook.list`, `inv runbook.show`), and one that always fails
(`inv runbook.show` of an unknown runbook exits 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from support.paths import ROOT

INV = [sys.executable, "-m", "invoke"]

pytestmark = pytest.mark.e2e

SMOKE = """---
title: Smoke test runbook
summary: lists runbooks, asks a human, runs a change, records
triggers: [test-alarm]
severity: low
owner: tests
last_reviewed: 2026-11-01
inputs:
  which:
    prompt: a runbook name
    default: smoke
---

# Smoke

## 1. Look around

```sh run=diagnostic
inv runbook.list --path {books}
```

Text after the command.

## 2. Page the owner

Page the owner of {{env}} about {{incident}}:

```sh
pager send --to db-owner "incident {{incident}} on {{env}}"
```

## 3. Change something

```sh run=mutating
inv runbook.show {{which}} --path {books} --raw
```

## 4. Record

Write down what happened.
"""


def write_books(tmp_path: Path) -> Path:
    books = tmp_path / "books"
    books.mkdir()
    (books / "smoke.md").write_text(SMOKE.format(books=books))
    return books


def child_env(state_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"INVOKE_OPS_STATE_DIR": str(state_dir), "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "200"})
    return env


def spawn(args: list[str], state_dir: Path) -> pexpect.spawn:
    child = pexpect.spawn(
        INV[0],
        INV[1:] + args,
        cwd=str(ROOT),
        env=child_env(state_dir),
        encoding="utf-8",
        timeout=30,
        dimensions=(60, 220),
    )
    return child


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def inv(args: list[str], state_dir: Path, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        INV + args,
        cwd=str(ROOT),
        env=child_env(state_dir),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def timeline(state_dir: Path, incident: str) -> list[dict]:
    done = inv(["runbook.timeline", "--incident", incident, "--format", "json"], state_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["records"]


def test_walk_abort_resume_and_timeline(tmp_path: Path, state_dir: Path) -> None:
    books = write_books(tmp_path)
    # First session: the diagnostic runs by itself, the manual step waits for "y",
    # the input is asked (default taken), the change is shown and the responder aborts.
    child = spawn(["runbook.run", "smoke", "--path", str(books), "--incident", "INC-7"], state_dir)
    child.expect("Step 1/4: Look around")
    child.expect(r"\$ inv runbook.list --path")
    child.expect("lists runbooks, asks a human")  # the diagnostic's own output, shown live
    child.expect("Text after the command")
    child.expect("Page the owner of sandbox about INC-7")
    child.expect("Commands for you to run:")
    child.expect('  pager send --to db-owner "incident INC-7 on sandbox"')
    child.expect(r"Done\? \[y / skip / abort / note\]")
    child.sendline("maybe")
    child.expect("please answer one of")
    child.sendline("y")
    child.expect("Step 3/4")
    child.expect(r"Value for \{which\}: a runbook name \[smoke\]")
    child.sendline("")
    child.expect("This command CHANGES sandbox:")
    child.expect(r"\$ inv runbook.show smoke --path \S+ --raw")
    child.expect(r"Run it\?")
    child.sendline("abort")
    code, out = finish(child)
    assert code == 2
    assert "aborted at step 3" in out
    assert "--incident INC-7 --resume" in out
    assert "Write down what happened" not in out  # nothing after the abort

    # Starting again without --resume would redo finished steps: refused.
    again = inv(["runbook.run", "smoke", "--path", str(books), "--incident", "INC-7"], state_dir)
    assert again.returncode == 2
    assert "pass --resume" in again.stderr

    # Second session: resume picks up at step 3 with the value typed before.
    child = spawn(
        ["runbook.run", "smoke", "--path", str(books), "--incident", "INC-7", "--resume"], state_dir
    )
    child.expect("Resuming at step 3; steps 1, 2 already finished")
    child.expect(r"\$ inv runbook.show smoke")
    child.expect(r"Run it\?")
    child.sendline("note")
    child.expect("Note for the timeline:")
    child.sendline("restarted by hand | twice")
    child.expect(r"Run it\?")
    child.sendline("y")
    child.expect("title: Smoke test runbook")  # the command's output
    child.expect("Step 4/4: Record")
    child.expect(r"Done\?")
    child.sendline("skip")
    code, out = finish(child)
    assert code == 0, out
    assert "completed" in out
    assert "Look around" not in out  # step 1 was not run again

    records = timeline(state_dir, "INC-7")
    steps = [(r["step"], r["outcome"]) for r in records if r["event"] == "step"]
    assert steps == [(1, "done"), (2, "acknowledged"), (3, "aborted"), (3, "done"), (4, "skipped")]
    commands = [(r["step"], r["outcome"], r["exit"]) for r in records if r["event"] == "command"]
    assert commands == [(1, "ok", 0), (3, "ok", 0)]
    assert [r["outcome"] for r in records if r["event"] == "run-end"] == ["aborted", "completed"]
    assert {r["run"] for r in records} == {records[0]["run"]}  # one run, resumed
    assert [(r["name"], r["value"]) for r in records if r["event"] == "input"] == [("which", "smoke")]
    assert "lists runbooks" in records[1]["output"]

    md = inv(["runbook.timeline", "--incident", "INC-7"], state_dir)
    assert md.returncode == 0
    assert "# Incident INC-7: timeline" in md.stdout
    assert "| 3. Change something | note | restarted by hand \\| twice |" in md.stdout
    assert "| 2. Page the owner | acknowledged |" in md.stdout
    assert "## Command output" in md.stdout

    # The audit journal has the run too, with each step.
    journal = [
        json.loads(line) for line in (state_dir / "journal" / "sandbox.jsonl").read_text().splitlines()
    ]
    ops = [r for r in journal if r.get("op") == "runbook.run"]
    assert [r["event"] for r in ops if r["event"] in ("start", "end")] == ["start", "end", "start", "end"]
    assert any(
        r["event"] == "step" and r["step"] == "3. Change something" and r["status"] == "done" for r in ops
    )


def test_failed_command_edit_value_and_retry(tmp_path: Path, state_dir: Path) -> None:
    books = write_books(tmp_path)
    child = spawn(
        ["runbook.run", "smoke", "--path", str(books), "--incident", "INC-8", "--var", "which=no-such-book"],
        state_dir,
    )
    child.expect(r"Done\?")
    child.sendline("y")
    child.expect(r"Run it\?")
    child.sendline("y")
    child.expect("runbook no-such-book: unknown")  # the task's own error, shown
    child.expect("exited 2")
    child.expect(r"\[retry / continue / abort / note / edit \(which\)\]")
    child.sendline("edit")
    child.expect(r"Value for \{which\}: a runbook name \[no-such-book\]")
    child.sendline("smoke")
    child.expect(r"\$ inv runbook.show smoke")
    child.expect(r"Run it\?")
    child.sendline("y")
    child.expect(r"Done\?")
    child.sendline("y")
    code, out = finish(child)
    assert code == 0, out
    records = timeline(state_dir, "INC-8")
    commands = [
        (r["command"].split()[2], r["outcome"], r["exit"]) for r in records if r["event"] == "command"
    ]
    assert commands[1:] == [("no-such-book", "retried", 2), ("smoke", "ok", 0)]
    assert [r["value"] for r in records if r["event"] == "input"] == ["no-such-book", "smoke"]


def test_interrupt_is_recorded_and_resumable(tmp_path: Path, state_dir: Path) -> None:
    books = write_books(tmp_path)
    child = spawn(["runbook.run", "smoke", "--path", str(books), "--incident", "INC-9"], state_dir)
    child.expect(r"Done\?")
    child.sendintr()
    code, out = finish(child)
    assert code == 1  # stopped part-way, nothing to roll back: the walk resumes where it stopped
    assert "interrupted at step 2" in out and "nothing was rolled back" in out
    records = timeline(state_dir, "INC-9")
    assert [(r["step"], r["outcome"]) for r in records if r["event"] == "step"] == [
        (1, "done"),
        (2, "interrupted"),
    ]

    # --resume without an incident names the run it could continue.
    lost = inv(["runbook.run", "smoke", "--path", str(books), "--resume"], state_dir)
    assert lost.returncode == 2
    assert "INC-9 (smoke on sandbox, stopped at step 2)" in lost.stderr

    child = spawn(
        ["runbook.run", "smoke", "--path", str(books), "--incident", "INC-9", "--resume"], state_dir
    )
    child.expect("Resuming at step 2")
    child.expect(r"Done\?")
    child.sendline("y")
    child.expect(r"Value for \{which\}")
    child.sendline("")
    child.expect(r"Run it\?")
    child.sendline("skip")
    child.expect(r"Done\?")
    child.sendline("y")
    code, out = finish(child)
    assert code == 0, out


def test_non_interactive_without_yes_is_refused_before_the_first_step(
    tmp_path: Path, state_dir: Path
) -> None:
    books = write_books(tmp_path)
    done = inv(["runbook.run", "smoke", "--path", str(books), "--incident", "INC-10"], state_dir)
    assert done.returncode == 2
    assert "mutating steps and stdin is not a terminal" in done.stderr
    assert "--yes" in done.stderr
    assert "Look around" not in done.stdout  # not even the first (read-only) step ran
    assert not (state_dir / "incidents" / "INC-10").exists()


def test_non_interactive_with_yes_runs_every_step(tmp_path: Path, state_dir: Path) -> None:
    books = write_books(tmp_path)
    done = inv(["runbook.run", "smoke", "--path", str(books), "--incident", "INC-11", "--yes"], state_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "title: Smoke test runbook" in done.stdout
    records = timeline(state_dir, "INC-11")
    assert [(r["step"], r["outcome"]) for r in records if r["event"] == "step"] == [
        (1, "done"),
        (2, "shown"),
        (3, "done"),
        (4, "shown"),
    ]


def test_bad_input_names_what_is_accepted(tmp_path: Path, state_dir: Path) -> None:
    books = write_books(tmp_path)
    unknown = inv(["runbook.run", "nope", "--path", str(books)], state_dir)
    assert unknown.returncode == 2
    assert "runbook nope: unknown; known runbooks:" in unknown.stderr
    assert "data-corruption" in unknown.stderr and "smoke" in unknown.stderr
    shown = inv(["runbook.show", "nope"], state_dir)
    assert shown.returncode == 2 and "database-unavailable" in shown.stderr
    bad_var = inv(["runbook.run", "smoke", "--path", str(books), "--var", "colour=red", "--yes"], state_dir)
    assert (
        bad_var.returncode == 2
        and "--var colour: runbook smoke has no such input; its inputs: which" in bad_var.stderr
    )
    builtin = inv(
        ["runbook.run", "smoke", "--path", str(books), "--var", "env=production", "--yes"], state_dir
    )
    assert builtin.returncode == 2 and "--var env: built in" in builtin.stderr
    bad_id = inv(["runbook.run", "smoke", "--path", str(books), "--incident", "../x", "--yes"], state_dir)
    assert bad_id.returncode == 2 and "not a valid incident id" in bad_id.stderr
    no_timeline = inv(["runbook.timeline", "--incident", "INC-404"], state_dir)
    assert no_timeline.returncode == 2 and "no timeline" in no_timeline.stderr
    no_value = inv(["runbook.run", "data-corruption", "--incident", "INC-12", "--yes"], state_dir)
    assert no_value.returncode == 2
    assert "no terminal to ask for to; pass --var to=VALUE" in no_value.stderr
    bad_env = inv(["runbook.run", "smoke", "--path", str(books), "--env", "moon", "--yes"], state_dir)
    assert bad_env.returncode == 2 and "--env moon: unknown environment" in bad_env.stderr


def test_a_runbook_that_fails_check_is_not_run(tmp_path: Path, state_dir: Path) -> None:
    books = write_books(tmp_path)
    text = (books / "smoke.md").read_text().replace("inv runbook.list --path", "inv runbook.lst --path")
    (books / "smoke.md").write_text(text)
    done = inv(["runbook.run", "smoke", "--path", str(books), "--yes"], state_dir)
    assert done.returncode == 2
    assert "does not pass runbook.check" in done.stderr
    assert "task runbook.lst does not exist; did you mean runbook.list" in done.stderr
    assert not (state_dir / "incidents").exists()
