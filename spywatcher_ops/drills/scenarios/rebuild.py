"""Infrastructure: the full rebuild.

| scenario     | injects                                                                  | judged by                         |
|--------------|--------------------------------------------------------------------------|-----------------------------------|
| full-rebuild | terraform destroy of the sandbox except its backup store, then the rebuild (terraform apply, restore from the store, cache back) | RTO infrastructure, RPO database |

The sandbox is described by deploy/terraform/sandbox. Its destroy kills every
server and deletes the live data but keeps the base backups and the WAL
archive (the sandbox's cross-region snapshot copies). The rebuild is
`infra.redeploy`'s own stages (no second rebuild or restore path), run under
the drill's lock and journal; their table goes into the report. RTO is measured
on the client path (the drill's writer: fault -> first acknowledged write after
the rebuild), RPO from the same writer (acknowledged writes not yet archived
are the ones lost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import OperationFailed, OpsError
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
    kinds = ("sandbox",)
    unsupported = {
        "aws": "the region-loss variant on AWS is not built yet; time a rebuild with "
        "inv infra.redeploy --env ENV"
    }
    probes = ("db-write",)
    judged_by = ("db-write",)
    timeout_s = 1800.0

    def setup(self, ctx: DrillContext) -> None:
        super().setup(ctx)
        # the drill table must be in the WAL archive before the disaster (reading the restorable window
        # commits a heartbeat, switches WAL and waits until it is archived): what the writer puts in it
        # afterwards, until the fault, is what a disaster can lose
        ctx.env.database.restorable_window()

    def _infra(self, env: Environment) -> Any:
        return env.parts.infrastructure()

    def checks(self, env: Environment, options: DrillOptions) -> list[Check]:
        checks = [backups_enabled(env)]
        try:
            d = self._infra(env).describe()
            checks.append(
                Check("terraform", "ok", f"terraform {d['terraform']} in {d['dir']}, state {d['state']}")
            )
        except OpsError as exc:
            checks.append(Check("terraform", "failed", str(exc), exc.hint))
        return checks

    def plan(self, env: Environment, options: DrillOptions) -> Plan:
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

    def inject(self, ctx: DrillContext) -> Fault:
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
        """A rebuild that did not finish is run again: the sandbox must not stay destroyed."""
        if fault is None or ctx.scratch.get("rebuilt"):
            return
        from ...infra.redeploy import RedeployContext, redeploy

        rctx = RedeployContext(
            ctx.env, self._infra(ctx.env), "latest", [], progress=ctx.progress, held=ctx.step
        )
        redeploy(rctx, stages=REBUILD_STAGES, resume=False, approve=lambda _plan: True)
        self._rebuilt(ctx, "rebuilt by the rollback")

    def recheck(self, env: Environment) -> list[Check]:
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
