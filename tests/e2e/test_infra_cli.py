"""`inv infra.*` end to end: the real `inv`, the real terraform binary, its real S3
backend and DynamoDB lock against a moto server, terraform_data configurations.
Each fault: the exit code from the README, one clear line, nothing lost.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from support.infra import BUCKET, KEY, TF_LOCK_TABLE

pytestmark = [pytest.mark.e2e, pytest.mark.real]


def ok(result, code: int = 0):
    assert result.returncode == code, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def plan_apply(world, *extra: str) -> None:
    ok(world.inv("infra.plan", "--env", "staging"))
    ok(world.inv("infra.apply", "--env", "staging", "--yes", *extra))


def var_file(world, name: str, **values: object) -> str:
    path = world.tmp / name
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return str(path)


def test_plan_apply_records_the_state_version_before_it(tf_world):
    done = ok(tf_world.inv("infra.plan", "--env", "staging", "--json"))
    data = json.loads(done.stdout)
    assert data["summary"]["by_type"] == {
        "terraform_data": {"add": 3, "change": 0, "replace": 0, "destroy": 0}
    }
    assert data["changes"] is True and Path(data["plan"]).exists()
    assert "terraform 1." in done.stderr  # the version is shown
    assert tf_world.versions() == []  # a plan writes no state

    applied = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"))
    assert "terraform_data.worker: Creation complete" in applied.stderr  # terraform's output, streamed
    first = tf_world.versions()
    assert len(first) == 1 and tf_world.state()["serial"] == 1

    # a second change: the journal holds the version that was current before it
    tf_world.config(var_files=[var_file(tf_world, "big.tfvars", size="big")])
    plan_apply(tf_world)
    versions = tf_world.versions()
    assert len(versions) == 2
    backups = [r for r in tf_world.journal() if r.get("step") == "state-backup"]
    assert backups[-1]["version"] == first[0]["VersionId"] and backups[-1]["serial"] == 1
    ends = [r for r in tf_world.journal() if r.get("event") == "end" and r["op"] == "infra.apply"]
    assert [e["outcome"] for e in ends] == ["ok", "ok"]
    assert ends[-1]["result"]["new_serial"] == 2


def test_apply_dry_run_changes_nothing(tf_world):
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    done = ok(tf_world.inv("infra.apply", "--env", "staging", "--dry-run"))
    assert "DRY RUN" in done.stdout and "terraform.apply(" in done.stdout
    assert tf_world.versions() == []


def test_apply_without_yes_asks_and_a_no_changes_nothing(tf_world):
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    done = ok(tf_world.inv("infra.apply", "--env", "staging"), 2)
    assert "needs confirmation" in done.stderr
    assert tf_world.versions() == []


def test_drift_exit_1_lists_the_resources(tf_world):
    plan_apply(tf_world)
    clean = ok(tf_world.inv("infra.drift", "--env", "staging"))
    assert "no drift" in clean.stdout
    tf_world.config(var_files=[var_file(tf_world, "big.tfvars", size="big")])
    drifted = ok(tf_world.inv("infra.drift", "--env", "staging"), 1)
    assert "terraform_data.database" in drifted.stdout and "terraform_data.web" in drifted.stdout
    assert "drift in 3 resource(s)" in drifted.stderr
    assert len(tf_world.versions()) == 1  # nothing applied
    as_json = ok(tf_world.inv("infra.drift", "--env", "staging", "--json"), 1)
    assert json.loads(as_json.stdout)["drifted"] is True


def test_stale_saved_plan_is_refused(tf_world):
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    first = sorted((tf_world.state_dir / "terraform" / "staging" / "plans").glob("*.tfplan"))[0]
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"))  # the newest plan moves the state on
    done = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes", "--plan", str(first)), 2)
    assert "stale" in done.stderr and "serial 1" in done.stderr
    assert len(tf_world.versions()) == 1


def test_versioning_off_refuses_apply(tf_world):
    tf_world.s3().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    done = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"), 3)
    assert "versioning is Suspended; apply refused" in done.stderr
    assert tf_world.versions() == []
    assert not [r for r in tf_world.journal() if r.get("op") == "infra.apply"]


def test_stateful_destroy_needs_allow_destroy(tf_world):
    plan_apply(tf_world)
    tf = tf_world.config_dir / "main.tf"
    tf.write_text(
        tf.read_text().replace(
            'input = "db-${var.size}"', 'input = "db-${var.size}"\n  triggers_replace = "v2"'
        )
    )
    planned = ok(tf_world.inv("infra.plan", "--env", "staging"))
    assert "STATEFUL REPLACE: terraform_data.database" in planned.stdout
    assert "--allow-destroy terraform_data.database" in planned.stdout
    refused = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"), 2)
    assert "stateful resource(s): terraform_data.database (replace); apply refused" in refused.stderr
    assert len(tf_world.versions()) == 1
    bad = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes", "--allow-destroy", "no dots"), 2)
    assert "--allow-destroy no dots: not a resource address" in bad.stderr
    ok(tf_world.inv("infra.apply", "--env", "staging", "--yes", "--allow-destroy", "terraform_data.database"))
    assert len(tf_world.versions()) == 2


def test_state_locked_by_someone_else_names_them_and_is_never_unlocked(tf_world):
    plan_apply(tf_world)
    lock_id = f"{BUCKET}/{KEY}"
    info = {
        "ID": "0c6a2d1e-5c33-4f1a-9d1e-2d0d7e6f4b11",
        "Operation": "OperationTypeApply",
        "Info": "",
        "Who": "alice@laptop",
        "Version": "1.11.4",
        "Created": "2026-11-29T09:58:00.5Z",
        "Path": lock_id,
    }
    tf_world.ddb().put_item(
        TableName=TF_LOCK_TABLE, Item={"LockID": {"S": lock_id}, "Info": {"S": json.dumps(info)}}
    )
    done = ok(tf_world.inv("infra.plan", "--env", "staging"), 3)
    line = done.stderr.strip().splitlines()[-1]
    assert "locked by alice@laptop since 2026-11-29 09:58:00.5 +0000 UTC" in line
    assert "never force-unlocks" in line
    item = tf_world.ddb().get_item(TableName=TF_LOCK_TABLE, Key={"LockID": {"S": lock_id}}).get("Item")
    assert item is not None and "alice@laptop" in item["Info"]["S"]  # still there


def test_state_versions_and_rollback(tf_world):
    plan_apply(tf_world)
    tf_world.config(var_files=[var_file(tf_world, "big.tfvars", size="big")])
    plan_apply(tf_world)
    listed = json.loads(ok(tf_world.inv("infra.state", "--env", "staging", "--versions", "--json")).stdout)
    assert [v["serial"] for v in listed["versions"]] == [2, 1]
    assert listed["versions"][0]["latest"] and len({v["lineage"] for v in listed["versions"]}) == 1
    old, current = listed["versions"][1]["id"], listed["versions"][0]["id"]

    declined = ok(tf_world.inv("infra.state-restore", "--env", "staging", "--version", old), 2)
    assert "~ terraform_data.database" in declined.stdout  # the difference is shown before asking
    assert len(tf_world.versions()) == 2

    ok(tf_world.inv("infra.state-restore", "--env", "staging", "--version", old, "--yes"))
    versions = tf_world.versions()
    assert len(versions) == 3 and current in [v["VersionId"] for v in versions]  # the current one is kept
    state = tf_world.state()
    assert state["serial"] > 2 and state["lineage"] == listed["lineage"]
    inputs = {r["name"]: r["instances"][0]["attributes"]["input"] for r in state["resources"]}
    assert inputs["database"]["value"] == "db-small"
    # terraform accepts the rolled-back state: the next plan wants the big size again
    drifted = ok(tf_world.inv("infra.drift", "--env", "staging"), 1)
    assert "terraform_data.database" in drifted.stdout


def test_state_version_of_another_lineage_is_refused(tf_world):
    plan_apply(tf_world)
    s3 = tf_world.s3()
    mine = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    foreign = {**json.loads(mine), "lineage": "another-state-0000", "serial": 7}
    other = s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(foreign).encode())["VersionId"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=mine)  # the real state is current again
    done = ok(tf_world.inv("infra.state-restore", "--env", "staging", "--version", other, "--yes"), 2)
    assert "lineage another-state-0000 is not the current state's" in done.stderr
    assert len(tf_world.versions()) == 3
    missing = ok(tf_world.inv("infra.state-restore", "--env", "staging", "--version", "nope", "--yes"), 2)
    assert "--version nope: no such version" in missing.stderr


def test_failure_mid_apply_names_the_resource_and_the_journal_says_what_was_applied(tf_world):
    tf_world.config(var_files=[var_file(tf_world, "fail.tfvars", fail=True)])
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    done = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"), 1)
    last = done.stderr.strip().splitlines()[-1]
    assert "terraform apply failed at terraform_data.worker" in last
    assert "local-exec provisioner error" in last and "terraform_data.web: created" in last
    step = [r for r in tf_world.journal() if r.get("step") == "apply"][-1]
    assert step["status"] == "failed" and step["failed"] == ["terraform_data.worker"]
    assert sorted(step["applied"]) == ["terraform_data.database: created", "terraform_data.web: created"]
    end = [r for r in tf_world.journal() if r.get("event") == "end" and r["op"] == "infra.apply"][-1]
    assert end["outcome"] == "OperationFailed"
    # terraform kept what it created (and marked the worker tainted) in a new state version
    names = {r["name"] for r in tf_world.state()["resources"]}
    assert {"web", "database"} <= names


def test_missing_binary_says_how_to_install(tf_world):
    tf_world.extra_env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    done = ok(tf_world.inv("infra.plan", "--env", "staging"), 3)
    line = done.stderr.strip()
    assert "`terraform` not found on PATH" in line and "developer.hashicorp.com/terraform/install" in line


def test_folder_that_is_not_a_configuration(tf_world):
    empty = tf_world.tmp / "empty"
    empty.mkdir()
    tf_world.config(dir=str(empty))
    done = ok(tf_world.inv("infra.plan", "--env", "staging"), 2)
    assert f"{empty}: not a Terraform configuration (no .tf files in it)" in done.stderr
    assert not (tf_world.state_dir / "terraform").exists()


def test_plan_for_another_workspace_is_refused(tf_world):
    ok(tf_world.inv("infra.plan", "--env", "staging"))
    tf_world.config(workspace="blue")
    done = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"), 2)
    assert "made for workspace default, this environment uses blue" in done.stderr
    assert tf_world.versions() == []


def test_other_workspace_keeps_its_state_under_its_own_key(tf_world):
    tf_world.config(workspace="dr-west")
    plan_apply(tf_world)
    keys = {v["Key"] for v in tf_world.s3().list_object_versions(Bucket=BUCKET).get("Versions", [])}
    assert f"env:/dr-west/{KEY}" in keys and KEY not in keys
    view = json.loads(ok(tf_world.inv("infra.state", "--env", "staging", "--versions", "--json")).stdout)
    # the workspace's own key; terraform may write its empty first state when it creates the workspace
    assert view["workspace"] == "dr-west" and view["versions"][0]["latest"]
    assert view["versions"][0]["serial"] == view["serial"] >= 1 and len(view["resources"]) == 3


def test_environment_without_terraform_settings(tf_world):
    done = ok(tf_world.inv("infra.plan", "--env", "production"), 2)
    assert "environments.production.terraform.dir: not set" in done.stderr


def test_no_plan_yet(tf_world):
    done = ok(tf_world.inv("infra.apply", "--env", "staging", "--yes"), 2)
    assert "no saved plan for staging; make one with: inv infra.plan --env staging" in done.stderr
    assert os.path.exists(tf_world.conf_file)
