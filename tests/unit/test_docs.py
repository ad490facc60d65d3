"""Docs are tested: every task has a summary, every option has help, and the
README's task table lists every task (and nothing that does not exist)."""

from __future__ import annotations

import re
import subprocess
import sys

from support.paths import ROOT


def _collection():
    sys.path.insert(0, str(ROOT))
    try:
        import tasks
    finally:
        sys.path.remove(str(ROOT))
    return tasks.ns


def _all_tasks():
    ns = _collection()
    for name in ns.task_names:
        yield name, ns[name]


_HELP_CHECK = """
import sys
sys.path.insert(0, ".")
import tasks
ns = tasks.ns
for name in ns.task_names:
    task = ns[name]
    if not (task.__doc__ or task.body.__doc__ or "").strip():
        print(f"{name}: no docstring")
    for param in task.argspec(task.body).parameters:
        if param not in task.help:
            print(f"{name}: option --{param.replace('_', '-')} has no help")
"""


def test_every_task_has_a_summary_and_every_option_has_help():
    # In a fresh interpreter: invoke pops Task.help entries once a parser is built
    # from the collection, which other tests in this process do.
    done = subprocess.run(
        [sys.executable, "-c", _HELP_CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_readme_task_table_matches_the_collection():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\|\s*`inv ([a-z0-9_.-]+)", readme, flags=re.M))
    names = {name for name, _ in _all_tasks()}
    assert names - listed == set(), f"tasks missing from the README table: {sorted(names - listed)}"
    assert listed - names == set(), f"README lists tasks that do not exist: {sorted(listed - names)}"


def test_readme_has_exactly_the_two_setup_commands_and_ci_uses_one():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(\./dev \w+)", quick, flags=re.M)
    assert commands == ["./dev drill", "./dev test"]
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


def test_inv_list_shows_every_namespace_without_heavy_imports():
    code = (
        "import sys\n"
        "from invoke.main import program\n"
        "try:\n    program.run(['inv', '--list'], exit=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('boto3', 'botocore', 'kubernetes', 'fabric', 'paramiko', 'psycopg', 'redis', 'rich') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    assert "HEAVY=\n" in out or out.rstrip().endswith("HEAVY="), out
    for namespace in ("db.", "cache.", "sandbox.", "dr.", "runbook.", "app.", "cluster."):
        assert namespace in out, f"{namespace} missing from inv --list"
