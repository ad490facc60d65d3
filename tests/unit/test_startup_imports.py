"""What `inv` pays for at start-up (bench/inv_list.py measures it): the task modules
stay light, and invoke reads its YAML config files with libyaml (spywatcher_ops/invoke_yaml.py)
which must give exactly the data invoke's own pure-Python YAML gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from invoke.vendor import yaml as invoke_yaml
from support.paths import ROOT

TRICKY = """
a: yes
b: off
c: 0o17
d: 017
e: 1e3
f: 1.5e+3
g: .inf
h: 2026-11-25T14:03:00Z
i: 2026-11-25
j: null
k: ~
l: "02:00"
m: 02:00
n: [1, two, {three: 3}]
base: &base {x: 1, y: [a, b]}
merged: {<<: *base, y: c}
long: >
  folded
  text
"""


def _listing(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    prog = (
        "import sys\n"
        "from invoke.main import program\n"
        "try:\n    program.run(['inv', '--list'], exit=False)\nexcept SystemExit:\n    pass\n" + code
    )
    done = subprocess.run(
        [sys.executable, "-c", prog], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_inv_list_imports_only_the_task_modules_of_the_package():
    out = _listing(
        "ours = sorted(m for m in sys.modules if m.startswith('spywatcher_ops.')\n"
        "              and not hasattr(sys.modules[m], '__path__'))  # packages are free\n"
        "print('OURS=' + ','.join(ours))\n"
    )
    ours = out.rsplit("OURS=", 1)[1].strip().split(",")
    extra = [
        m
        for m in ours
        if not m.endswith(("tasks", ".render"))
        and m
        not in (
            "spywatcher_ops.bytecode",
            "spywatcher_ops.invoke_yaml",
            "spywatcher_ops.teardown",
            "spywatcher_ops.core.parse_errors",  # invoke's parse errors through the boundary
            "spywatcher_ops.backends.table",
        )
        and m not in ("spywatcher_ops.core.cli", "spywatcher_ops.core.errors", "spywatcher_ops.core.clock")
    ]
    assert extra == [], f"inv --list imports more than the task modules: {extra}"
    assert "spywatcher_ops.core.config" not in ours


def test_invoke_reads_its_yaml_config_with_libyaml_once_tasks_py_is_loaded():
    out = _listing("from invoke.config import Config\nprint('LOADER=' + Config._load_yaml.__module__)\n")
    assert "LOADER=spywatcher_ops.invoke_yaml" in out


@pytest.mark.parametrize("name", ["invoke.yaml", "TRICKY"])
def test_libyaml_gives_invoke_the_same_data_as_its_own_yaml(name: str, tmp_path: Path):
    from spywatcher_ops.invoke_yaml import load_yaml

    if name == "TRICKY":
        path = tmp_path / "tricky.yaml"
        path.write_text(TRICKY)
    else:
        path = ROOT / name
    expected = invoke_yaml.safe_load(path.read_text())
    got = load_yaml(None, path)  # type: ignore[arg-type]
    assert got == expected
    assert repr(got) == repr(expected)  # same types too (int vs float, date vs datetime)
    assert yaml.__with_libyaml__
