"""Every alarm the sandbox evaluates has a runbook, and the maintenance run-level alarms
pre-check on the sandbox reads the sandbox's own evaluated alarms (ops.alarms names
production's, which the sandbox does not have)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from spywatcher_ops.backends.sandbox.monitoring import EVALUATED
from spywatcher_ops.maintenance import prechecks
from spywatcher_ops.oncall.triage import covering
from spywatcher_ops.runbooks.library import load_all

ENVS = ["sandbox", "staging", "production"]


def test_every_sandbox_alarm_has_a_runbook() -> None:
    runbooks = load_all()
    uncovered = [
        r for r in EVALUATED if not covering(f"spywatcher-sandbox-{r}", runbooks, "spywatcher", ENVS)[0]
    ]
    assert uncovered == []
    # the four without one before: replication and cache redundancy, by exact trigger
    assert covering("spywatcher-sandbox-db-replica-lag", runbooks, "spywatcher", ENVS)[0] == [
        "replication-degraded"
    ]
    assert covering("spywatcher-sandbox-db-wal-archiving", runbooks, "spywatcher", ENVS)[0] == [
        "replication-degraded"
    ]
    for name in ("cache-replica-link", "cache-sentinel-quorum"):
        assert covering(f"spywatcher-sandbox-{name}", runbooks, "spywatcher", ENVS)[0] == [
            "cache-redundancy-lost"
        ]


class _Evaluated:
    """The sandbox Monitoring's answers (its alarms, each with a state), nothing measured."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.asked_firing: list[list[str]] = []

    def alarms(self, states: list[str]) -> list[dict[str, Any]]:
        return [{"AlarmName": n, "StateValue": s} for n, s in self.states.items() if s in states]

    def firing(self, names: list[str]) -> list[str]:
        self.asked_firing.append(names)
        return []


def _env(monitoring: _Evaluated) -> Any:
    alarms = ["spywatcher-production-db-unavailable", "spywatcher-production-cache-unavailable"]
    return SimpleNamespace(
        kind="sandbox",
        settings=SimpleNamespace(raw={"alarms": alarms}),
        parts=SimpleNamespace(monitoring=lambda: monitoring),
    )


def test_sandbox_alarms_precheck_fails_naming_the_firing_sandbox_alarms() -> None:
    monitoring = _Evaluated(
        {
            "spywatcher-sandbox-db-unavailable": "OK",
            "spywatcher-sandbox-db-replica-lag": "ALARM",
            "spywatcher-sandbox-cache-replica-link": "ALARM",
            "spywatcher-sandbox-cache-memory-high": "INSUFFICIENT_DATA",
        }
    )
    check = prechecks.alarms(_env(monitoring))
    assert check.status == "failed"
    assert check.detail == (
        "in ALARM (sandbox, evaluated now): spywatcher-sandbox-cache-replica-link, spywatcher-sandbox-db-replica-lag"
    )
    assert monitoring.asked_firing == []  # production's names are not asked for: they measure nothing there


def test_sandbox_alarms_precheck_ok_says_how_many_were_evaluated() -> None:
    monitoring = _Evaluated(
        {
            "spywatcher-sandbox-db-unavailable": "OK",
            "spywatcher-sandbox-cache-memory-high": "INSUFFICIENT_DATA",
        }
    )
    check = prechecks.alarms(_env(monitoring))
    assert check.status == "ok"
    assert check.detail == (
        "none of 2 sandbox alarm(s) in ALARM, evaluated now (1 without data: spywatcher-sandbox-cache-memory-high)"
    )
