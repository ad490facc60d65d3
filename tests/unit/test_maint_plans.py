"""Maintenance plans are files: every problem is named with its file, line and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from spywatcher_ops.core.errors import BadInput
from spywatcher_ops.maintenance import plans

KINDS = {"sandbox": "sandbox", "staging": "aws", "production": "aws"}


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    # named as a plan of the top-level maintenance/ folder (parse only names the file)
    return [str(p) for p in plans.parse(text, plans.PLANS_DIR / path.name, KINDS)[1]]


def test_the_shipped_plans_are_valid() -> None:
    files, problems = plans.check_all(KINDS)
    assert [p.name for p in files] == ["sunday.yaml"]
    assert problems == []
    plan = plans.load("sunday", KINDS)
    sandbox = plan.for_env("sandbox")
    assert [s.step for s in sandbox.steps] == [
        "db-housekeeping",
        "db-engine",
        "cache-restart",
        "tls-renew",
        "os-patch",
    ]
    assert sandbox.steps[0].settings["dead_tuples_min"] == 1000
    assert sandbox.steps[0].settings["lock_timeout_ms"] == 2000  # defaults filled in
    assert sandbox.window == "always"


def test_unknown_step_names_line_and_accepted(tmp_path: Path) -> None:
    text = "environments:\n  sandbox:\n    steps:\n      - step: db-housekeeping\n      - step: reboot-everything\n"
    assert _problems(tmp_path, text) == [
        "maintenance/p.yaml:5: environments.sandbox.steps[2]: unknown step 'reboot-everything'; "
        "accepted: db-housekeeping, db-engine, cache-restart, tls-renew, os-patch, eks-nodegroups, eks-upgrade"
    ]


def test_bad_setting_and_unknown_setting(tmp_path: Path) -> None:
    text = (
        "environments:\n  sandbox:\n    steps:\n      - step: db-housekeeping\n        dead_ratio_min: 3\n"
        "        lock_timeout: 5\n"
    )
    problems = _problems(tmp_path, text)
    assert problems[0].startswith(
        "maintenance/p.yaml:5: environments.sandbox.steps[1]: db-housekeeping.dead_ratio_min 3: above 1;"
    )
    assert problems[1].startswith(
        "maintenance/p.yaml:6: environments.sandbox.steps[1]: step db-housekeeping "
        "has no setting 'lock_timeout'; accepted: dead_tuples_min,"
    )


def test_step_the_environment_kind_cannot_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spywatcher_ops.maintenance.steps import STEPS, StepType

    # every shipped step runs on both kinds; a sandbox-only one (as part 2's host steps will be)
    monkeypatch.setitem(
        STEPS, "host-patch", StepType("host-patch", "patch a host", ("sandbox",), 60.0, "", "", "")
    )
    text = "environments:\n  staging:\n    steps:\n      - db-housekeeping\n      - host-patch\n"
    assert _problems(tmp_path, text) == [
        "maintenance/p.yaml:5: environments.staging.steps[2]: step host-patch cannot run on a aws "
        "environment (staging); it runs on: sandbox"
    ]


def test_yaml_that_does_not_parse_names_the_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "environments:\n  sandbox:\n    steps: [db-housekeeping\n  oops: 1\n")
    assert len(problems) == 1 and problems[0].startswith("maintenance/p.yaml:4: not valid YAML")


def test_unknown_environment_and_keys(tmp_path: Path) -> None:
    text = (
        "max_errors: -1\nenvironments:\n  qa:\n    steps: []\n  sandbox:\n    windw: always\n    steps: []\n"
    )
    assert _problems(tmp_path, text) == [
        "maintenance/p.yaml:1: max_errors -1: use a whole number >= 0, e.g. 0",
        "maintenance/p.yaml:3: unknown environment 'qa'; known: production, sandbox, staging",
        "maintenance/p.yaml:6: environments.sandbox: unknown key 'windw'; accepted: window, max_errors, "
        "prechecks, steps",
    ]


def test_prechecks_of_the_plan_and_of_an_environment(tmp_path: Path) -> None:
    text = (
        "prechecks: {infra_drift: true}\n"
        "environments:\n"
        "  sandbox:\n    prechecks: {standby_max_lag_s: 2}\n    steps: [db-engine]\n"
        "  staging:\n    prechecks: {infra_drift: false}\n    steps: [db-engine]\n"
        "  production:\n    steps: [db-engine]\n"
    )
    path = tmp_path / "p.yaml"
    path.write_text(text)
    plan, problems = plans.parse(text, path, KINDS)
    assert problems == [] and plan is not None
    assert plan.for_env("sandbox").prechecks == {"infra_drift": True, "standby_max_lag_s": 2}
    assert plan.for_env("staging").prechecks == {"infra_drift": False}
    assert plan.for_env("production").prechecks == {"infra_drift": True}


def test_bad_prechecks_name_the_line_and_what_is_accepted(tmp_path: Path) -> None:
    text = (
        "prechecks: {drift: true}\n"
        "environments:\n  sandbox:\n    prechecks: {standby_max_lag_s: 0, infra_drift: yes}\n    steps: []\n"
        "  staging:\n    prechecks: [infra_drift]\n    steps: []\n"
    )
    assert _problems(tmp_path, text) == [
        "maintenance/p.yaml:1: prechecks: unknown pre-check 'drift'; accepted: standby_max_lag_s, infra_drift",
        "maintenance/p.yaml:4: environments.sandbox.prechecks.standby_max_lag_s 0: below 0.1; seconds the "
        "standby may take to replay a WAL record the primary writes at the pre-check, e.g. 5.0",
        "maintenance/p.yaml:7: environments.staging.prechecks: a mapping of standby_max_lag_s, infra_drift, "
        "e.g. {infra_drift: true}",
    ]


def test_load_raises_the_first_problem_and_unknown_plan(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("environments:\n  sandbox:\n    steps: [nope, nope2]\n")
    with pytest.raises(BadInput, match=r"/bad.yaml:3: .*unknown step 'nope'.*and 1 more"):
        plans.load("bad", KINDS, tmp_path)
    with pytest.raises(BadInput, match="--plan weekly: no such plan in .*; known: bad"):
        plans.load("weekly", KINDS, tmp_path)
