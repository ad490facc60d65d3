"""Proofs: restores that prove the backups, and scenarios that prove the measurement.

| scenario         | injects                                                           | judged by                    |
|------------------|-------------------------------------------------------------------|------------------------------|
| pitr-restore     | marks a corruption instant, restores to just before it into a new instance | RTO/RPO database    |
| snapshot-restore | restores the newest snapshot into a new instance                  | RTO database, RPO snapshot (falls back to database) |
| db-stall         | SIGSTOP every primary process for --param stall_s (3 s)           | RTO database                 |
| db-async-loss    | stops WAL receipt on the standby, lets N writes through, kills the primary | RPO database        |

db-stall and db-async-loss exist to prove the measurement itself (an outage
and a loss of known size); they are not in the default suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ...core.errors import BadInput, NotReady, OperationFailed
from ...core.plan import Plan, Step
from .. import measure
from ..preflight import backups_enabled, standby_ready
from ..probes import read_surviving
from ..runner import mark_fault, targets_for
from ..scenario import Check, DrillContext, DrillOptions, Fault, Measured
from .database import DB_PROBES, DbScenario
from .failover import failover_result
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment
    from ...core.ports import FaultInjector, Instance

T = TypeVar("T")


def _param(options: DrillOptions, key: str, default: Any, convert: Callable[[Any], T], expected: str) -> T:
    """--param KEY (else `default`) converted; BadInput naming the value and `expected` if it is not."""
    try:
        return convert(options.params.get(key, default))
    except (TypeError, ValueError):
        raise BadInput(f"--param {key}={options.params.get(key)}: {expected}") from None


def _targets(env: Environment) -> tuple[dict[str, float], dict[str, float]]:
    return env.settings.targets.rto, env.settings.targets.rpo


# restores ---------------------------------------------------------------------


class _RestoreScenario(DbScenario):
    probes = ("db-write",)
    judged_by = ()  # RTO is restore + verification, not a probe's recovery
    # A restore builds a new instance (tens of minutes on RDS), unlike the automated failover
    # that targets.rto.database (60 s) is defined for: judged by targets.rto.restore, or by
    # targets.rto.database where no restore target is configured.
    rto_key = "restore"
    timeout_s = 300.0
    timeout_aws_s = 7200.0
    aws_actions: tuple[str, ...] = (
        "rds:DescribeDBInstances",
        "rds:DeleteDBInstance",
        "rds:AddTagsToResource",
        "rds:ModifyDBInstance",
        "rds:DescribeDBInstanceAutomatedBackups",
        "rds:DescribeEvents",
        "secretsmanager:GetSecretValue",
    )

    def new_instance_id(self, ctx: DrillContext) -> str:
        base = ctx.env.database.instance_id()
        stamp = datetime.fromtimestamp(ctx.now(), UTC).strftime("%H%M%S")
        return f"{base}-drill-{stamp}"[:63]

    def _restore(
        self, ctx: DrillContext, new_id: str, *, to_time: datetime | None, snapshot_id: str | None
    ) -> Instance:
        db = ctx.env.database
        plan = db.plan_restore(new_id, to_time=to_time, snapshot_id=snapshot_id)
        undo_id = ctx.undo("delete-instance", instance=new_id)
        ctx.scratch["restored"] = (new_id, undo_id)
        started = ctx.now()
        ctx.event("restore-started", f"restore into {new_id} started", source="drill")
        inst = db.restore(plan, progress=ctx.progress)
        ctx.event(
            "restore-finished", f"{new_id} accepts connections ({ctx.now() - started:.2f} s)", source="drill"
        )
        return inst

    def _plan(self, env: Environment, *steps: Step) -> Plan:
        """The drill's plan: `steps` (the restore last), then the restored instance removed."""
        plan = Plan(f"drill {self.name} on {env.name}")
        for step in steps:
            plan.add(step)
        plan.add(
            Step(
                env.kind,
                "delete_instance",
                {"instance": "the restored one"},
                why="unless --keep; only an instance this drill created",
            )
        )
        return plan

    def _restore_and_verify(
        self,
        ctx: DrillContext,
        fault: Fault,
        *,
        to_time: datetime | None,
        snapshot_id: str | None,
        **verification: Any,
    ) -> None:
        """Restore into a new instance and read which writes of this run survived: the fault is over
        then. What measure() needs is kept in ctx.scratch["verification"]."""
        new_id = self.new_instance_id(ctx)
        self._restore(ctx, new_id, to_time=to_time, snapshot_id=snapshot_id)
        surviving = self._verify(ctx, new_id)
        fault.done_at = ctx.now()
        ctx.scratch["verification"] = {"instance": new_id, **verification, "surviving": surviving}

    @staticmethod
    def _writes(ctx: DrillContext) -> list[Any]:
        writer = ctx.probe("db-write")
        return writer.writes() if writer else []

    def _verify(self, ctx: DrillContext, new_id: str) -> set[int]:
        surviving = read_surviving(ctx.env.database.connection(new_id), ctx.run_id, ctx.options.cadence, 30.0)
        if surviving is None:
            raise OperationFailed(f"the restored instance {new_id} could not be read within 30 s")
        ctx.event(
            "verified", f"{new_id}: {len(surviving)} drill write(s) of this run present", source="drill"
        )
        return surviving

    def provider_events(self, ctx: DrillContext, since: datetime) -> list[Any]:
        """The source's events and, on RDS, the restored instance's (creating, available, deleted)."""
        events = list(ctx.env.database.events(since))
        restored = ctx.scratch.get("restored")
        if restored and ctx.env.kind == "aws":
            try:
                events += ctx.env.database.events(since, instance_id=restored[0])
            except Exception as exc:  # noqa: BLE001 - keep the source's events; say what is missing
                ctx.step(
                    "provider-events", "failed", instance=restored[0], error=f"{type(exc).__name__}: {exc}"
                )
        return sorted(events, key=lambda e: e.at)

    def rollback(self, ctx: DrillContext, fault: Fault | None) -> None:
        restored = ctx.scratch.get("restored")
        if not restored:
            return
        new_id, undo_id = restored
        if ctx.options.keep:
            ctx.step("kept", "ok", instance=new_id, detail="--keep: the restored instance stays")
            ctx.undone(undo_id, f"kept {new_id} (--keep)")
            return
        from ..cleanup import _delete_instance

        detail = _delete_instance(ctx.env, {"instance": new_id})
        ctx.undone(undo_id, detail)


