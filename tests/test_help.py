"""Help a responder can trust: every task shows an example of itself, a short flag means the
same thing in every task (or there is none), and shell completion is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tasks  # noqa: E402 - the root collection, as `inv` loads it


def walk(col, prefix=""):
    for name, task in col.tasks.items():
        yield prefix + name, task
    for sub_name, sub in col.collections.items():
        yield from walk(sub, prefix + sub_name + ".")


def test_every_task_has_an_example_of_itself():
    missing, wrong = [], []
    for name, task in walk(tasks.ns):
        doc = task.body.__doc__ or ""
        found = re.findall(r"Example: inv ([\w.-]+)", doc)
        if not found:
            missing.append(name)
        elif name not in found and not any(f.split(".")[-1] == name for f in found):
            wrong.append((name, found))
    assert not missing, f"tasks without an `Example: inv ...` line in their docstring: {missing}"
    assert not wrong, f"examples that do not show their own task: {wrong}"


def test_a_short_flag_means_one_option_everywhere():
    from spywatcher_ops.core.cli import SHORT_FLAGS

    meanings: dict[str, set[str]] = defaultdict(set)
    for _name, task in walk(tasks.ns):
        for arg in task.get_arguments():
            for flag in arg.names[1:]:
                meanings[flag].add(arg.names[0])
    assert {flag: longs for flag, longs in meanings.items() if len(longs) > 1} == {}
    assert {flag: next(iter(longs)) for flag, longs in meanings.items()} == {
        short: long for long, short in SHORT_FLAGS.items() if short in meanings
    }


def test_help_shows_the_example_and_the_short_flags():
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--help", "dr.report"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Example: inv dr.report latest" in done.stdout
    assert "-j, --json" in done.stdout


def test_the_readme_says_how_to_turn_on_shell_completion():
    text = (ROOT / "README.md").read_text()
    assert "inv --print-completion-script bash" in text
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--print-completion-script", "bash"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "complete" in done.stdout
