"""Drill suites (drills/*.yaml): validation with file and line, `inv dr.check`, and
`inv dr.drill --suite` running a suite's scenarios against its target overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from spywatcher_ops.core.config import load
from spywatcher_ops.drills import suites
from spywatcher_ops.drills.scenario import DrillOptions
from spywatcher_ops.drills.scenarios import registry

GOOD = """\
description: a test suite
environments: [sandbox]
scenarios:
  - db-failover
  - db-stall
params:
  stall_s: 2
targets:
  rto: {database: 10}
  rpo: {database: 0}
timeout_s: 120
stable: 3
"""


@pytest.fixture
def settings(ops_config):
    return load(ops_config)


def read(tmp_path: Path, settings, text: str) -> tuple[suites.Suite | None, list[str]]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    suite, problems = suites.read(path, settings, registry.load())
    return suite, [str(p) for p in problems]


def test_a_good_suite_reads_with_everything_it_says(tmp_path, settings):
    suite, problems = read(tmp_path, settings, GOOD)
    assert problems == []
    assert (
        suite is not None
        and suite.scenarios == ["db-failover", "db-stall"]
        and suite.environments == ["sandbox"]
    )
    assert suite.params == {"stall_s": "2"} and suite.targets == {
        "rto": {"database": 10.0},
        "rpo": {"database": 0.0},
    }
    tuned = suite.settings_for(settings)
    assert tuned.targets.rto["database"] == 10.0 and tuned.targets.rpo["database"] == 0.0
    assert tuned.targets.rto["application"] == settings.targets.rto["application"]  # the rest kept
    options = suites.options_for(suite, DrillOptions(params={"stall_s": "4"}))
    assert options.params == {"stall_s": "4"}  # the command line wins
    assert options.timeout_s == 120.0 and options.stability.stable_count == 3
    assert suites.options_for(suite, DrillOptions(), keep_stability=True).stability.stable_count == 5


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "environments: [sandbox]\nscenarios: [db-failover]\nreport: yes\n",
            "s.yaml:3: report: unknown key; accepted: description, environments, scenarios, params",
        ),
        (
            "environments: [sandbox]\nscenarios:\n  - db-failover\n  - nope\n",
            "s.yaml:4: scenarios: 'nope': unknown; accepted: ",  # then every registered scenario, in registration order
        ),
        (
            "environments: [qa]\nscenarios: [db-failover]\n",
            "s.yaml:1: environments: 'qa': unknown; accepted: production, sandbox, staging",
        ),
        (
            "environments: [staging]\nscenarios:\n  - db-failover\n  - db-stall\n",
            "s.yaml:4: scenarios: db-stall does not run on aws environments (environments: staging); it runs on sandbox",
        ),
        (
            "environments: [sandbox]\nscenarios: [db-stall]\nparams:\n  stall_s: 900\n",
            "s.yaml:3: params: --param stall_s=900: use 0 < stall_s <= 300 seconds",
        ),
        (
            "environments: [sandbox]\nscenarios: [db-failover]\nparams:\n  writes: 5\n",
            "s.yaml:4: params: writes: no scenario of this suite reads it; accepted: none for these scenarios",
        ),
        (
            "environments: [sandbox]\nscenarios: [db-failover]\ntargets:\n  rto:\n    databse: 30\n",
            "s.yaml:5: targets: rto: databse: unknown target; accepted: application, database",
        ),
        (
            "environments: [sandbox]\nscenarios: [db-failover]\ntargets:\n  rto:\n    database: fast\n",
            "s.yaml:5: targets: rto: database: 'fast': a number of seconds >= 0, e.g. 60",
        ),
        (
            "environments: [sandbox]\nscenarios: [db-failover]\ntargets:\n  mttr: {database: 3}\n",
            "s.yaml:4: targets: mttr: unknown; accepted: rto, rpo",
        ),
        (
            "environments: [sandbox]\nscenarios: [db-failover]\ntimeout_s: 0\n",
            "s.yaml:3: timeout_s: 0: a number from 1 to 7200",
        ),
        ("scenarios: [db-failover]\n", "s.yaml:1: environments: missing"),
        ("environments: [sandbox]\nscenarios: db-failover\n", "s.yaml:2: scenarios: a list of names"),
        ("environments: [sandbox]\nscenarios: [db-failover\n", "s.yaml:3: not valid YAML"),
        ("- db-failover\n", "s.yaml:1: a suite is a mapping with keys description, environments"),
    ],
)
def test_each_problem_names_the_file_the_line_and_what_is_accepted(tmp_path, settings, text, expected):
    _suite, problems = read(tmp_path, settings, text)
    assert any(p.startswith("drills/" + expected) for p in problems), problems


def test_a_suite_for_another_environment_is_refused(tmp_path, settings):
    suite, _ = read(tmp_path, settings, GOOD)
    assert suite is not None
    with pytest.raises(Exception, match="runs on sandbox, not on staging"):
        suite.check_env("staging")
