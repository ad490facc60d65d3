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
from support.paths import ROOT

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
    # every figure says which target key judged it; restores have their own RTO target
    assert "0 s / 60.0 s (database)" in done.stdout or "/ 60.0 s (database)" in done.stdout
    assert "/ 60.0 min (restore)" in done.stdout and "/ 24.0 h (snapshot)" in done.stdout
    import json

    index = json.loads(inv(state_dir, "dr.report", "latest", "--json").stdout)
    keys = {
        i["name"]: [(f["metric"], f["target_key"], f["target_s"]) for f in i["figures"]]
        for i in index["items"]
    }
    assert keys["pitr-restore"] == [("RTO", "restore", 3600.0), ("RPO", "database", 300.0)]
    assert keys["snapshot-restore"] == [("RTO", "restore", 3600.0), ("RPO", "snapshot", 86400.0)]
    assert keys["db-failover"][0] == ("RTO", "database", 60.0)
    restore_md = Path(index["reports"]["json"]).parent / index["items"][2]["reports"]["markdown"]
    assert "| RTO |" in restore_md.read_text() and "(restore)" in restore_md.read_text()

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


@pytest.mark.real
@pytest.mark.e2e
def test_every_run_writes_an_index_and_latest_is_the_run(sandbox_env):
    import json

    state_dir = sandbox_env.settings.state_dir
    done = inv(state_dir, "dr.drill", "--no-up", "--scenario", "db-failover,cache-failover", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    run_id, drills = result["run_id"], [r["report_id"] for r in result["scorecard"]]
    index = json.loads(Path(result["index"]["json"]).read_text())
    assert (
        index["schema"] == "spywatcher-ops/run-index" and index["id"] == run_id and index["outcome"] == "met"
    )
    assert [i["name"] for i in index["items"]] == ["db-failover", "cache-failover"]
    assert [i["id"] for i in index["items"]] == drills
    folder = Path(result["index"]["html"]).parent
    for item in index["items"]:  # links are relative, next to the index, and each is there
        assert (folder / item["reports"]["html"]).is_file() and (
            folder / item["reports"]["markdown"]
        ).is_file()
        assert all(f["target_key"] for f in item["figures"]), item  # which key judged each figure
    page = Path(result["index"]["html"]).read_text()
    assert all(f'href="{i["reports"]["html"]}"' in page for i in index["items"])
    assert "](" in Path(result["index"]["markdown"]).read_text()

    latest = inv(state_dir, "dr.report", "latest", "--json")
    assert latest.returncode == 0, latest.stderr
    shown = json.loads(latest.stdout)
    assert shown["id"] == run_id and [i["id"] for i in shown["items"]] == drills
    # any unique prefix of 4+ characters: of the run, or of a drill
    by_prefix = inv(state_dir, "dr.report", run_id[:4])
    assert by_prefix.returncode == 0 and f"run {run_id}" in by_prefix.stdout, (
        by_prefix.stdout + by_prefix.stderr
    )
    one = json.loads(inv(state_dir, "dr.report", drills[1][:6], "--json").stdout)
    assert one["id"] == drills[1] and one["scenario"]["name"] == "cache-failover"
    short = inv(state_dir, "dr.report", drills[0][:3])
    assert short.returncode == 2 and "at least 4 characters" in short.stderr


def _journal(state_dir: Path, records: list[dict]) -> None:
    import json

    (state_dir / "journal").mkdir(parents=True, exist_ok=True)
    with open(state_dir / "journal" / "sandbox.jsonl", "a") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")


def test_an_ambiguous_prefix_is_exit_2_listing_the_candidates(tmp_path):
    starts = [
        {
            "event": "start",
            "op_id": op_id,
            "op": "dr.drill",
            "env": "sandbox",
            "at": at,
            "args": {"scenario": name},
        }
        for op_id, name, at in (
            ("abcd11110000", "db-failover", "2026-11-29T10:00:00Z"),
            ("abcd22220000", "cache-failover", "2026-11-29T10:01:00Z"),
            ("ef0133330000", "pitr-restore", "2026-11-29T10:02:00Z"),
        )
    ]
    _journal(tmp_path, starts)
    done = inv(tmp_path, "dr.report", "abcd")
    assert done.returncode == 2
    assert (
        "abcd11110000 (drill db-failover" in done.stderr
        and "abcd22220000 (drill cache-failover" in done.stderr
    )
    assert "give more characters" in done.stderr
    missing = inv(tmp_path, "dr.report", "9999")
    assert (
        missing.returncode == 2
        and "no such drill or run" in missing.stderr
        and "ef0133330000" in missing.stderr
    )


def test_history_fail_on_regression_exits_1_only_when_one_is_flagged(tmp_path):
    import json

    def line(i: int, rto: float) -> dict:
        return {
            "id": f"id{i:010d}",
            "at": f"2026-11-2{i}T10:00:00Z",
            "env": "sandbox",
            "kind": "sandbox",
            "scenario": "db-failover",
            "outcome": "met",
            "rto_s": rto,
            "rto_target_s": 60.0,
            "rto_verdict": "met",
            "rpo_s": 0.0,
            "rpo_target_s": 300.0,
            "rpo_verdict": "met",
            "lost_writes": 0,
            "report": None,
            "rto_target_key": "database",
            "rpo_target_key": "database",
        }

    path = tmp_path / "drills" / "history.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(line(i, 0.3)) + "\n" for i in range(1, 6)))
    steady = inv(tmp_path, "dr.history", "--fail-on-regression")
    assert steady.returncode == 0, steady.stdout + steady.stderr
    assert "targets: RTO 60.0 s (database), RPO 5.0 min (database)" in steady.stdout
    with open(path, "a") as fh:
        fh.write(json.dumps(line(7, 9.0)) + "\n")
    flagged = inv(tmp_path, "dr.history", "--fail-on-regression")
    assert "REGRESSION" in flagged.stdout
    assert (
        flagged.returncode == 1 and "regression(s) flagged: db-failover on sandbox: rto_s 9" in flagged.stderr
    )
    assert inv(tmp_path, "dr.history").returncode == 0  # without the flag: informative only


def test_restores_fall_back_to_the_database_target_without_a_restore_key():
    from spywatcher_ops.drills.runner import target_key

    assert target_key({"database": 60.0, "restore": 3600.0}, "restore") == "restore"
    assert target_key({"database": 60.0}, "restore") == "database"
    shown = inv(Path("/nonexistent-state"), "dr.scenarios", "--json")
    found = {s["name"]: s for s in __import__("json").loads(shown.stdout)["scenarios"]}
    assert (
        found["pitr-restore"]["rto_target"] == "restore" and found["pitr-restore"]["rto_target_s"] == 3600.0
    )
    assert found["db-failover"]["rto_target_s"] == 60.0
