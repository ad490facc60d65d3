"""Core safety machinery: guards, the audit journal, the environment lock, the exit-code boundary."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from invoke import Context, Exit

from spywatcher_ops.core import config as cfg
from spywatcher_ops.core.cli import boundary
from spywatcher_ops.core.console import Console
from spywatcher_ops.core.errors import BadInput, Locked, NotReady, Refused, RolledBack
from spywatcher_ops.core.guards import OPT_IN_VAR, approve
from spywatcher_ops.core.journal import Journal, read, unfinished
from spywatcher_ops.core.lock import FileLock
from spywatcher_ops.core.plan import Plan, Step


class FixedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        self.t += 0.5
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _plan() -> Plan:
    return Plan("fail over the database", [Step("rds", "reboot_db_instance", {"ForceFailover": True})])


def test_dry_run_shows_the_exact_call_and_approves_nothing(ops_config, capsys):
    env = cfg.load(ops_config).env("staging")
    assert approve(_plan(), env, Console(), dry_run=True, yes=False) is False
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "rds.reboot_db_instance(ForceFailover=True)" in out


def test_confirmation_needed_non_interactive_without_yes_is_refused(ops_config):
    env = cfg.load(ops_config).env("staging")
    with pytest.raises(Refused, match="--yes"):
        approve(_plan(), env, Console(), dry_run=False, yes=False, confirm=True, interactive=False)
    assert approve(_plan(), env, Console(), dry_run=False, yes=True, confirm=True, interactive=False)


def test_production_needs_typed_name_or_yes_with_opt_in(ops_config, monkeypatch):
    env = cfg.load(ops_config).env("production")
    with pytest.raises(Refused, match=OPT_IN_VAR):
        approve(_plan(), env, Console(), dry_run=False, yes=True)
    monkeypatch.setenv(OPT_IN_VAR, "staging")  # opt-in for another environment does not count
    with pytest.raises(Refused):
        approve(_plan(), env, Console(), dry_run=False, yes=True)
    monkeypatch.setenv(OPT_IN_VAR, "production")
    assert approve(_plan(), env, Console(), dry_run=False, yes=True)
    monkeypatch.delenv(OPT_IN_VAR)
    with pytest.raises(Refused, match="does not match"):
        approve(_plan(), env, Console(), dry_run=False, yes=False, interactive=True, ask=lambda _: "prod")
    assert approve(
        _plan(), env, Console(), dry_run=False, yes=False, interactive=True, ask=lambda _: "production"
    )


def test_journal_records_start_steps_end_and_masks_secrets(tmp_path):
    journal = Journal(tmp_path / "j.jsonl", FixedClock(), {"os_user": "oncall"})
    with journal.operation("db.verify", "staging", {"instance": "x", "password": "hunter2"}) as op:
        op.step("connect", "ok", output="fine", auth_token="abc")
        journal.note_request_id("req-1")
    records = read(tmp_path / "j.jsonl")
    assert [r["event"] for r in records] == ["start", "step", "end"]
    assert records[0]["who"] == {"os_user": "oncall"}
    assert records[0]["args"] == {"instance": "x", "password": "***"}
    assert records[1]["auth_token"] == "***"
    assert records[2]["outcome"] == "ok" and records[2]["request_ids"] == ["req-1"]
    assert "hunter2" not in (tmp_path / "j.jsonl").read_text()


def test_journal_records_failure_outcome_and_finds_unfinished(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, FixedClock())
    with pytest.raises(NotReady):
        with journal.operation("dr.drill", "sandbox", {}):
            raise NotReady("standby down")
    end = read(path)[-1]
    assert end["outcome"] == "NotReady" and end["error"] == "standby down"
    journal.write({"event": "start", "op_id": "dead", "op": "dr.drill", "env": "sandbox"})
    with path.open("a") as fh:
        fh.write('{"torn')  # a crash mid-write must not hide the rest
    assert [r["op_id"] for r in unfinished(read(path))] == ["dead"]


def test_file_lock_refuses_a_second_holder_in_another_process(tmp_path):
    lock_path = tmp_path / "locks" / "sandbox.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from spywatcher_ops.core.lock import FileLock
            with FileLock(Path({str(lock_path)!r})).hold("alice", "dr.drill"):
                print("held", flush=True)
                sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Locked, match="alice running dr.drill"):
            with FileLock(lock_path).hold("bob", "db.restore"):
                pass
    finally:
        holder.communicate("\n", timeout=10)
    with FileLock(lock_path).hold("bob", "db.restore"):  # freed when the holder ended
        assert json.loads(lock_path.read_text())["owner"] == "bob"


@pytest.mark.parametrize(("error", "code"), [(BadInput("x"), 2), (NotReady("x"), 3), (RolledBack("x"), 4)])
def test_boundary_maps_errors_to_exit_codes(error, code):
    @boundary
    def body(c):
        raise error

    with pytest.raises(Exit) as caught:
        body(Context())
    assert caught.value.code == code and "error: x" in str(caught.value.message)