@register
class PitrRestore(_RestoreScenario):
    name = "pitr-restore"
    injects = (
        "while writes stream, marks a 'corruption' instant and restores to just before it into a new "
        "instance, then verifies which writes survived (removed afterwards unless --keep)"
    )
    kinds = ("sandbox", "aws")
    default_for = ("sandbox",)
    aws_actions = _RestoreScenario.aws_actions + ("rds:RestoreDBInstanceToPointInTime",)
    params = {
        "after_mark_s": "seconds of writes after the corruption mark that must not survive, 0-60, e.g. 0.3"
    }

    def check_params(self, params: dict[str, str]) -> None:
        self.after_mark_s(DrillOptions(params=params))

    def after_mark_s(self, options: DrillOptions) -> float:
        value = _param(
            options, "after_mark_s", "0.3", float, "not a number of seconds, e.g. after_mark_s=0.3"
        )
        if not 0 <= value <= 60:
            raise BadInput(f"--param after_mark_s={options.params.get('after_mark_s')}: use 0 to 60 seconds")
        return value

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        checks = [backups_enabled(env)]
        if env.kind == "aws" and checks[0].ok:
            # RDS can only restore up to LatestRestorableTime, about 5 minutes behind.
            window = env.database.restorable_window()
            lag = (env.clock.now() - window.latest).total_seconds()
            target = _targets(env)[1].get("database")
            if target is not None and lag > target:
                checks.append(
                    Check(
                        "prediction",
                        "warn",
                        f"the newest restorable time is {lag:.0f} s old: a point-in-time restore "
                        f"cannot meet the {target:.0f} s RPO target",
                    )
                )
        return checks

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        return self._plan(
            env,
            Step("drill", "mark_corruption", {}, mutating=False, why="the instant the data 'went bad'"),
            Step(
                env.kind,
                "restore_to_point_in_time",
                {
                    "new_instance": f"{env.database.instance_id()}-drill-HHMMSS",
                    "to_time": "corruption - 1 ms",
                },
            ),
        )

    def inject(self, ctx: DrillContext) -> Fault:
        fault = mark_fault(ctx, "corruption marked: restore to just before this instant")
        restore_point = fault.at - 0.001
        # Keep writing a little past the mark: those writes must NOT be in the copy.
        if not ctx.sleep(self.after_mark_s(ctx.options)):
            return fault
        if ctx.env.kind == "aws":
            latest = ctx.env.database.restorable_window().latest.timestamp()
            restore_point = min(restore_point, latest)
        self._restore_and_verify(
            ctx,
            fault,
            to_time=datetime.fromtimestamp(restore_point, UTC),
            snapshot_id=None,
            restore_point=restore_point,
        )
        return fault

    def measure(self, ctx: DrillContext, fault: Fault, probe_results: dict[str, Any]) -> Measured:
        v = ctx.scratch["verification"]
        writes = self._writes(ctx)
        check = measure.restore_check(writes, v["surviving"], v["restore_point"])
        ok = check.missing_before_point == 0 and check.present_after_point == 0
        return Measured(
            rto_s=(fault.done_at or ctx.now()) - fault.at,
            rpo_s=check.rpo_s,
            lost_writes=check.missing_before_point,
            rto_basis="corruption mark -> restored instance verified (restore + verification)",
            rpo_basis="restore point - newest surviving write",
            details={
                "restore": {
                    "instance": v["instance"],
                    "restore_point": v["restore_point"],
                    "kept": ctx.options.keep,
                },
                "verification": "passed" if ok else "failed",
                "surviving": check.surviving,
                "newest_surviving_ts": check.newest_surviving_ts,
                "missing_before_point": check.missing_before_point,
                "missing_seqs": check.missing_seqs[:200],
                "present_after_point": check.present_after_point,
            },
        )


