"""`inv dr.drill --scenario full-rebuild` end to end on the real sandbox: built by
terraform (deploy/terraform/sandbox), destroyed by terraform except its backup
store, rebuilt through infra.redeploy's stages; RTO on the writer's path, RPO
from the writer's acknowledged writes, the stage table in the report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.real]


@pytest.fixture
def cli(tmp_path):
    conf = tmp_path / "ops.yaml"
    conf.write_text(yaml.safe_dump({"ops": {"state_dir": str(tmp_path / "state")}}))
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "COLUMNS": "200"}

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["inv", "-f", str(conf), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    yield run
    run("sandbox.down", "--purge", "--yes", timeout=120)


def ok(result, code: int = 0):
    assert result.returncode == code, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def test_full_rebuild_drill_measures_rto_and_rpo_with_a_stage_table(cli):
    ok(cli("infra.plan"))
    ok(cli("infra.apply", "--yes"))  # terraform builds the sandbox
    done = ok(cli("dr.drill", "--scenario", "full-rebuild", "--yes", "--json", "--timeout", "240"))
    card = json.loads(done.stdout)["scorecard"][0]
    assert card["outcome"] == "met" and card["rto_target_s"] == 1800 and card["rpo_target_s"] == 300
    assert 0 < card["rto_s"] < 120
    # acknowledged writes not yet archived are lost, and counted; they bound the RPO
    assert card["lost_writes"] is not None and card["rpo_s"] is not None and card["rpo_s"] < 60
    report = json.loads(Path(card["report"]).with_suffix(".json").read_text())
    stages = [(s["stage"], s["status"]) for s in report["details"]["stages"]]
    assert stages == [("destroy", "ok"), ("infrastructure", "ok"), ("database", "ok"), ("cache", "ok")]
    markdown = Path(card["report"]).with_suffix(".md").read_text()
    assert "## Stages" in markdown and "| database | ok |" in markdown
    assert ok(cli("sandbox.status", "--json"))  # everything back: primary, standby, Redis, sentinels


def test_full_rebuild_needs_a_region_on_aws_none_on_the_sandbox_and_is_named_in_the_list(cli):
    done = ok(cli("dr.drill", "--env", "staging", "--scenario", "full-rebuild", "--yes"), 2)
    assert "full-rebuild on aws is the region-loss rebuild: add --param region=REGION" in done.stderr
    sandbox = ok(cli("dr.drill", "--scenario", "full-rebuild", "--param", "region=us-west-2", "--yes"), 2)
    assert "--param region=us-west-2: the region-loss variant runs on aws environments" in sandbox.stderr
    listed = ok(cli("dr.scenarios")).stdout
    assert "full-rebuild" in listed and "RTO infrastructure 30.0 min; RPO database 5.0 min" in listed


def test_a_full_rebuild_drill_killed_after_the_destroy_is_rebuilt_by_the_next_run(cli, tmp_path):
    import signal
    import time

    ok(cli("infra.plan"))
    ok(cli("infra.apply", "--yes"))
    conf = tmp_path / "ops.yaml"
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}
    proc = subprocess.Popen(
        ["inv", "-f", str(conf), "dr.drill", "--scenario", "full-rebuild", "--yes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    journal = tmp_path / "state" / "journal" / "sandbox.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = journal.read_text() if journal.exists() else ""
            if '"kind": "destroyed"' in text:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the drill never destroyed the sandbox")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the drill and its terraform: a crash mid-rebuild
        proc.wait(timeout=30)
    # on the sandbox, the next preflight cleans up after killed drills: here, the rebuild
    done = cli("dr.preflight", "--scenario", "full-rebuild", "--json")
    cleaned = json.loads(done.stdout)["cleaned_up"]
    actions = [a for c in cleaned for a in c["actions"] if a["kind"] == "rebuild-sandbox"]
    assert actions and actions[0]["status"] == "ok", done.stdout + done.stderr
    assert "sandbox rebuilt: infrastructure ok, database ok, cache ok" in actions[0]["detail"]
    ok(cli("sandbox.status"))
