"""Every `inv TASK --option` a README shows is a real task with that option: a reader
who copies an example must not get invoke's "No idea what ... is" at 3 a.m.

Checked: inline code spans and fenced code blocks of the README and the READMEs of
drills/, maintenance/ and runbooks/ (the runbooks' own commands are runbook.check's).
Core options (`inv --list`, `inv --help TASK`, `inv -f FILE`) are invoke's, not a task's.
"""

from __future__ import annotations

import re
import sys

import pytest
from support.paths import ROOT

DOCS = ["README.md", "drills/README.md", "maintenance/README.md", "runbooks/README.md"]
CORE_OPTIONS = {"list", "help", "print-completion-script", "version"}
# `inv [-f FILE] NAME rest-of-command`, the rest up to a shell separator or a comment
COMMAND = re.compile(r"\binv\s+(?:-f\s+\S+\s+)?([a-z][a-z0-9_.-]*)([^|;&#`\n]*)")


def _collection():
    sys.path.insert(0, str(ROOT))
    try:
        import tasks
    finally:
        sys.path.remove(str(ROOT))
    return tasks.ns


def _snippets(text: str) -> list[str]:
    blocks = re.findall(r"```[\w-]*\n(.*?)```", text, flags=re.S)
    outside = re.sub(r"```[\w-]*\n.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", outside) + [line for b in blocks for line in b.splitlines()]


def _options(task) -> set[str]:
    return {p.replace("_", "-") for p in task.argspec(task.body).parameters}


def unknown_commands(text: str, ns) -> list[str]:
    names = set(ns.task_names)
    problems = []
    for snippet in _snippets(text):
        for match in COMMAND.finditer(snippet):
            name, rest = match.group(1), match.group(2)
            if name not in names:
                problems.append(f"{snippet!r}: no task {name}")
                continue
            known = _options(ns[name]) | CORE_OPTIONS
            for option in re.findall(r"(?<![\w-])--([a-z][a-z-]*)", rest):
                if option not in known:
                    problems.append(f"{snippet!r}: {name} has no --{option}")
    return problems


@pytest.mark.parametrize("doc", DOCS)
def test_every_inv_command_in_the_docs_exists_with_its_options(doc):
    text = (ROOT / doc).read_text()
    assert unknown_commands(text, _collection()) == []


def test_the_check_finds_a_wrong_task_and_a_wrong_option():
    text = "Run `inv db.snapshot --lable x`, then\n```sh\ninv db.snapshots --env staging\ninv db.snapshoot\n```\n"
    problems = unknown_commands(text, _collection())
    assert len(problems) == 2, problems
    assert "db.snapshot has no --lable" in problems[0]
    assert "no task db.snapshoot" in problems[1]
