"""Runbooks that flow, in a real terminal (pexpect): line editing at prompts, `note` / `skip` /
`abort` at value prompts, a check that says which step comes next (`failed=N` / `ok=N`), a
change confirmed once, the step timer without the time at prompts, a runbook opened by the
alarm name, and machine-friendly listings."""

from __future__ import annotations

import pytest
from support.paths import ROOT

LEFT, UP, CTRL_D = "\x1b[D", "\x1b[A", "\x04"


SNAPSHOT_BOOK = """---
title: Snapshot
summary: one change
triggers: [x]
severity: low
owner: tests
last_reviewed: 2026-11-29
---

# Snapshot

## 1. Take a snapshot

```sh run=mutating
inv db.snapshot --env {env} --label before-fix
```
"""


class Scripted:
    def __init__(self, answers: list[str]) -> None:
        self.answers, self.interactive, self.said = list(answers), True, []

    def say(self, text: str = "", style: str | None = None) -> None:
        self.said.append(text)

    def markdown(self, text: str) -> None:
        self.said.append(text)

    def ask(self, prompt: str) -> str:
        self.said.append(prompt)
        return self.answers.pop(0)


@pytest.mark.parametrize(
    ("env", "production", "answers", "confirmed"),
    [
        ("staging", False, ["y"], ""),
        ("production", True, ["y", "production"], "production"),  # production: its name, "y" is not enough
    ],
)
def test_a_change_is_confirmed_once_and_the_task_gets_the_answer(
    tmp_path, env, production, answers, confirmed
):
    from spywatcher_ops.core.clock import SystemClock
    from spywatcher_ops.runbooks.check import load_collection, task_table
    from spywatcher_ops.runbooks.engine import CommandRunner, Options, Outcome, Walk
    from spywatcher_ops.runbooks.model import parse
    from spywatcher_ops.runbooks.timeline import Timeline

    table = task_table(load_collection(str(ROOT)))
    seen: list[tuple[list[str], str | None]] = []

    class Runner(CommandRunner):  # the real argv and confirmation, without starting the task
        def __call__(self, words, read_only=False, confirmed_env=None):
            seen.append((self.argv(words, confirmed=confirmed_env is not None), confirmed_env))
            return Outcome(0, "", [])

    path = tmp_path / "snap.md"
    path.write_text(SNAPSHOT_BOOK)
    term = Scripted(answers)
    walk = Walk(
        parse(SNAPSHOT_BOOK, name="snap", path=path),
        Options(env=env, incident="INC-1", production=production, values={"env": env, "incident": "INC-1"}),
        timeline=Timeline(tmp_path / "state", "INC-1", SystemClock()),
        terminal=term,
        execute=Runner(root=str(ROOT), state_dir=str(tmp_path), table=table),
        clock=SystemClock(),
        table=table,
    )
    walk.run()
    ((argv, given),) = seen
    assert argv[-5:] == ["--env", env, "--label", "before-fix", "--yes"] and given == confirmed
    prompts = [s for s in term.said if s.startswith(("Run it?", "Type "))]
    assert len(prompts) == len(answers)  # asked once (production: again until its name is typed)
