"""The application-incident runbooks: every configured alarm has one (and `inv oncall` finds it),
the runbook README is generated and checked, and each new runbook is walked end to end through a
real terminal on a real sandbox (its diagnostics run; the steps that need a cluster do not apply
there: their diagnostics fail and are continued past, their changes are skipped)."""

from __future__ import annotations

from pathlib import Path

import yaml
from support.paths import ROOT

from spywatcher_ops.oncall.triage import covering
from spywatcher_ops.runbooks import index
from spywatcher_ops.runbooks.library import SHIPPED, load_all

NEW = ["service-down", "high-error-rate", "elevated-response-time", "high-cpu-memory", "low-disk-space"]
ENVS = ["sandbox", "staging", "production"]


def _alarms() -> list[str]:
    return list(yaml.safe_load((ROOT / "invoke.yaml").read_text())["ops"]["alarms"])


def test_every_platform_alert_has_an_alarm_and_a_runbook_oncall_finds():
    alarms = _alarms()
    runbooks = load_all()
    expected = {  # docs/design.md, Platform facts: the paging and the warning alerts
        "service down": "api-unhealthy-hosts",
        "database unavailable": "db-unavailable",
        "high error rate": "api-5xx-rate",
        "high CPU/memory": "backend-cpu-high",
        "low disk space": "db-storage-low",
        "elevated response time": "api-latency-p95",
    }
    for what, resource in expected.items():
        assert f"spywatcher-production-{resource}" in alarms, what
    for alarm in alarms:
        names, _ = covering(alarm, runbooks, "spywatcher", ENVS)
        assert names, f"{alarm} has no runbook"
        staging = alarm.replace("-production-", "-staging-")
        assert covering(staging, runbooks, "spywatcher", ENVS)[0] == names, staging
    assert {n for a in alarms for n in covering(a, runbooks, "spywatcher", ENVS)[0]} >= set(NEW)


def test_the_readme_list_is_generated_and_checked(tmp_path: Path):
    runbooks = load_all()
    assert index.check(SHIPPED / "README.md", runbooks) == []  # the shipped README is current
    readme = tmp_path / "README.md"
    readme.write_text((SHIPPED / "README.md").read_text())
    fewer = [rb for rb in runbooks if rb.name != "low-disk-space"]
    problems = index.check(readme, fewer)
    assert len(problems) == 1 and "lists low-disk-space, which do not exist" in problems[0].message
    assert "inv runbook.check --write-readme" in problems[0].message
    before = readme.read_text()
    assert index.write(readme, fewer) is True
    assert index.check(readme, fewer) == []
    after = readme.read_text()
    assert "low-disk-space" not in after.split(index.BEGIN)[1].split(index.END)[0]
    assert after.split(index.BEGIN)[0] == before.split(index.BEGIN)[0]  # hand-written text kept
    assert after.split(index.END)[1] == before.split(index.END)[1]
    readme.write_text("# Runbooks\n\nno list here\n")
    assert "has no generated runbook list" in index.check(readme, runbooks)[0].message