@register
class SnapshotRestore(_RestoreScenario):
    name = "snapshot-restore"
    injects = (
        "restores the newest snapshot into a new instance and verifies it (removed afterwards unless --keep)"
    )
    kinds = ("sandbox", "aws")
    # Restoring a snapshot loses everything written since it, so its RPO is bounded by
    # the backup interval, not by the PITR-based database target: judged by
    # targets.rpo.snapshot when configured, else by targets.rpo.database.
    rpo_key = "snapshot"
    default_for = ("sandbox",)
    aws_actions = _RestoreScenario.aws_actions + (
        "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceFromDBSnapshot",
    )

    def _newest(self, env: Environment) -> Any:
        snaps = [
            s for s in env.database.list_snapshots() if s.status == "available" and s.created is not None
        ]
        return max(snaps, key=lambda s: s.created.timestamp() if s.created else 0.0) if snaps else None

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        newest = self._newest(env)
        if newest is None:
            return [
                Check(
                    "snapshot available",
                    "failed",
                    "no available snapshot to restore",
                    hint="take one: inv db.snapshot",
                )
            ]
        age = (env.clock.now() - newest.created).total_seconds()
        checks = [Check("snapshot available", "ok", f"newest: {newest.id} ({newest.kind}), {age:.0f} s old")]
        target = targets_for(env, self)[1]  # the same key and fallback the verdict uses
        if target is not None and age > target:
            checks.append(
                Check(
                    "prediction",
                    "warn",
                    f"snapshot-only recovery cannot meet the {target:.0f} s RPO target: the newest "
                    f"snapshot is already {age:.0f} s old",
                )
            )
        db_target = env.settings.targets.rpo.get("database")
        if db_target is not None and age > db_target and db_target != target:
            # what the issue asks preflight to say: snapshots alone cannot meet the database RPO
            checks.append(
                Check(
                    "prediction",
                    "warn",
                    f"snapshot-only recovery cannot meet the {db_target:.0f} s database RPO target: the "
                    f"newest snapshot is {age:.0f} s old; only a point-in-time restore can (this drill "
                    f"is judged by targets.rpo.{self.rpo_key})",
                )
            )
        return checks

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        newest = self._newest(env)
        return self._plan(
            env,
            Step(
                env.kind,
                "restore_from_snapshot",
                {
                    "snapshot_id": newest.id if newest else None,
                    "new_instance": f"{env.database.instance_id()}-drill-HHMMSS",
                },
            ),
        )

    def inject(self, ctx: DrillContext) -> Fault:
        snap = self._newest(ctx.env)
        if snap is None:
            raise NotReady("no available snapshot to restore", hint="take one: inv db.snapshot")
        fault = mark_fault(
            ctx,
            f"data lost: restore from the newest snapshot {snap.id}",
            snapshot=snap.id,
            snapshot_created=snap.created.timestamp(),
        )
        self._restore_and_verify(
            ctx,
            fault,
            to_time=None,
            snapshot_id=snap.id,
            snapshot=snap.id,
            snapshot_created=snap.created.timestamp(),
        )
        return fault

    def measure(self, ctx: DrillContext, fault: Fault, probe_results: dict[str, Any]) -> Measured:
        v = ctx.scratch["verification"]
        writes = self._writes(ctx)
        check = measure.restore_check(writes, v["surviving"], v["snapshot_created"])
        return Measured(
            rto_s=(fault.done_at or ctx.now()) - fault.at,
            rpo_s=max(0.0, fault.at - v["snapshot_created"]),
            lost_writes=sum(1 for w in writes if w.acked and w.seq not in v["surviving"]),
            rto_basis="fault -> snapshot restored and verified",
            rpo_basis="fault time - snapshot time",
            details={
                "restore": {
                    "instance": v["instance"],
                    "snapshot": v["snapshot"],
                    "snapshot_created": v["snapshot_created"],
                    "kept": ctx.options.keep,
                },
                "verification": "passed" if check.present_after_point == 0 else "failed",
                "surviving_of_this_run": check.surviving,
                "present_after_snapshot": check.present_after_point,
            },
        )


