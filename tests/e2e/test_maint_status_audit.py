"""maint.status and maint.report latest show the run worked on last, and maint.status lists
the run ids (audit of issue 13). A run killed mid-step, then a run refused because of it
(pre-check: unfinished run), then the killed one resumed to completion: maint.status and
maint.report latest showed the refused run as the last one (runs were ordered by their first
start), and 'inv maint.status lists them' listed no run id in text mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.paths import ROOT

STEPS = ["db-housekeeping"]


def _rec(at: str, event: str, op_id: str, **more: Any) -> dict[str, Any]:
    return {
        "at": f"2026-11-29T11:50:{at}Z",
        "event": event,
        "op_id": op_id,
        "op": "maint.run",
        "env": "sandbox",
        **more,
    }


def _args(run_id: str | None) -> dict[str, Any]:
    return {"plan": "sunday", "run_id": run_id, "resume_of": run_id, "steps": STEPS, "window": "always"}


def _step(at: str, op_id: str, status: str) -> dict[str, Any]:
    return _rec(
        at, "step", op_id, step="maint-step", status=status, index=1, step_name=STEPS[0], duration_s=0.1
    )


def _journal(state: Path) -> None:
    records = [
        # run killed in its step: no end
        _rec("31.000", "start", "aaaa11111111", args=_args(None)),
        _rec("31.001", "step", "aaaa11111111", step="run-id", status="ok", run_id="aaaa11111111"),
        _step("32.000", "aaaa11111111", "started"),
        # a new run refused by the unfinished one
        _rec("34.000", "start", "bbbb22222222", args=_args(None)),
        _rec("34.001", "step", "bbbb22222222", step="run-id", status="ok", run_id="bbbb22222222"),
        _rec("35.000", "end", "bbbb22222222", outcome="NotReady", error="pre-check failed"),
        # the killed run resumed and finished
        _rec("39.000", "start", "cccc33333333", args=_args("aaaa11111111")),
        _step("40.000", "cccc33333333", "started"),
        _step("41.000", "cccc33333333", "ok"),
        _rec(
            "44.000",
            "end",
            "cccc33333333",
            outcome="ok",
            result={"state": "complete", "run_id": "aaaa11111111"},
        ),
    ]
    (state / "journal").mkdir(parents=True)
    (state / "journal" / "sandbox.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _inv(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )


def test_status_and_report_latest_show_the_resumed_run_and_list_the_ids(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _journal(state)
    done = _inv(state, "maint.status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["last"]["id"] == "aaaa11111111"
    done = _inv(state, "maint.status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("sunday on sandbox (run aaaa11111111): COMPLETE")
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert listed == ["aaaa11111111", "bbbb22222222"]  # newest work first
    done = _inv(
        state, "maint.report", "latest", "--env", "sandbox", "--report-dir", str(tmp_path / "r"), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "aaaa11111111"
