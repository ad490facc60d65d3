"""The os-patch step: OS updates on the environment's SSH hosts.

Per host (one at a time, or `max_concurrency` at once):
  node? cordon + drain (the cluster code's evictions: PDBs waited on, a drain
  that cannot finish is undone: uncordoned) -> pending updates -> apply
  (security only unless `updates: all`) -> reboot when the host says so ->
  wait for SSH with a new boot id (and the node Ready) -> uncordon -> verify.

A host that cannot be reached is skipped and reported; when more hosts fail
than the plan's max_errors, no further host is started. A host that does not
come back after its reboot stops the run (StepContext.state["stop_run"]) and
its node stays cordoned: the report names it with the uncordon command.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from ..core.errors import OpsError, TimedOut
from ..core.ports import CORDONED_BY, HostSpec, SshError
from ..core.waiting import wait_for
from .hostfacts import HostFacts, Update, pending, read_facts, survey
from .steps import Check, NotRestored, StepContext

REBOOT = "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &"
CORDON_MARK = "maint.os-patch"  # kept on a node (CORDONED_BY) while os-patch has it cordoned


def apply_command(family: str, updates: list[Update], which: str) -> list[str]:
    """The package-manager commands that apply `which` (security | all) of these updates."""
    if family == "apt":
        env = "env DEBIAN_FRONTEND=noninteractive"
        if which == "all":
            return [
                f"{env} apt-get -q update",
                f"{env} apt-get -y -q -o Dpkg::Options::=--force-confold upgrade",
            ]
        names = " ".join(u.name for u in updates if u.security)
        return [f"{env} apt-get -q update", f"{env} apt-get -y -q install --only-upgrade {names}"]
    return ["dnf -y -q upgrade" + ("" if which == "all" else " --security")]


class _Stopped(Exception):
    """Ctrl-C / SIGTERM reached the run: a host's thread stops at its next safe point."""


class HostRun:
    """One host's patch, as it goes: what the report and the rollback need."""

    def __init__(self, spec: HostSpec, facts: HostFacts) -> None:
        self.spec, self.facts = spec, facts
        self.status = "running"
        self.detail = ""
        self.applied: list[str] = []
        self.rebooted = False
        self.changed = False  # a package command or a reboot was started here: not as it was
        self.cordoned_by_us = False
        self.left_cordoned = False
        self.evicted: list[str] = []
        self.seconds = 0.0
        self.phase = "start"  # drain | update | reboot | verify: where an interrupt found it

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.spec.name,
            "node": self.spec.node_name,
            "os": self.facts.os,
            "status": self.status,
            "detail": self.detail,
            "applied": self.applied,
            "rebooted": self.rebooted,
            "evicted": self.evicted,
            "left_cordoned": self.left_cordoned,
            "seconds": round(self.seconds, 2),
        }


