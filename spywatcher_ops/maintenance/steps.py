"""The step types a plan may name, with their settings, the environment kinds
that can run them, the default duration used until there is history, and the
client impact and rollback a notice announces.

Each step has a pre-check, an action (which waits for what it started), a
post-check and, where possible, a rollback. Implementations are named as
"module:function" and imported when a step runs: `inv maint.check` reads this
table without importing psycopg or boto3.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """A pre- or post-check: `ok`, `warn` (reported, not blocking), `skip` (the step has nothing to
    do: it is recorded as skipped, its action not run) or `failed`."""

    name: str
    status: str
    detail: str = ""
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass(frozen=True)
class Setting:
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None  # text settings: the accepted values

    def check(self, value: Any) -> str | None:
        """None when acceptable, else what is accepted."""
        if self.choices is not None and value not in self.choices:
            return f"not one of {', '.join(self.choices)}; {self.help}, e.g. {self.default!r}"
        kind = {int: "whole number", float: "number", bool: "true or false"}.get(self.type, "text")
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            return f"not a {kind}; {self.help}, e.g. {self.default!r}"
        number = float(value) if isinstance(value, int | float) else 0.0
        if self.minimum is not None and number < self.minimum:
            return f"below {self.minimum:g}; {self.help}, e.g. {self.default!r}"
        if self.maximum is not None and number > self.maximum:
            return f"above {self.maximum:g}; {self.help}, e.g. {self.default!r}"
        return None


@dataclass(frozen=True)
class StepType:
    name: str
    summary: str
    kinds: tuple[str, ...]
    default_s: float  # expected duration until this environment has history for the step
    impact: str  # the expected client impact, as a notice announces it
    rollback_text: str
    impl: (
        str  # "module:object" with precheck(ctx), action(ctx), postcheck(ctx, result), rollback(ctx, result)
    )
    settings: dict[str, Setting] = field(default_factory=dict)

    def implementation(self) -> Any:
        module, _, name = self.impl.partition(":")
        return getattr(importlib.import_module(module, __package__), name)


TIMEOUTS = {
    "lock_timeout_ms": Setting(
        int, 2000, "milliseconds a statement may wait for a lock before it gives up", 1, 600000
    ),
    "statement_timeout_s": Setting(int, 600, "seconds one statement may run", 1, 86400),
}

STEPS: dict[str, StepType] = {
    s.name: s
    for s in (
        StepType(
            "db-housekeeping",
            "VACUUM (ANALYZE) tables over the dead-tuple threshold, REINDEX INDEX CONCURRENTLY bloated indexes, "
            "report transaction ID age",
            ("sandbox", "aws"),
            60.0,
            "none expected: VACUUM and REINDEX CONCURRENTLY neither block reads nor writes; every statement "
            "gives up after lock_timeout rather than queue behind the application",
            "none needed: nothing is changed that needs undoing; an interrupted REINDEX CONCURRENTLY leaves an "
            "invalid index named *_ccnew, which the next run drops",
            ".housekeeping:HOUSEKEEPING",
            {
                "dead_tuples_min": Setting(int, 1000, "dead tuples above which a table is vacuumed", 0),
                "dead_ratio_min": Setting(
                    float, 0.1, "share of dead tuples (0-1) above which a table is vacuumed", 0, 1
                ),
                "index_bloat_min": Setting(
                    float,
                    0.3,
                    "estimated share of wasted index space (0-1) above which an index is rebuilt",
                    0,
                    1,
                ),
                "index_min_kb": Setting(int, 64, "indexes smaller than this (KiB) are never rebuilt", 0),
                "xid_warn_ratio": Setting(
                    float,
                    0.5,
                    "transaction ID age / autovacuum_freeze_max_age above which the step warns",
                    0,
                    1,
                ),
                **TIMEOUTS,
            },
        ),
        StepType(
            "db-engine",
            "apply pending database changes the Multi-AZ way: standby first, a clean switchover, then the "
            "old primary as the new standby (aws: RDS pending maintenance actions and a minor engine upgrade)",
            ("sandbox", "aws"),
            30.0,
            "database writes pause during the switchover (typically well under a second); no acknowledged "
            "write is lost",
            "before the switchover the standby goes back to what it ran; a failed step leaves the change "
            "pending and both nodes running (aws: RDS finishes or reverts what it accepted)",
            ".data_tier:DB_ENGINE",
            {
                "max_write_pause_s": Setting(
                    float, 5.0, "post-check: the longest write pause the probes may see (s)", 0
                )
            },
        ),
        StepType(
            "cache-restart",
            "rolling restart of the cache: replica first, a sentinel failover, then the old primary "
            "(aws: the replication group's ElastiCache service updates, applied and waited on)",
            ("sandbox", "aws"),
            30.0,
            "cache writes pause for the planned failover (1-3 s): they are held on the old primary, not "
            "acknowledged there and lost; any write lost anyway is counted in the report",
            "the cache is repaired (`sandbox.up`): a primary and a replica run again",
            ".data_tier:CACHE_RESTART",
            {
                "max_write_pause_s": Setting(
                    float, 10.0, "post-check: the longest cache write pause allowed (s)", 0
                )
            },
        ),
        StepType(
            "tls-renew",
            "issue a new database server certificate before expiry and reload the server (no restart); "
            "aws: check the environment's ACM certificates and the API endpoint's",
            ("sandbox", "aws"),
            10.0,
            "none expected: a reload keeps every connection; new connections get the new certificate",
            "the previous certificate and key are kept and put back with another reload",
            ".data_tier:TLS_RENEW",
            {
                "renew_within_days": Setting(
                    int, 30, "renew a certificate that expires within this many days", 0, 3650
                ),
                "force": Setting(bool, False, "renew even when the certificate is not close to expiry"),
                "valid_days": Setting(int, 90, "validity of the new certificate in days", 1, 825),
            },
        ),
    )
}


class NotRestored(str):
    """A rollback's account when what the step changed stays changed (os-patch: installed packages
    are not downgraded): the rollback is recorded 'partial', never 'ok', so an interrupted or failed
    run says what it left and exits 1, not 4 ('failed and rolled back': the system as it was)."""


@dataclass
class StepContext:
    """What a step implementation receives."""

    env: Any  # core.environment.Environment
    settings: dict[str, Any]
    progress: Callable[[str], None]
    note: Callable[..., None]  # a timeline event: (code, message[, at epoch seconds])
    state: dict[str, Any] = field(default_factory=dict)  # what the action left for the post-check / rollback
    max_errors: int = 0  # the plan's: failures tolerated (per host, for steps over many hosts)
    # A step sets state["stop_run"] = "why" when the run must stop whatever max_errors says
    # (a host that did not come back after its reboot: its node stays cordoned).
    # A pre-check sets state["skip"] = "why" when the step has nothing to do here (os-patch on an
    # environment listing no SSH hosts): the step is recorded as skipped, not run, not a failure.


# part 2's steps (SSH hosts, EKS) live in their own module and register here
from .host_steps import HOST_STEPS  # noqa: E402

STEPS.update(HOST_STEPS)
