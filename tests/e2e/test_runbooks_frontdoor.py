"""The application-incident runbooks: every configured alarm has one (and `inv oncall` finds it),
the runbook README is generated and checked, and each new runbook is walked end to end through a
real terminal on a real sandbox (its diagnostics run; the steps that need a cluster do not apply
there: their diagnostics fail and are continued past, their changes are skipped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from support.paths import ROOT

from spywatcher_ops.runbooks.library import load_all

NEW = ["service-down", "high-error-rate", "elevated-response-time", "high-cpu-memory", "low-disk-space"]


def test_runbook_check_fails_on_a_stale_readme_and_write_readme_fixes_it(tmp_path: Path, state_dir: Path):
    """Through `inv`, on a copy of the repository's runbooks folder (the real one stays untouched)."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".ops",
            "__pycache__",
            "*.egg-info",
            ".mypy_cache",
            ".ruff_cache",
            ".pytest_cache",
        ),
    )
    readme = copy / "runbooks" / "README.md"
    readme.write_text(
        readme.read_text().replace("| [service-down](service-down.md) |", "| [gone](gone.md) |")
    )
    environ = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir), "PYTHONPATH": str(copy)}

    def inv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=copy,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = inv("runbook.check")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "runbooks/README.md:" in done.stdout and "missing service-down; lists gone" in done.stdout
    done = inv("runbook.check", "--write-readme")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| [service-down](service-down.md) | critical |" in readme.read_text()


# --- walked through a real terminal on the sandbox -----------------------------------------


def _walk(state_dir: Path, name: str, incident: str, run: tuple[str, ...] = ()) -> tuple[str, int | None]:
    """Walk `name` in a real terminal; the changes whose command starts with one of `run` are made,
    every other change is skipped."""
    env = dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), TERM="dumb", NO_COLOR="1", COLUMNS="200")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "invoke", "runbook.run", name, "--env", "sandbox", "--incident", incident],
        cwd=str(ROOT),
        env=env,
        encoding="utf-8",
        timeout=90,
        dimensions=(60, 220),
    )
    transcript: list[str] = []
    answers = [
        (r"Done\? ", "y"),  # a manual step, read
        (r"Run it\? ", "skip"),  # a change for the cluster or RDS: does not apply to the sandbox
        (r"\[retry / continue / abort", "c"),  # a diagnostic that needs a cluster failed: read, go on
        (r"Value for \{node\}", "ip-10-0-1-10.ec2.internal"),
        (r"Go on\? \[y/N\] ", "y"),  # the task's own confirmation, after the engine's
    ]
    while True:
        i = child.expect([p for p, _ in answers] + [pexpect.EOF])
        transcript.append(child.before + (child.after if isinstance(child.after, str) else ""))
        if i == len(answers):
            break
        if answers[i][0] == r"Run it\? " and any(f"$ inv {c}" in child.before for c in run):
            child.sendline("y")
            continue
        child.sendline(answers[i][1])
    child.close()
    return "".join(transcript), child.exitstatus


@pytest.mark.parametrize("name", NEW)
def test_walk_each_new_runbook_on_the_sandbox(sandbox_env: Any, name: str):
    state_dir = sandbox_env.settings.state_dir
    incident = f"INC-{name}"
    transcript, code = _walk(state_dir, name, incident)
    runbook = next(rb for rb in load_all() if rb.name == name)
    for step in runbook.steps:
        assert f"Step {step.number}/{len(runbook.steps)}: {step.title}" in transcript, (
            step.title,
            transcript,
        )
    # `inv status` ran for real on the sandbox in the first look and in the verification
    assert "$ inv status --env sandbox" in transcript
    assert "OK      database     spywatcher-sandbox-db: primary" in transcript
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "runbook.timeline", "--incident", incident, "--format", "json"],
        cwd=ROOT,
        env={**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    records = records.get("records", records) if isinstance(records, dict) else records
    commands = [r for r in records if r.get("kind", r.get("event")) == "command"]
    ran = {(" ".join(r.get("argv") or []).split("invoke ")[-1], r.get("outcome")) for r in commands}
    assert ("status --env sandbox", "ok") in ran, ran
    skipped = [r for r in commands if r.get("outcome") == "skipped"]
    assert len(skipped) == sum(1 for s in runbook.steps for b in s.runnable if b.run == "mutating")
    assert code is not None  # the run ended by itself


def test_walk_credentials_compromised_rotates_the_sandbox_password_for_real(sandbox_env: Any):
    import json as _json

    state_dir = sandbox_env.settings.state_dir
    secrets = sandbox_env.database.box.secrets.path
    before = _json.loads(secrets.read_text())["postgres"]["app"]
    transcript, code = _walk(
        state_dir, "database-credentials-compromised", "INC-leak", run=("db.rotate-credentials",)
    )
    assert "new password set (alter-role), logged in with, and current in" in transcript, transcript
    after = _json.loads(secrets.read_text())["postgres"]["app"]
    assert after != before
    assert "$ inv db.verify --env sandbox --instance spywatcher-sandbox-db" in transcript
    assert code is not None
