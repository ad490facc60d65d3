"""Runbooks that flow, in a real terminal (pexpect): line editing at prompts, `note` / `skip` /
`abort` at value prompts, a check that says which step comes next (`failed=N` / `ok=N`), a
change confirmed once, the step timer without the time at prompts, a runbook opened by the
alarm name, and machine-friendly listings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from support.paths import ROOT

INV = [sys.executable, "-m", "invoke"]

pytestmark = pytest.mark.e2e

FLOW = """---
title: Flow test runbook
summary: a check decides where to go
triggers: [flow-test-alarm-critical, the flow symptom]
severity: low
owner: tests
last_reviewed: 2026-11-29
inputs:
  scenario:
    prompt: a drill scenario name
  which:
    prompt: a runbook name
    default: flow
---

# Flow

## 1. Check the drill history

```sh run=diagnostic failed=4
inv dr.history --env {{env}} --scenario {{scenario}}
```

If it fails, go to step 4; the engine does.

## 2. Only when the check passed

Do the thing.

## 3. Change something

```sh run=mutating
inv runbook.show {{which}} --path {books} --raw
```

## 4. Record

Write down what happened.
"""

LEFT, UP, CTRL_D = "\x1b[D", "\x1b[A", "\x04"


def write_books(tmp_path: Path) -> Path:
    books = tmp_path / "books"
    books.mkdir()
    (books / "flow.md").write_text(FLOW.format(books=books))
    return books


def child_env(state_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "INVOKE_OPS_STATE_DIR": str(state_dir),
        "TERM": "xterm",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def spawn(args: list[str], state_dir: Path) -> pexpect.spawn:
    return pexpect.spawn(
        INV[0],
        INV[1:] + args,
        cwd=str(ROOT),
        env=child_env(state_dir),
        encoding="utf-8",
        timeout=60,
        dimensions=(60, 220),
    )


def inv(args: list[str], state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        INV + args,
        cwd=str(ROOT),
        env=child_env(state_dir),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def records(state_dir: Path, incident: str) -> list[dict]:
    done = inv(["runbook.timeline", "--incident", incident, "--json"], state_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["records"]


def test_a_failed_check_jumps_to_its_step_with_line_editing_and_a_note_at_a_value_prompt(tmp_path, state_dir):
    books = write_books(tmp_path)
    # opened by the alarm name the pager shows, not the runbook's file name
    child = spawn(
        ["runbook.run", "flow-test-alarm-critical", "--path", str(books), "--incident", "INC-FLOW"], state_dir
    )
    child.expect(r"Step 1/4: Check the drill history")
    child.expect(r"Value for \{scenario\}: a drill scenario name \(or note / skip / abort\): ")
    child.sendline("note")
    child.expect("Note for the timeline: ")
    child.sendline("paged at 03:12, looking at the drills first")
    child.expect(r"Value for \{scenario\}")
    # line editing: a typo fixed with the arrow key and Ctrl-D (without readline the value
    # would hold the escape sequence and be refused as not an identifier)
    child.send("no-suchX")
    child.send(LEFT)
    child.send(CTRL_D)
    child.sendline("")
    child.expect(r"\$ inv dr.history --env sandbox --scenario no-such(\x1b\[0m)?\r?\n")
    child.expect(r"exited 2")
    child.expect(r"going to step 4 \(steps 2, 3 not needed\)")
    child.expect(r"Step 4/4: Record")
    child.expect(r"Done\?")
    time.sleep(2.0)  # reading the step: not the step's own time
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1  # the failed check is a failed step: the run says so
    recs = records(state_dir, "INC-FLOW")
    notes = [r for r in recs if r["event"] == "note"]
    assert (
        notes and notes[0]["step"] == 1 and notes[0]["text"] == "paged at 03:12, looking at the drills first"
    )
    (jump,) = [r for r in recs if r["event"] == "jump"]
    assert (jump["step"], jump["to"], jump["because"], jump["over"]) == (1, 4, "failed", [2, 3])
    steps = {r["step"]: r for r in recs if r["event"] == "step"}
    assert steps[2]["outcome"] == steps[3]["outcome"] == "jumped-over"
    assert steps[4]["outcome"] == "acknowledged" and steps[4]["duration_s"] < 1.0, steps[4]

    # the next run recalls earlier answers with the up arrow (y, then no-such)
    child = spawn(["runbook.run", "flow", "--path", str(books), "--incident", "INC-FLOW-2"], state_dir)
    child.expect(r"Value for \{scenario\}")
    child.send(UP + UP)
    child.sendline("")
    child.expect(r"\$ inv dr.history --env sandbox --scenario no-such")
    child.expect(r"Done\?")
    child.sendline("abort")
    child.expect(pexpect.EOF)


def test_skip_and_abort_work_at_a_value_prompt_and_a_change_is_confirmed_once(tmp_path, state_dir):
    books = write_books(tmp_path)
    child = spawn(["runbook.run", "flow", "--path", str(books), "--incident", "INC-SKIP"], state_dir)
    child.expect(r"Value for \{scenario\}")
    child.sendline("skip")
    child.expect(r"step 1 skipped")
    child.expect(r"Step 2/4")
    child.expect(r"Done\?")
    child.sendline("y")
    child.expect(r"Step 3/4: Change something")
    child.expect(r"Value for \{which\}.*\[flow\]")
    child.sendline("")
    child.expect(r"Run it\? \[y / skip / abort / note\]")
    child.sendline("y")
    child.expect(r"Step 4/4")  # ran without a second question
    child.expect(r"Done\?")
    child.sendline("abort")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2 and "aborted at step 4" in child.before
    recs = records(state_dir, "INC-SKIP")
    steps = {r["step"]: r["outcome"] for r in recs if r["event"] == "step"}
    assert steps[1] == "skipped" and steps[3] == "done"
    (cmd,) = [r for r in recs if r["event"] == "command"]
    assert cmd["outcome"] == "ok" and cmd["argv"][-3:] == ["--path", str(books), "--raw"]

    child = spawn(["runbook.run", "flow", "--path", str(books), "--incident", "INC-ABORT"], state_dir)
    child.expect(r"Value for \{scenario\}")
    child.sendline("abort")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2 and "aborted at step 1" in child.before


def test_runbook_check_refuses_a_jump_that_goes_nowhere(tmp_path, state_dir):
    books = write_books(tmp_path)
    (books / "flow.md").write_text((books / "flow.md").read_text().replace("failed=4", "failed=9"))
    done = inv(["runbook.check", "--path", str(books)], state_dir)
    assert (
        done.returncode != 0
        and "failed=9: a runnable block can only jump forward" in done.stdout + done.stderr
    )


def test_listings_for_machines(tmp_path, state_dir):
    listed = inv(["runbook.list"], state_dir)
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert all(len(r) == 4 for r in rows), listed.stdout
    assert [r[0] for r in rows if "spywatcher-production-db-unavailable" in r[2]] == ["database-unavailable"]
    shown = inv(["runbook.show", "spywatcher-production-db-unavailable", "--raw"], state_dir)
    assert shown.returncode == 0 and "title: Database unavailable" in shown.stdout
