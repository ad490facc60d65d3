"""`inv dr.drill` as a scheduler and as a person watching it see it, on a real sandbox:
redirected, a short log of UTC-timestamped lines; --log FILE gets the same lines; -q only the
scorecard; in a terminal, one live line that shows the outage while it lasts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (.+)$")


def inv(state_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)},
    )


@pytest.mark.real
@pytest.mark.e2e
def test_a_redirected_default_drill_logs_at_most_40_timestamped_lines(sandbox_env, tmp_path):
    state_dir = sandbox_env.settings.state_dir
    log = tmp_path / "logs" / "drills.log"
    log.parent.mkdir()
    log.write_text("an earlier line\n")  # appended to, never truncated
    done = inv(state_dir, "dr.drill", "--no-up", "--log", str(log))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert 8 <= len(lines) <= 40, done.stderr
    parsed = [STAMP.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m]
    stamps = [m.group(1) for m in parsed if m]
    assert stamps == sorted(stamps)
    texts = [m.group(2) for m in parsed if m]
    for k, name in enumerate(["db-failover", "cache-failover", "pitr-restore", "snapshot-restore"], 1):
        mine = [t for t in texts if t.startswith(f"[{k}/4] {name}  ")]
        assert any("  fault +" in t for t in mine), (name, mine)
        assert mine[-1].split("  ")[1].startswith("MET RTO "), (name, mine)
    # the outage is on the log while it lasts: the failover's writer is seen DOWN
    assert any(t.startswith("[1/4] db-failover  fault +") and "db-write DOWN" in t for t in texts), texts
    assert log.read_text().splitlines() == ["an earlier line", *lines]

    quiet = inv(state_dir, "dr.drill", "--no-up", "--scenario", "db-failover", "-q")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.lstrip().startswith("scenario ") and "Plan:" not in quiet.stdout


@pytest.mark.real
@pytest.mark.e2e
def test_in_a_terminal_one_live_line_shows_the_stall_while_the_log_file_gets_lines(sandbox_env, tmp_path):
    state_dir = sandbox_env.settings.state_dir
    log = tmp_path / "live.log"
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "invoke",
            "dr.drill",
            "--no-up",
            "--scenario",
            "db-stall",
            "--param",
            "stall_s=3",
            "--log",
            str(log),
        ],
        cwd=str(ROOT),
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "COLUMNS": "160", "TERM": "xterm"},
        encoding="utf-8",
        timeout=120,
        dimensions=(40, 160),
    )
    # while the primary is frozen the live line says so (the old loop said "injecting")
    child.expect(r"\[1/1\] db-stall  fault \+\d+\.\d s  db-write DOWN \d+\.\d s")
    child.expect(r"\[1/1\] db-stall  fault \+[23]\.\d s  db-write DOWN [123]\.\d s")
    child.expect(r"scenario\s+\| RTO achieved")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    # no timestamped line on the terminal: those went to the file
    assert not re.search(r"^\d{4}-\d\d-\d\dT", child.before or "", re.M)
    logged = log.read_text().splitlines()
    assert logged and all(STAMP.match(line) for line in logged)
    assert any("db-stall  fault +" in line and "db-write DOWN" in line for line in logged), logged