class OsPatch:
    def precheck(self, ctx: StepContext) -> list[Check]:
        port = ctx.env.parts.hosts()
        specs = port.list()
        if not specs:
            where = f"ops.environments.{ctx.env.name}.ssh.hosts"
            if ctx.settings.get("hosts_required"):
                return [
                    Check(
                        "hosts",
                        "failed",
                        f"{ctx.env.name} has no SSH hosts and the plan says hosts_required",
                        hint=f"list them under {where} (README: SSH hosts)",
                    )
                ]
            # the shipped plan runs os-patch everywhere; an environment without hosts has nothing to
            # patch: a skipped step (said in plan, log and report), not a failure stopping the run
            ctx.state["skip"] = f"no SSH hosts configured ({where}): nothing to patch"
            return [Check("hosts", "skip", ctx.state["skip"])]
        facts = survey(port, timeout=float(port.connect_timeout))
        ctx.state["facts"] = {f.name: f for f in facts}
        ctx.state["specs"] = {s.name: s for s in specs}
        down = [f for f in facts if not f.reachable]
        which = ctx.settings["updates"]
        listed = "; ".join(
            f"{f.name}: {f.os}, {len(f.security)} security / {len(f.updates)} pending"
            + (", reboot required" if f.reboot_required else "")
            for f in facts
            if f.reachable
        )
        checks = [Check("hosts", "ok", listed or "none reachable")]
        if down:
            status = "warn" if len(down) <= ctx.max_errors else "failed"
            checks.append(
                Check(
                    "hosts reachable",
                    status,
                    "; ".join(f"{f.name} skipped: {f.error}" for f in down)
                    + f" ({len(down)} unreachable, the plan's max_errors is {ctx.max_errors})",
                    hint=None if status == "warn" else "fix the host or raise max_errors to patch the others",
                )
            )
        nodes = [s for s in specs if s.node_name and ctx.state["facts"][s.name].reachable]
        if nodes:
            checks += self._drain_checks(ctx, nodes)
        ctx.state["todo"] = [s for s in specs if ctx.state["facts"][s.name].reachable]
        ctx.state["which"] = which
        return checks

    def _drain_checks(self, ctx: StepContext, nodes: list[HostSpec]) -> list[Check]:
        from ..cluster.nodes import drain_blockers, evictable

        kube = ctx.env.cluster.kube
        known = {n["metadata"]["name"] for n in kube.nodes()}
        out = []
        for spec in nodes:
            if spec.node_name not in known:
                out.append(
                    Check(
                        f"node {spec.node_name}", "failed", f"host {spec.name} names a node the cluster lacks"
                    )
                )
                continue
            evict, _ = evictable(kube, [str(spec.node_name)])
            blockers = drain_blockers(kube, evict)
            out.append(
                Check(
                    f"drain {spec.node_name}",
                    "failed" if blockers else "ok",
                    blockers[0] if blockers else f"{len(evict)} pods can be evicted",
                )
            )
        return out

    # action ------------------------------------------------------------------------

    def action(self, ctx: StepContext) -> dict[str, Any]:
        port = ctx.env.parts.hosts()
        facts: dict[str, HostFacts] = ctx.state["facts"]
        runs = [HostRun(s, facts[s.name]) for s in ctx.state["todo"]]
        ctx.state["runs"] = runs
        ctx.state["stopping"] = threading.Event()
        errors = sum(1 for f in facts.values() if not f.reachable)
        width = int(ctx.settings["max_concurrency"])
        lock = threading.Lock()
        for i in range(0, len(runs), width):
            batch = runs[i : i + width]
            if ctx.state.get("stop_run") or errors > ctx.max_errors:
                for r in batch:
                    r.status = "not-started"
                    r.detail = (
                        ctx.state.get("stop_run") or f"{errors} host(s) failed (max_errors {ctx.max_errors})"
                    )
                continue
            with ThreadPoolExecutor(max_workers=len(batch), thread_name_prefix="patch") as pool:
                futures = [pool.submit(self._patch, ctx, port, r, lock) for r in batch]
                try:
                    while not all(f.done() for f in futures):
                        wait(futures, timeout=0.2)
                except BaseException:
                    # Ctrl-C / SIGTERM arrive here, in the main thread; the hosts' threads stop at their
                    # next safe point (a poll, between phases; a package command in flight finishes)
                    ctx.state["stopping"].set()
                    wait(futures)
                    raise
            errors += sum(1 for r in batch if r.status != "ok")
        skipped = [
            {"host": f.name, "status": "unreachable", "detail": f.error}
            for f in facts.values()
            if not f.reachable
        ]
        return {"updates": ctx.state["which"], "hosts": [r.to_dict() for r in runs] + skipped}

    def _patch(self, ctx: StepContext, port: Any, r: HostRun, lock: threading.Lock) -> None:
        started = time.monotonic()
        stopping: threading.Event = ctx.state["stopping"]

        def say(text: str) -> None:  # every wait's poll reports here: a safe point to stop at
            ctx.progress(f"{r.spec.name}: {text}")
            if stopping.is_set():
                raise _Stopped

        try:
            if r.spec.node_name:
                r.phase = "drain"
                self._drain(ctx, r, say)
                if r.status == "failed":
                    return
            if stopping.is_set():
                raise _Stopped
            r.phase = "update"
            self._update(ctx, port, r, say)
            if r.status == "running" and r.spec.node_name:
                self._node_back(ctx, r, say)
            if r.status == "running":
                r.status = "ok"
        except _Stopped:
            self._stopped(ctx, r)
        except (OpsError, OSError) as exc:
            if r.status != "not-back":
                r.status = "failed"
                r.detail = str(exc)
                self._uncordon_if_ours(ctx, r)
        finally:
            r.seconds = time.monotonic() - started
            with lock:
                ctx.note("host", f"{r.spec.name}: {r.status}" + (f" ({r.detail})" if r.detail else ""))

    def _stopped(self, ctx: StepContext, r: HostRun) -> None:
        """Interrupted: a node whose host was told to reboot stays cordoned (its host is down or on
        its way down: its pods must not come back yet); otherwise it is uncordoned as for a failure."""
        r.status = "interrupted"
        node = r.spec.node_name
        if r.phase == "reboot":
            r.detail = "interrupted while it rebooted (not waited for)"
            if node and r.cordoned_by_us:
                r.left_cordoned = True
                r.detail += (
                    f"; node {node} stays cordoned: once the host is back, "
                    f"`inv cluster.uncordon {node} --env {ctx.env.name}` (or --resume the run)"
                )
            return
        r.detail = f"interrupted during its {r.phase}"
        self._uncordon_if_ours(ctx, r)

    def _drain(self, ctx: StepContext, r: HostRun, say: Any) -> None:
        from ..cluster.nodes import Evictions, pods_gone, pods_to_evict

        kube = ctx.env.cluster.kube
        node = str(r.spec.node_name)
        obj = kube.node(node)
        marked = ((obj.get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY) == CORDON_MARK
        # cordoned already by an os-patch run that was killed (its mark is on the node: any other
        # cordon clears it): ours to uncordon, or a --resume would leave the node out for good
        was = bool((obj.get("spec") or {}).get("unschedulable")) and not marked
        kube.execute(kube.step_cordon(node, by=CORDON_MARK))
        r.cordoned_by_us = not was
        say(f"node {node} cordoned")
        timeout = float(ctx.settings["drain_timeout_s"])
        interval = min(3.0, max(0.05, timeout / 100))
        try:
            ev = Evictions(kube, pods_to_evict(kube, [node]))
            ev.run(
                clock=ctx.env.clock,
                timeout=timeout,
                interval=interval,
                progress=say,
                what=f"evictions from {node}",
            )
            r.evicted = ev.evicted
            wait_for(
                lambda: pods_gone(kube, [node]),
                what=f"pods to leave {node}",
                clock=ctx.env.clock,
                timeout=timeout,
                interval=interval,
                progress=say,
            )
        except OpsError as exc:
            why = ev.why_stuck(timeout) if isinstance(exc, TimedOut) and "ev" in locals() else str(exc)
            self._uncordon_if_ours(ctx, r)
            r.status = "failed"
            r.detail = f"drain of node {node} failed: {why}; " + (
                "node uncordoned" if not r.left_cordoned else "node left cordoned"
            )

    def _update(self, ctx: StepContext, port: Any, r: HostRun, say: Any) -> None:
        timeout = float(ctx.settings["command_timeout_s"])
        which = ctx.state["which"]
        shell = port.connect(r.spec.name)
        try:
            updates, _ = pending(shell, r.facts.family, timeout, r.spec.name)
            chosen = [u for u in updates if which == "all" or u.security]
            if chosen:
                say(f"applying {len(chosen)} {which} update(s)")
                r.changed = True  # from the first command on (even one that fails part-way)
                for cmd in apply_command(str(r.facts.family), chosen, which):
                    res = shell.run(cmd, timeout=timeout, sudo=True)
                    if res.exit_code != 0:
                        raise SshError(
                            r.spec.name,
                            "command",
                            f"`{cmd}` exited {res.exit_code}: {res.stderr.strip()[-300:]}",
                        )
                r.applied = [f"{u.name} {u.version}" for u in chosen]
            _, reboot_required = pending(shell, r.facts.family, timeout, r.spec.name)
            if reboot_required and ctx.settings["reboot"]:
                boot = shell.run("cat /proc/sys/kernel/random/boot_id", timeout=30).stdout.strip()
                say("reboot required: rebooting")
                r.phase = "reboot"
                r.changed = True
                shell.run(REBOOT, timeout=30, sudo=True)
                shell.close()
                self._wait_back(ctx, port, r, boot, say)
                if r.status == "not-back":
                    return
                r.rebooted = True
                r.phase = "verify"
        finally:
            shell.close()
        self._verify(ctx, port, r, [u.name for u in chosen])

    def _wait_back(self, ctx: StepContext, port: Any, r: HostRun, old_boot: str, say: Any) -> None:
        limit = float(ctx.settings["reboot_timeout_s"])

        def back() -> tuple[bool, None, str]:
            try:
                shell = port.connect(r.spec.name, timeout=min(5.0, limit))
            except SshError as exc:
                return False, None, f"waiting for SSH ({exc.reason})"
            try:
                res = shell.run("cat /proc/sys/kernel/random/boot_id", timeout=10)
            except SshError:
                return False, None, "SSH answers, the session does not yet"
            finally:
                shell.close()
            boot = res.stdout.strip()
            if res.exit_code != 0 or not boot:  # a session cut by the reboot itself says nothing
                return False, None, "SSH answers, the boot id not yet"
            return boot != old_boot, None, "back" if boot != old_boot else "not rebooted yet (same boot id)"

        try:
            wait_for(
                back,
                what=f"{r.spec.name} to come back",
                clock=ctx.env.clock,
                timeout=limit,
                interval=min(2.0, max(0.1, limit / 50)),
                progress=say,
            )
        except TimedOut:
            r.status = "not-back"
            node = r.spec.node_name
            r.left_cordoned = bool(node)
            r.detail = f"did not answer SSH within {limit:.0f} s after its reboot" + (
                f"; node {node} stays cordoned: once the host is back, `inv cluster.uncordon {node} "
                f"--env {ctx.env.name}`"
                if node
                else ""
            )
            ctx.state["stop_run"] = f"{r.spec.name} {r.detail}"

    def _node_back(self, ctx: StepContext, r: HostRun, say: Any) -> None:
        from ..cluster.objects import node_ready

        kube = ctx.env.cluster.kube
        node = str(r.spec.node_name)
        wait_for(
            lambda: (
                node_ready(kube.node(node)),
                None,
                f"node {node} " + ("Ready" if node_ready(kube.node(node)) else "not Ready"),
            ),
            what=f"node {node} to be Ready",
            clock=ctx.env.clock,
            timeout=float(ctx.settings["reboot_timeout_s"]),
            interval=0.5,
            progress=say,
        )
        self._uncordon_if_ours(ctx, r)
        say(f"node {node} uncordoned")

    def _uncordon_if_ours(self, ctx: StepContext, r: HostRun) -> None:
        if not r.cordoned_by_us or not r.spec.node_name:
            return
        kube = ctx.env.cluster.kube
        try:
            kube.execute(kube.step_cordon(r.spec.node_name, cordon=False))
            r.cordoned_by_us = False
            r.left_cordoned = False
        except OpsError as exc:
            r.left_cordoned = True
            r.detail += (
                f"; uncordoning FAILED ({exc}): inv cluster.uncordon {r.spec.node_name} --env {ctx.env.name}"
            )

    def _verify(self, ctx: StepContext, port: Any, r: HostRun, applied: list[str]) -> None:
        shell = port.connect(r.spec.name)
        try:
            facts = read_facts(shell, HostFacts(r.spec.name, r.facts.address, r.spec.node_name), 120.0)
        finally:
            shell.close()
        still = [u.name for u in facts.updates if u.name in applied]
        problems = []
        if still:
            problems.append(f"still pending after the update: {', '.join(still)}")
        if facts.reboot_required and ctx.settings["reboot"]:
            problems.append("still says a reboot is required")
        if problems:
            r.status = "failed"
            r.detail = "; ".join(problems)

    # after -------------------------------------------------------------------------

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        runs: list[HostRun] = ctx.state.get("runs", [])
        facts: dict[str, HostFacts] = ctx.state.get("facts", {})
        down = [f.name for f in facts.values() if not f.reachable]
        bad = [r for r in runs if r.status != "ok"]
        good = [r for r in runs if r.status == "ok"]
        detail = f"{len(good)} patched" + "".join(
            f"; {r.spec.name}: {r.status}" + (f" ({r.detail})" if r.detail else "") for r in bad
        )
        if down:
            detail += f"; skipped (unreachable): {', '.join(down)}"
        checks = [Check("hosts patched", "failed" if bad or down else "ok", detail)]
        cordoned = [r for r in runs if r.left_cordoned]
        if cordoned:
            checks.append(
                Check(
                    "nodes schedulable",
                    "failed",
                    "left cordoned: " + ", ".join(str(r.spec.node_name) for r in cordoned),
                    hint="; ".join(
                        f"inv cluster.uncordon {r.spec.node_name} --env {ctx.env.name}" for r in cordoned
                    ),
                )
            )
        return checks

    def rollback(self, ctx: StepContext) -> str:
        """Packages are not downgraded; nodes this step cordoned are uncordoned, except one whose host
        did not come back (its pods must not return to it). Once any host was patched (or told to
        reboot) the account is NotRestored: the run did not leave the hosts as they were."""
        runs: list[HostRun] = ctx.state.get("runs", [])
        undone, kept = [], []
        for r in runs:
            if (
                r.status == "not-back"
                or r.left_cordoned
                or (r.status == "interrupted" and r.phase == "reboot")
            ):
                kept.append(f"{r.spec.node_name or r.spec.name} ({r.detail})")
                continue
            if r.cordoned_by_us:
                self._uncordon_if_ours(ctx, r)
                undone.append(str(r.spec.node_name))
        changed = [r for r in runs if r.changed]
        if changed:
            parts = [
                "packages are not downgraded: "
                + ", ".join(
                    f"{r.spec.name} ({len(r.applied)} update(s) installed"
                    + (", rebooted" if r.rebooted else "")
                    + ")"
                    if r.applied
                    else f"{r.spec.name} ({'rebooted' if r.rebooted else 'patched part-way'})"
                    for r in changed
                )
            ]
        else:
            parts = ["no host was patched"]
        if undone:
            parts.append(f"uncordoned {', '.join(undone)}")
        if kept:
            parts.append(f"left as they are: {'; '.join(kept)}")
        return NotRestored("; ".join(parts)) if changed else "; ".join(parts)


OS_PATCH = OsPatch()
