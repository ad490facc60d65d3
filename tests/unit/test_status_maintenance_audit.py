"""inv status's maintenance line sees a run with no end (audit of issues 13 and 16).

A maint.run SIGKILLed in a step leaves a start and no end in the journal; status read only
end records, so it showed the run before it ('last run ...: ok', exit 0) while the killed
step had left a Redis node stopped. And a failed or cut-off run said 'the run can be
resumed', which maint.run refuses for a finished run."""

from __future__ import annotations

import json
from typing import Any


def _append(env: Any, *records: dict[str, Any]) -> None:
    path = env.journal.path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps({"op": "maint.run", "env": env.name, **r}) + "\n")


def test_a_killed_run_is_shown_with_the_resume_command(ops_config: Any) -> None:
    from support.aws import aws_env

    from spywatcher_ops.status.records import last_maintenance

    env = aws_env(ops_config)
    args = {"plan": "sunday", "run_id": None, "steps": ["db-housekeeping", "db-engine"]}
    _append(
        env,
        {"at": "2026-11-29T11:00:00.000Z", "event": "start", "op_id": "aaaa11111111", "args": args},
        {"at": "2026-11-29T11:00:05.000Z", "event": "end", "op_id": "aaaa11111111", "outcome": "ok"},
    )
    assert last_maintenance(env)[0].level == "OK"
    _append(
        env,
        {"at": "2026-11-29T11:10:00.000Z", "event": "start", "op_id": "bbbb22222222", "args": args},
        {
            "at": "2026-11-29T11:10:01.000Z",
            "event": "step",
            "op_id": "bbbb22222222",
            "step": "maint-step",
            "status": "started",
            "index": 1,
            "step_name": "db-housekeeping",
        },
    )
    line = last_maintenance(env)[0]
    assert line.level == "WARN", line
    assert (
        line.text.startswith("run bbbb22222222 started 2026-11-29 11:10 UTC")
        and "has not finished" in line.text
    )
    assert "next step 1. db-housekeeping" in line.text
    assert line.hint == "unless it is running: inv maint.run --env staging --resume bbbb22222222"


def test_a_failed_run_points_at_its_report_not_at_a_resume(ops_config: Any) -> None:
    from support.aws import aws_env

    from spywatcher_ops.status.records import last_maintenance

    env = aws_env(ops_config)
    args = {"plan": "sunday", "run_id": None, "steps": ["db-housekeeping"]}
    _append(
        env,
        {"at": "2026-11-29T11:00:00.000Z", "event": "start", "op_id": "cccc33333333", "args": args},
        {
            "at": "2026-11-29T11:00:05.000Z",
            "event": "end",
            "op_id": "cccc33333333",
            "outcome": "cutoff",
            "result": {"state": "cutoff", "run_id": "cccc33333333"},
        },
    )
    line = last_maintenance(env)[0]
    assert line.level == "FAILED" and line.text.endswith(": cutoff"), line
    assert line.hint == "inv maint.report cccc33333333 --env staging says what was done and what was not"


def test_an_interrupted_run_points_at_the_resume(ops_config: Any) -> None:
    from support.aws import aws_env

    from spywatcher_ops.status.records import last_maintenance

    env = aws_env(ops_config)
    args = {"plan": "sunday", "run_id": None, "steps": ["db-housekeeping", "db-engine"]}
    _append(
        env,
        {"at": "2026-11-29T11:00:00.000Z", "event": "start", "op_id": "dddd44444444", "args": args},
        {
            "at": "2026-11-29T11:00:05.000Z",
            "event": "end",
            "op_id": "dddd44444444",
            "outcome": "interrupted",
            "result": {"state": "interrupted", "run_id": "dddd44444444"},
        },
    )
    line = last_maintenance(env)[0]
    assert line.level == "FAILED" and line.text.endswith(": interrupted"), line
    assert line.hint == "continue it: inv maint.run --env staging --resume dddd44444444"