# measurement proofs (sandbox only) ------------------------------------------------

# The faults come from the environment's FaultInjector port (env.faults): the
# scenarios never signal a process themselves.


class _FreezeProof(DbScenario):
    """db-stall and db-async-loss: sandbox only, judged by both database probes, and each
    freezes processes (SIGSTOP) that must not stay frozen: journalled before the signal, so
    the next run thaws them after a killed drill, and thawed by the rollback of an aborted one."""

    kinds = ("sandbox",)
    probes = DB_PROBES
    judged_by = DB_PROBES
    timeout_s = 60.0

    def _journal_freeze(self, ctx: DrillContext, processes: Any) -> str:
        undo = ctx.undo("sigcont", pids=processes.record())
        ctx.scratch["frozen"] = (processes, undo)
        return undo

    def _unfrozen(self, ctx: DrillContext, detail: str) -> None:
        """The drill itself thawed or ended the frozen processes."""
        _, undo = ctx.scratch.pop("frozen")
        ctx.undone(undo, detail)

    def rollback(self, ctx: DrillContext, fault: Fault | None) -> None:
        frozen = ctx.scratch.pop("frozen", None)
        if frozen:  # aborted while they are frozen
            processes, undo = frozen
            ctx.env.faults.thaw(processes)
            ctx.undone(undo, "SIGCONT sent by the rollback")


@register
class DbStall(_FreezeProof):
    name = "db-stall"
    injects = (
        "freezes every process of the primary (SIGSTOP) for --param stall_s=3, then SIGCONT: a hung server"
    )
    params = {"stall_s": "seconds to freeze the primary, 0 < stall_s <= 300, e.g. 3"}

    def check_params(self, params: dict[str, str]) -> None:
        self.stall_s(DrillOptions(params=params))

    def stall_s(self, options: DrillOptions) -> float:
        value = _param(options, "stall_s", 3.0, float, "not a number of seconds, e.g. stall_s=3")
        if not 0 < value <= 300:
            raise BadInput(f"--param stall_s={value:g}: use 0 < stall_s <= 300 seconds")
        return value

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        stall = self.stall_s(options)
        return [Check("stall length", "ok", f"the primary will be frozen for {stall:g} s")]

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        pid = env.faults.primary().pid_list[0]
        plan = Plan(f"drill {self.name} on {env.name}")
        plan.add(Step("sandbox", "kill", {"pid": pid, "children": True, "signal": "SIGSTOP"}))
        plan.add(
            Step(
                "sandbox",
                "kill",
                {"pid": pid, "children": True, "signal": "SIGCONT", "after_s": self.stall_s(options)},
            )
        )
        return plan

    def inject(self, ctx: DrillContext) -> Fault:
        stall = self.stall_s(ctx.options)
        faults = ctx.env.faults
        primary = faults.primary()
        # journalled before the signal: a drill killed while the primary is frozen is thawed by the next run
        self._journal_freeze(ctx, primary)
        fault = mark_fault(
            ctx, f"primary frozen (SIGSTOP) for {stall:g} s", pids=primary.pid_list, stall_s=stall
        )
        faults.freeze(primary)
        ctx.sleep(fault.at + stall - ctx.now())
        faults.thaw(primary)
        ctx.event("resumed", f"primary resumed (SIGCONT) after {ctx.now() - fault.at:.3f} s")
        self._unfrozen(ctx, "SIGCONT sent")
        fault.done_at = ctx.now()
        return fault


