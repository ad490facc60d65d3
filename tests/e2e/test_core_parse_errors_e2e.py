"""invoke's own parse errors, through the real `inv`: exit 2 and one `error:` line naming the
value and what is accepted (spywatcher_ops/core/parse_errors.py); valid commands unaffected.
Before the hook each of these was invoke's bare message ("No idea what '--nope' is!"), exit 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

INV = str(Path(sys.executable).parent / "inv")  # invoke's own entry point, as users type it


def inv(args: list[str], state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [INV if os.path.exists(INV) else str(shutil.which("inv")), *args],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["dr.report"], ["error: dr.report: missing ID (ID: a run or drill id", "see inv --help dr.report"]),
        (
            ["dr.drill", "--nope"],
            ["error: --nope: not an option of dr.drill;", "its options: --dry-run, --env,", "--scenario"],
        ),
        (["dr.drill", "--senario", "db-failover"], ["error: --senario:", "did you mean --scenario?"]),
        (["dr.drill", "--scenario"], ["error: --scenario: needs a value: scenario name", "e.g. db-failover"]),
        (["dr.nope"], ["error: 'dr.nope': no task has that name;", "inv --list"]),
        (["dr.drlil"], ["error: 'dr.drlil':", "did you mean dr.drill?"]),
        (["--help", "dr.nope"], ["error: 'dr.nope': no task has that name;", "inv --list"]),
    ],
)
def test_an_invoke_parse_error_is_exit_2_in_one_error_line(
    args: list[str], needles: list[str], state_dir: Path
) -> None:
    done = inv(args, state_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr
    assert not (state_dir / "journal").exists()  # nothing ran


def test_valid_commands_are_unaffected(state_dir: Path) -> None:
    listing = inv(["--list"], state_dir)
    assert listing.returncode == 0 and "dr.drill" in listing.stdout and listing.stderr == "", listing.stderr
    helped = inv(["--help", "dr.drill"], state_dir)
    assert helped.returncode == 0 and "--scenario" in helped.stdout, helped.stderr
    scenarios = inv(["dr.scenarios"], state_dir)
    assert scenarios.returncode == 0 and "db-failover" in scenarios.stdout, scenarios.stderr
    # the boundary's own checks still answer first for values invoke parsed
    bad = inv(["dr.history", "--last", "abc"], state_dir)
    assert (bad.returncode, bad.stderr) == (2, "error: --last abc: not a whole number, e.g. --last 10\n")
