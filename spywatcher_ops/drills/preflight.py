"""Preflight: everything a drill checks before it touches anything.

Each check is read-only and returns OK / FAILED (hint) / WARN. FAILED blocks
the drill (exit 3, nothing injected); WARN is a prediction (for example
"snapshot-only recovery cannot meet a 5-minute RPO") that the drill then proves.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInput, DeadHolder, Locked, NotReady, OpsError
from .probes import Cadence, RedisTarget, pg_connect
from .scenario import Check, DrillOptions, Scenario
from .signals import deferred_signal

if TYPE_CHECKING:
    from ..core.environment import Environment

STANDBY_MAX_LAG_S = 5.0  # as the maintenance run's standby pre-check (prechecks.standby_max_lag_s)


def drills_allowed(env: Environment) -> Check:
    if not env.env.allow_drills:
        return Check(
            "drills allowed",
            "failed",
            f"{env.name} has allow_drills: false",
            hint=f"set ops.environments.{env.name}.allow_drills: true to allow drills there",
        )
    if env.env.production:
        return Check(
            "drills allowed", "ok", f"{env.name} is production: allow_drills is on; the drill asks to confirm"
        )
    return Check("drills allowed", "ok", f"allow_drills is on for {env.name}")


def lock_free(env: Environment) -> Check:
    try:
        with env.parts.lock().hold(env.journal.who.get("os_user", "?"), "dr.preflight", take_over=False):
            pass
    except DeadHolder as exc:  # read-only: say it, leave the lock to the drill that takes it over
        return Check("lock free", "warn", str(exc.message), hint=exc.hint)
    except Locked as exc:
        return Check("lock free", "failed", str(exc.message), hint=exc.hint)
    except OpsError as exc:
        return Check("lock free", "failed", exc.message, hint=exc.hint)
    return Check("lock free", "ok", f"no other operation holds {env.name}'s lock")


def database_writable(env: Environment, cadence: Cadence, deadline_s: float) -> Check:
    end = time.monotonic() + deadline_s
    last = ""
    while True:
        try:
            info = env.database.connection()
            with pg_connect(info, cadence) as conn:
                in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                if not in_recovery:
                    return Check("database writable", "ok", f"{info.redacted()} accepts writes")
                last = "connected to a server in recovery (read-only)"
        except OpsError as exc:
            return Check("database writable", "failed", exc.message, hint=exc.hint)
        except Exception as exc:  # noqa: BLE001 - reported as the check's detail
            last = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if time.monotonic() >= end:
            return Check(
                "database writable", "failed", last, hint="is the database up? on the sandbox: inv sandbox.up"
            )
        time.sleep(0.1)


def cache_master(env: Environment, cadence: Cadence, deadline_s: float) -> Check:
    end = time.monotonic() + deadline_s
    last = ""
    while True:
        try:
            target = RedisTarget(env.cache.endpoint(), cadence)
            host, port = target.master()
            client = target._client(host, port)
            try:
                role = client.execute_command("ROLE")
            finally:
                client.close()
            if role and str(role[0]) == "master":
                return Check("cache master", "ok", f"master at {host}:{port} answers")
            last = f"{host}:{port} is a {role[0] if role else '?'}, not the master"
        except OpsError as exc:
            return Check("cache master", "failed", exc.message, hint=exc.hint)
        except Exception as exc:  # noqa: BLE001 - reported as the check's detail
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= end:
            return Check(
                "cache master", "failed", last, hint="is the cache up? on the sandbox: inv sandbox.up"
            )
        time.sleep(0.1)


def standby_ready(env: Environment, deadline_s: float = 0.0) -> Check:
    """Multi-AZ (RDS) or a streaming standby (sandbox): a failover has somewhere to go."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            inst = env.database.describe()
            # Multi-AZ configured is not enough: a dead standby (sandbox "degraded") or an
            # instance mid-modification (RDS) has nowhere healthy to fail over to.
            if inst.multi_az and inst.status == "available":
                # ...and not enough either: a frozen (SIGSTOPped) standby keeps its pid and looks
                # available; the port asks the standby itself (answering, replaying the newest WAL)
                try:
                    found = env.parts.maintenance().standby_ready(STANDBY_MAX_LAG_S)
                    return Check("standby / Multi-AZ", "ok", f"{inst.id}: Multi-AZ on; {found}")
                except NotReady as exc:
                    last, hint = exc.message, exc.hint
            else:
                last = (
                    f"{inst.id}: Multi-AZ on but status {inst.status}"
                    if inst.multi_az
                    else f"{inst.id}: no standby (Multi-AZ off), status {inst.status}"
                )
                hint = None
        except OpsError as exc:
            return Check("standby / Multi-AZ", "failed", exc.message, hint=exc.hint)
        if deferred_signal():  # the operator interrupted the rollback: report now, do not wait on
            return Check(
                "standby / Multi-AZ",
                "failed",
                f"{last}; stopped waiting: interrupted",
                hint="check again with inv dr.preflight, or inv sandbox.status",
            )
        if time.monotonic() >= end:
            return Check(
                "standby / Multi-AZ",
                "failed",
                last,
                hint=hint
                or "a failover needs a healthy standby: enable Multi-AZ and wait until the instance is "
                "available (RDS), or `inv sandbox.up` to repair the sandbox",
            )
        time.sleep(0.2)