@register
class DbAsyncLoss(_FreezeProof):
    name = "db-async-loss"
    injects = (
        "stops WAL receipt on the standby (SIGSTOP its walreceiver), lets --param writes=5 acknowledged "
        "writes through, kills the primary and promotes: a loss of known size (asynchronous replication only)"
    )
    params = {"writes": "acknowledged writes to lose, 1 to 1000, e.g. 5"}

    def check_params(self, params: dict[str, str]) -> None:
        self.writes(DrillOptions(params=params))

    def writes(self, options: DrillOptions) -> int:
        value = _param(options, "writes", 5, int, "not a whole number, e.g. writes=5")
        if not 1 <= value <= 1000:
            raise BadInput(f"--param writes={value}: use 1 to 1000")
        return value

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        self.writes(options)
        mode = str(env.env.raw.get("replication") or "synchronous")
        checks = [standby_ready(env)]
        hint = f"set ops.environments.{env.name}.replication: asynchronous and run inv sandbox.up"
        if mode != "asynchronous":
            checks.append(
                Check(
                    "asynchronous replication",
                    "failed",
                    f"replication is {mode}: a synchronous standby has every acknowledged write",
                    hint=hint,
                )
            )
            return checks
        live = env.faults.synchronous_standbys()
        if live is None:
            live = "?"  # unreadable: say so rather than guess
        if live:
            checks.append(
                Check(
                    "asynchronous replication",
                    "failed",
                    f"the primary still waits for a synchronous standby (synchronous_standby_names={live})",
                    hint=hint,
                )
            )
        else:
            checks.append(
                Check("asynchronous replication", "ok", "the primary does not wait for the standby")
            )
        return checks

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        plan = Plan(f"drill {self.name} on {env.name}")
        plan.add(Step("sandbox", "kill", {"process": "standby walreceiver", "signal": "SIGSTOP"}))
        plan.add(Step("drill", "wait_for_acked_writes", {"writes": self.writes(options)}, mutating=False))
        plan.add(Step("sandbox", "kill", {"process": "primary and children", "signal": "SIGKILL"}))
        plan.add(
            Step(
                "sandbox",
                "kill",
                {"process": "standby walreceiver", "signal": "SIGTERM then SIGCONT"},
                why="it exits without reading what is still in its socket: those writes are lost",
            )
        )
        plan.steps += env.database.plan_failover().steps[1:]
        return plan

    def inject(self, ctx: DrillContext) -> Fault:
        n = self.writes(ctx.options)
        db, faults = ctx.env.database, ctx.env.faults
        writer = ctx.probe("db-write")
        if writer is None:
            raise OperationFailed("db-async-loss needs the db-write probe")
        receiver = faults.wal_receiver()
        primary = faults.primary()  # found now: the kill below must follow the N-th ack at once
        # Stop receipt in a quiet moment: right after an ack, once the standby has everything.
        self._after_next_ack(writer, timeout=5.0)
        self._wait_caught_up(faults, timeout=2.0)
        self._journal_freeze(ctx, receiver)
        faults.freeze(receiver)
        stopped_at = ctx.now()
        ctx.event(
            "wal-receipt-stopped", f"standby walreceiver (pid {receiver.pid_list[0]}) stopped with SIGSTOP"
        )
        acked_at_stop = self._acked(writer)
        deadline = time.monotonic() + 10 + n * 0.5
        while self._acked(writer) < acked_at_stop + n:
            if time.monotonic() > deadline:
                raise OperationFailed(
                    f"the writer did not get {n} acknowledged writes within the deadline "
                    "(is the primary waiting for a synchronous standby?)"
                )
            time.sleep(0.002)
        fault = mark_fault(
            ctx,
            f"primary killed (SIGKILL) {n} acknowledged write(s) after WAL receipt stopped",
            walreceiver=receiver.pid_list[0],
            wal_receipt_stopped_at=stopped_at,
        )
        faults.kill(primary)
        killed_at = ctx.now()
        faults.end_frozen(
            receiver
        )  # it exits without reading what is still in its socket: those writes are lost
        # What should be lost, from timing alone (the measurement compares rows instead):
        window = sorted(
            w.seq for w in writer.writes() if w.acked_at is not None and stopped_at < w.acked_at <= killed_at
        )
        ctx.step(
            "loss-window", "ok", acked_after_wal_stop=window, wal_stopped_at=stopped_at, killed_at=killed_at
        )
        self._unfrozen(ctx, "walreceiver terminated after the primary died")
        result = db.failover(db.plan_failover(), progress=ctx.progress)
        fault.done_at = ctx.now()
        failover_result(ctx, result)
        return fault

    @staticmethod
    def _acked(writer: Any) -> int:
        return sum(1 for w in writer.writes() if w.acked)

    def _after_next_ack(self, writer: Any, timeout: float) -> None:
        start = self._acked(writer)
        end = time.monotonic() + timeout
        while self._acked(writer) == start and time.monotonic() < end:
            time.sleep(0.001)

    @staticmethod
    def _wait_caught_up(faults: FaultInjector, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if faults.replication_caught_up():
                return
            time.sleep(0.002)
        raise NotReady("the standby did not catch up with the primary within 2 s")
