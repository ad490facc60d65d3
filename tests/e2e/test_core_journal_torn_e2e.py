"""A torn journal (issue 10, item 7): the writer never appends onto a torn last line,
readers skip and count it, `dr.report` never rewrites a report into a worse state than
the one on disk without saying why, and a journal deleted during a drill is no traceback.

Reproduced first: truncate the journal's last line and run any task: its `start`
record was glued onto the torn line and lost; `dr.report latest` then rewrote a finished
drill's reports from "met" to "unfinished"; deleting the journal mid-drill ended in
`ValueError: no start record for this drill in the journal`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.journal import tear
from support.paths import ROOT

from spywatcher_ops.core.journal import read

INV = [sys.executable, "-m", "invoke"]


# through inv, on the sandbox ---------------------------------------------------------------


def inv(args: list[str], state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        INV + args,
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def sandbox_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One sandbox for the tests below (each starts from an empty journal and reports)."""
    state_dir = tmp_path_factory.mktemp("torn") / "state"
    up = inv(["sandbox.up"], state_dir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield state_dir
    finally:
        down = inv(["sandbox.down", "--purge", "--yes"], state_dir)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture
def sandbox_up(sandbox_state: Path) -> Path:
    import shutil

    for folder in ("journal", "reports"):
        shutil.rmtree(sandbox_state / folder, ignore_errors=True)
    return sandbox_state


@pytest.mark.real
@pytest.mark.e2e
def test_a_torn_journal_never_turns_a_met_report_into_unfinished(sandbox_up: Path) -> None:
    state_dir = sandbox_up
    drill = inv(["dr.drill", "--scenario", "db-failover", "--no-up"], state_dir)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    journal = state_dir / "journal" / "sandbox.jsonl"
    # The run's own records (drill-run, its index) follow the drill's: cut them, as a crash
    # just after the drill's end record would, so that end record is the last line.
    lines = journal.read_bytes().splitlines(keepends=True)
    ends = [
        i
        for i, line in enumerate(lines)
        if json.loads(line).get("event") == "end" and json.loads(line).get("op") == "dr.drill"
    ]
    journal.write_bytes(b"".join(lines[: ends[-1] + 1]))
    assert read(journal)[-1]["event"] == "end"  # the drill's end record is the last line
    reports = sorted(p for p in (state_dir / "reports").glob("*.json") if "-run-" not in p.name)
    assert len(reports) == 1 and json.loads(reports[0].read_text())["outcome"] == "met"
    before = {p.name: p.read_text() for p in (state_dir / "reports").iterdir()}

    tear(journal)  # its end record, cut short
    again = inv(["dr.report", "latest"], state_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "MET" in said and "UNFINISHED" not in said
    assert "skipped 1 line(s) that are not records" in said
    assert "kept the report on disk, not re-rendered: the journal has no end record" in said
    assert {p.name: p.read_text() for p in (state_dir / "reports").iterdir()} == before

    # Any task that writes the journal now: its start record is not glued onto the torn line.
    snap = inv(["db.snapshot", "--label", "after-tear", "--yes"], state_dir)
    assert snap.returncode == 0, snap.stdout + snap.stderr
    assert "the last line was torn" in snap.stderr
    records = read(journal)
    assert len(records.corrupt) == 1
    starts = [r for r in records if r.get("event") == "start" and r.get("op") == "db.snapshot"]
    assert starts and starts[-1]["args"]["label"] == "after-tear"
    assert any(r.get("event") == "journal-repaired" for r in records)


@pytest.mark.real
@pytest.mark.e2e
def test_deleting_the_journal_during_a_drill_is_no_traceback(sandbox_up: Path) -> None:
    state_dir = sandbox_up
    journal = state_dir / "journal" / "sandbox.jsonl"
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), NO_COLOR="1", COLUMNS="200")
    proc = subprocess.Popen(
        INV + ["dr.drill", "--scenario", "db-failover", "--no-up"],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        r.get("step") == "fault" for r in read(journal)
    ):  # delete it once the fault is in: the drill is under way
        time.sleep(0.05)
    journal.unlink()
    out, err = proc.communicate(timeout=180)
    assert "Traceback" not in err, err
    assert proc.returncode == 0, out + err  # the drill itself was measured and met
    assert "no report" in out + err and "was deleted or cut short while it ran" in out + err
    assert "was deleted or replaced while this process wrote to it" in err
    assert read(journal)[0]["event"] == "journal-restarted"
