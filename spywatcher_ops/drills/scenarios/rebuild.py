"""Infrastructure: the full rebuild.

| scenario     | injects                                                                  | judged by                         |
|--------------|--------------------------------------------------------------------------|-----------------------------------|
| full-rebuild | terraform destroy of the sandbox except its backup store, then the rebuild (terraform apply, restore from the store, cache back); on aws (`--param region=R`) the loss of the region, rebuilt in R | RTO infrastructure, RPO database |

The sandbox is described by deploy/terraform/sandbox. Its destroy kills every
server and deletes the live data but keeps the base backups and the WAL
archive (the sandbox's cross-region snapshot copies). The rebuild is
`infra.redeploy`'s own stages (no second rebuild or restore path), run under
the drill's lock and journal; their table goes into the report. RTO is measured
on the client path (the drill's writer: fault -> first acknowledged write after
the rebuild), RPO from the same writer (acknowledged writes not yet archived
are the ones lost).

On aws it is the region-loss variant (`--param region=us-west-2`): the
environment's region is declared lost (nothing there is touched) and the
rebuild goes to the DR region (infra/region.py): terraform apply of the DR
region's workspace, the newest cross-region snapshot copy (made by `inv
db.snapshot --copy-to-region`) restored there into a new instance and read
back, the DR region's cache ready. Preflight fails (exit 3) when no copy newer
than targets.rpo.database is there. RTO: the declaration -> the restored
instance readable; RPO: the declaration - the copy's original snapshot time.
The restored DR instance is deleted afterwards unless --keep; the DR
workspace's infrastructure stays (it is the standby region's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import BadInput, NotReady, OperationFailed, OpsError
from ...core.plan import Plan, Step
from ...core.ports import no_progress
from ..cleanup import undo_handler
from ..preflight import backups_enabled, standby_ready
from ..runner import failover_measure, mark_fault
from ..scenario import Check, DrillContext, DrillOptions, Fault, Measured
from .database import DbScenario
from .registry import register

if TYPE_CHECKING:
    from ...core.environment import Environment

REBUILD_STAGES = ["infrastructure", "database", "cache"]


@register
class FullRebuild(DbScenario):
    name = "full-rebuild"
    injects = (
        "terraform destroy of the whole sandbox except its backup store (base backups + WAL archive), "
        "then the rebuild: terraform apply, database restored from the store, cache back"
    )
    part = "infrastructure"
    rto_key = "infrastructure"
    rpo_key = "database"
    kinds = ("sandbox", "aws")
    params = {
        "region": "aws: the DR region the rebuild goes to after the loss of the environment's own "
        "(one of terraform.dr_regions), e.g. us-west-2"
    }
    probes = ("db-write",)
    judged_by = ("db-write",)
    timeout_s = 1800.0
    timeout_aws_s = 7200.0
    aws_actions = (
        "rds:DescribeDBInstances",
        "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:ModifyDBInstance",
        "rds:AddTagsToResource",
        "rds:DeleteDBInstance",
        "elasticache:DescribeReplicationGroups",
        "secretsmanager:GetSecretValue",
    )

    def check_params(self, params: dict[str, str]) -> None:
        if "region" in params:
            from ...infra.region import check_region

            check_region(params["region"])

    def check_params_on(self, kind: str, params: dict[str, str]) -> None:
        self._region_for(kind, params)

    def _region(self, env: Environment, options: DrillOptions) -> str | None:
        return self._region_for(env.kind, options.params)

    @staticmethod
    def _region_for(kind: str, params: dict[str, str]) -> str | None:
        region = params.get("region")
        if kind == "aws" and not region:
            raise BadInput(
                "--scenario full-rebuild on aws is the region-loss rebuild: add --param region=REGION "
                "(a DR region of terraform.dr_regions), e.g. --param region=us-west-2"
            )
        if kind != "aws" and region:
            raise BadInput(
                f"--param region={region}: the region-loss variant runs on aws environments; "
                "the sandbox rebuild takes no region"
            )
        return region

    def _dr(self, env: Environment, options: DrillOptions) -> Environment:
        from ...infra.region import dr_environment

        region = self._region(env, options)
        assert region is not None
        return dr_environment(env, region)

    def setup(self, ctx: DrillContext) -> None:
        super().setup(ctx)
        if ctx.env.kind == "aws":
            return  # the copy in the DR region predates the drill: every write of it is lost
        # the drill table must be in the WAL archive before the disaster (reading the restorable window
        # commits a heartbeat, switches WAL and waits until it is archived): what the writer puts in it
        # afterwards, until the fault, is what a disaster can lose
        ctx.env.database.restorable_window()

    def _infra(self, env: Environment) -> Any:
        return env.parts.infrastructure()

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        if self._region(env, options):
            return self._region_checks(env, options)
        checks = [backups_enabled(env)]
        try:
            d = self._infra(env).describe()
            checks.append(
                Check("terraform", "ok", f"terraform {d['terraform']} in {d['dir']}, state {d['state']}")
            )
        except OpsError as exc:
            checks.append(Check("terraform", "failed", str(exc), exc.hint))
        return checks

    def _region_checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        from ...infra.region import newest_copy

        dr = self._dr(env, options)
        region = dr.env.region
        checks = []
        copy = newest_copy(dr)
        target = env.settings.targets.rpo.get("database")
        name = f"snapshot copy in {region}"
        if copy is None or copy.created is None:
            checks.append(
                Check(
                    name,
                    "failed",
                    f"no available snapshot of {env.database.instance_id()} in {region}",
                    hint=f"make one: inv db.snapshot --env {env.name} --copy-to-region {region}",
                )
            )
        else:
            age = (env.clock.now() - copy.created).total_seconds()
            if target is not None and age > target:
                checks.append(
                    Check(
                        name,
                        "failed",
                        f"the newest copy {copy.id} holds data {age:.0f} s old, older than "
                        f"targets.rpo.database {target:.0f} s: a rebuild from it cannot meet the RPO",
                        hint=f"copy a fresh snapshot: inv db.snapshot --env {env.name} --copy-to-region {region}",
                    )
                )
            else:
                checks.append(Check(name, "ok", f"newest: {copy.id}, data {age:.0f} s old"))
        try:
            d = self._infra(dr).describe()
            checks.append(
                Check(
                    f"terraform in {region}",
                    "ok",
                    f"terraform {d['terraform']} in {d['dir']}, workspace {d['workspace']}, state {d['state']}",
                )
            )
        except OpsError as exc:
            checks.append(Check(f"terraform in {region}", "failed", str(exc), exc.hint))
        return checks

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
        if self._region(env, options):
            return self._region_plan(env, options)
        plan = Plan(f"drill {self.name} on {env.name}")
        plan.add(
            Step(
                "terraform",
                "destroy",
                {"keeps": "base backups, WAL archive"},
                why="the disaster: every server killed, its live data deleted",
            )
        )
        plan.add(Step("redeploy", "infrastructure", {}, why="terraform apply rebuilds the servers"))
        plan.add(
            Step(
                "redeploy",
                "database",
                {"to": "latest"},
                why="restore from the newest base backup + archived WAL, verify, swap into service",
            )
        )
        plan.add(Step("redeploy", "cache", {}, why="every cache node alive, a primary elected"))
        return plan

    def _region_plan(self, env: Environment, options: DrillOptions) -> Plan:
        dr = self._dr(env, options)
        region = dr.env.region
        plan = Plan(f"drill {self.name} on {env.name}: the loss of {env.env.region}, rebuilt in {region}")
        plan.add(
            Step(
                "drill",
                "declare-region-lost",
                {"region": env.env.region},
                why="nothing there is touched: the rebuild uses only what the DR region holds",
            )
        )
        plan.add(
            Step(
                "redeploy",
                "infrastructure",
                {"region": region, "workspace": dr.env.raw["terraform"]["workspace"]},
                why="terraform apply of the DR region's workspace",
            )
        )
        plan.add(
            Step(
                "redeploy",
                "database",
                {"region": region, "from": "the newest snapshot copy there"},
                why="restored into a new instance, read back",
            )
        )
        plan.add(
            Step("redeploy", "cache", {"region": region}, why="every cache node alive, a primary elected")
        )
        plan.add(
            Step(
                f"rds@{region}",
                "delete_db_instance",
                {"instance": "the restored one"},
                why="unless --keep; only the instance this drill created",
            )
        )
        return plan

    def _region_inject(self, ctx: DrillContext) -> Fault:
        from ...infra.redeploy import RedeployContext, StageResult, stage_cache, stage_infrastructure
        from ...infra.region import newest_copy
        from ...recovery.common import free_name
        from ..probes import read_surviving

        env = ctx.env
        dr = self._dr(env, ctx.options)
        region = str(dr.env.region)
        copy = newest_copy(dr)
        if copy is None or copy.created is None:
            raise NotReady(f"no available snapshot copy in {region}")
        fault = mark_fault(
            ctx,
            f"region {env.env.region} declared lost: rebuild in {region} from snapshot copy {copy.id}",
            region=region,
            snapshot=copy.id,
            snapshot_created=copy.created.timestamp(),
        )
        rctx = RedeployContext(
            dr,
            self._infra(dr),
            "latest",
            [],
            progress=ctx.progress,
            held=ctx.step,
            timeout_s=self.hard_timeout(env, ctx.options),
        )
        stages: list[dict[str, Any]] = []
        surviving: set[int] = set()

        def database() -> str:
            db = dr.database
            new_id = free_name(
                db.instance_id(), "dr", env.clock.now(), {i.id.lower() for i in db.instances()}
            )
            plan = db.plan_restore(new_id, to_time=None, snapshot_id=copy.id)
            ctx.scratch["dr_instance"] = new_id
            # killed from here on, the next dr.drill / dr.preflight deletes it (cleanup.py)
            ctx.scratch["dr_undo"] = ctx.undo("delete-dr-instance", instance=new_id, region=region)
            ctx.step("dr-restore", "started", region=region, instance=new_id, snapshot=copy.id)
            db.restore(plan, progress=ctx.progress)
            found = read_surviving(db.connection(new_id), ctx.run_id, ctx.options.cadence, 30.0)
            if found is None:
                raise OperationFailed(
                    f"the restored instance {new_id} in {region} could not be read within 30 s"
                )
            surviving.update(found)
            ctx.step("dr-restore", "available", region=region, instance=new_id)
            return f"{new_id} restored from {copy.id} in {region}, readable"

        for name, run in (
            ("infrastructure", lambda: stage_infrastructure(rctx)),
            ("database", database),
            ("cache", lambda: stage_cache(rctx)),
        ):
            started = ctx.now()
            try:
                detail = run()
            except (OpsError, KeyboardInterrupt) as exc:
                stages.append(StageResult(name, "failed", round(ctx.now() - started, 3), str(exc)).to_dict())
                ctx.scratch["stages"] = stages
                raise
            stages.append(StageResult(name, "ok", round(ctx.now() - started, 3), detail).to_dict())
            ctx.step("stage", "ok", stage=name, region=region, detail=detail)
        fault.done_at = ctx.now()
        ctx.scratch["stages"] = stages
        ctx.scratch["verification"] = {
            "region": region,
            "instance": ctx.scratch["dr_instance"],
            "snapshot": copy.id,
            "snapshot_created": copy.created.timestamp(),
            "surviving": surviving,
        }
        return fault

    def inject(self, ctx: DrillContext) -> Fault:
        if self._region(ctx.env, ctx.options):
            return self._region_inject(ctx)
        from ...infra.apply import plan_and_apply
        from ...infra.redeploy import RedeployContext, StageResult, redeploy

        env = ctx.env
        infra = self._infra(env)
        marked: list[Fault] = []

        def disaster(_summary: Any) -> None:  # the instant before terraform starts destroying
            # killed from here on, the sandbox stays destroyed: the next dr.drill / dr.preflight rebuilds it
            ctx.scratch["undo"] = ctx.undo("rebuild-sandbox")
            marked.append(
                mark_fault(
                    ctx,
                    "terraform destroy: every sandbox server killed, live data deleted; backup store kept",
                )
            )

        started = ctx.now()
        plan_and_apply(
            env,
            infra,
            allow_destroy=[],
            step=ctx.step,
            on_line=no_progress,
            destroy=True,
            before_apply=disaster,
        )
        if not marked:
            raise OpsError(
                "terraform planned nothing to destroy: is the sandbox described by Terraform "
                "(inv infra.apply --env sandbox)?"
            )
        fault = marked[0]
        destroyed = ctx.now()
        ctx.event("destroyed", f"sandbox destroyed in {destroyed - fault.at:.2f} s; rebuilding")
        ctx.scratch["stages"] = [
            StageResult(
                "destroy", "ok", round(destroyed - started, 3), "terraform destroy (the fault)"
            ).to_dict()
        ]
        rctx = RedeployContext(
            env,
            infra,
            "latest",
            [],
            progress=ctx.progress,
            held=ctx.step,
            timeout_s=self.hard_timeout(env, ctx.options),
        )
        outcome = redeploy(rctx, stages=REBUILD_STAGES, resume=False, approve=lambda _plan: True)
        fault.done_at = ctx.now()
        ctx.event(
            "rebuilt",
            f"rebuild finished: {', '.join(f'{s.name} {s.duration_s:.2f} s' for s in outcome.stages)}",
        )
        ctx.scratch["stages"] += [s.to_dict() for s in outcome.stages]
        self._rebuilt(ctx, "rebuilt by the drill")
        return fault

    @staticmethod
    def _rebuilt(ctx: DrillContext, detail: str) -> None:
        ctx.scratch["rebuilt"] = True
        if ctx.scratch.get("undo"):
            ctx.undone(ctx.scratch["undo"], detail)

    def rollback(self, ctx: DrillContext, fault: Fault | None) -> None:
        """A rebuild that did not finish is run again: the sandbox must not stay destroyed. On aws the
        restored DR instance is deleted (unless --keep)."""
        if ctx.env.kind == "aws":
            self._region_rollback(ctx)
            return
        if fault is None or ctx.scratch.get("rebuilt"):
            return
        from ...infra.redeploy import RedeployContext, redeploy

        rctx = RedeployContext(
            ctx.env, self._infra(ctx.env), "latest", [], progress=ctx.progress, held=ctx.step
        )
        redeploy(rctx, stages=REBUILD_STAGES, resume=False, approve=lambda _plan: True)
        self._rebuilt(ctx, "rebuilt by the rollback")

    def _region_rollback(self, ctx: DrillContext) -> None:
        new_id = ctx.scratch.get("dr_instance")
        if not new_id:
            return
        region = str(self._dr(ctx.env, ctx.options).env.region)
        undo_id = ctx.scratch.get("dr_undo")
        if ctx.options.keep:
            ctx.step("kept", "ok", instance=new_id, region=region, detail="--keep: the DR instance stays")
            detail = f"kept {new_id} in {region} (--keep)"
        else:
            detail = _delete_dr_instance(ctx.env, {"instance": new_id, "region": region})
            ctx.step("dr-instance", "ok", instance=new_id, region=region, detail=detail)
        if undo_id:
            ctx.undone(undo_id, detail)

    def recheck(self, env: Environment) -> list[Check]:
        if env.kind == "aws":
            return []  # the environment's own region was not touched
        checks = [standby_ready(env, deadline_s=30.0)]
        nodes = env.cache.status()
        down = [n.id for n in nodes if not n.alive]
        checks.append(
            Check(
                "cache",
                "failed" if down or not nodes else "ok",
                f"down: {', '.join(down)}" if down else f"{len(nodes)} cache node(s) alive",
            )
        )
        return checks

    def measure(self, ctx: DrillContext, fault: Fault, probe_results: dict[str, Any]) -> Measured:
        if ctx.env.kind == "aws":
            v = ctx.scratch["verification"]
            writer = ctx.probe("db-write")
            writes = writer.writes() if writer else []
            return Measured(
                rto_s=(fault.done_at or ctx.now()) - fault.at,
                rpo_s=max(0.0, fault.at - v["snapshot_created"]),
                lost_writes=sum(1 for w in writes if w.acked and w.seq not in v["surviving"]),
                rto_basis=f"region declared lost -> DR infrastructure applied, the snapshot copy restored and "
                f"read back in {v['region']}, cache ready",
                rpo_basis="declaration - the copy's original snapshot time (all written since is lost)",
                details={
                    "stages": ctx.scratch.get("stages", []),
                    "dr": {
                        "region": v["region"],
                        "instance": v["instance"],
                        "snapshot": v["snapshot"],
                        "kept": ctx.options.keep,
                        "infrastructure": "the DR workspace's resources stay (the standby region's)",
                    },
                },
            )
        measured = failover_measure(ctx, fault, probe_results, self.judged_by)
        measured.rto_basis = (
            "terraform destroy -> first acknowledged write of the drill's writer after the "
            "rebuild, followed by a stable run"
        )
        measured.rpo_basis = "acknowledged writes missing after the restore (those not yet archived)"
        measured.details["stages"] = ctx.scratch.get("stages", [])
        return measured


@undo_handler("rebuild-sandbox")
def _rebuild_sandbox(env: Environment, data: dict[str, Any]) -> str:
    """A full-rebuild drill was killed after destroying the sandbox: rebuild it (under the cleanup's lock)."""
    from ...infra.redeploy import RedeployContext, redeploy

    infra = env.parts.infrastructure()
    if infra is None:
        raise OperationFailed(f"{env.name} has no Terraform configuration; rebuild it with inv sandbox.up")
    rctx = RedeployContext(env, infra, "latest", [], held=lambda *_a, **_k: None)
    outcome = redeploy(rctx, stages=REBUILD_STAGES, resume=False, approve=lambda _plan: True)
    return "sandbox rebuilt: " + ", ".join(f"{s.name} {s.status}" for s in outcome.stages)


@undo_handler("delete-dr-instance")
def _delete_dr_instance(env: Environment, data: dict[str, Any]) -> str:
    """The instance a region-loss drill restored in the DR region (tagged as made by the toolkit)."""
    from ...infra.region import dr_environment

    instance, region = str(data["instance"]), str(data["region"])
    db = dr_environment(env, region).database
    if not any(i.id.lower() == instance.lower() for i in db.instances()):
        return f"{instance} in {region}: not there (never created, or deleted already)"
    db.delete_instance(db.plan_delete_instance(instance), progress=no_progress)
    return f"deleted {instance} in {region}"