def cache_replica(env: Environment) -> Check:
    try:
        nodes = env.cache.status()
    except OpsError as exc:
        return Check("cache replica", "failed", exc.message, hint=exc.hint)
    replicas = [n for n in nodes if n.role == "replica" and n.alive]
    if not replicas:
        return Check(
            "cache replica",
            "failed",
            "no live replica: a failover has nowhere to go",
            hint="enable automatic failover with a replica (ElastiCache) or `inv sandbox.up`",
        )
    return Check(
        "cache replica", "ok", f"{len(replicas)} live replica(s): " + ", ".join(n.id for n in replicas)
    )


def backups_enabled(env: Environment) -> Check:
    try:
        window = env.database.restorable_window()
    except OpsError as exc:
        return Check("backups enabled", "failed", exc.message, hint=exc.hint)
    if window.retention_days <= 0:
        return Check(
            "backups enabled",
            "failed",
            "automated backups are off (retention 0 days)",
            hint="set a backup retention of 7 days",
        )
    return Check(
        "backups enabled",
        "ok",
        f"restorable from {window.earliest:%Y-%m-%dT%H:%M:%SZ} to {window.latest:%Y-%m-%dT%H:%M:%SZ} "
        f"({window.retention_days} days retention)",
    )


def steady_state_checks(
    env: Environment, part: str, cadence: Cadence, *, deadline_s: float = 15.0
) -> list[Check]:
    """Used before (preflight) and after (re-check) a drill. Never raises."""
    checks: list[Check] = []
    try:
        if part in ("database",):
            checks.append(database_writable(env, cadence, deadline_s))
        if part in ("cache",):
            checks.append(cache_master(env, cadence, deadline_s))
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check
        checks.append(Check("steady state", "failed", f"{type(exc).__name__}: {exc}"))
    return checks


def preflight(env: Environment, scenario: Scenario, options: DrillOptions) -> list[Check]:
    """All checks for one scenario, in the order an operator reads them."""
    checks = [drills_allowed(env), lock_free(env)]
    checks += steady_state_checks(env, scenario.part, options.cadence, deadline_s=3.0)
    if any(not c.ok for c in checks[2:]):
        return checks  # the service is down: scenario checks would only repeat that
    try:
        checks += scenario.checks(env, options)
        if env.kind == "aws":
            from .aws import permissions

            checks.append(permissions(env, scenario, options))
    except BadInput:
        raise  # a value the user gave (e.g. --param node=...) is bad input, exit 2, not a failed check
    except OpsError as exc:
        checks.append(Check(f"{scenario.name} checks", "failed", exc.message, hint=exc.hint))
    return checks


def summary(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]}
