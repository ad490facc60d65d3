"""Help a responder can trust: every task shows an example of itself, a short flag means the
same thing in every task (or there is none), and shell completion is documented."""

from __future__ import annotations

import re
import sys
from collections import defaultdict

from support.paths import ROOT

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
