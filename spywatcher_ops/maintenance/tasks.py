"""The Sunday maintenance job: window, notice, plan against the time budget, run, report."""

# Only invoke and core.cli at module level: `inv --list` must not import psycopg,
# redis, boto3, yaml or rich. Each task imports the maintenance package when it runs.
from __future__ import annotations

from typing import Any

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import ENV_HELP, JSON_HELP, console, ops_task, settings

PLAN_HELP = "plan name in maintenance/, e.g. sunday (default: ops.maintenance.plan)"


@ops_task(help={"env": ENV_HELP, "plan": PLAN_HELP, "json": JSON_HELP})
def window(c: Context, env: str | None = None, plan: str | None = None, json: bool = False) -> None:
    """Show the next maintenance window (start, end, cutoff) in UTC and local time, and whether it is open now.

    Example: inv maint.window --env production --json
    """
    from spywatcher_ops.maintenance.context import setup
    from spywatcher_ops.maintenance.window import current_or_next

    out = console(json)
    e = environment(c, env)
    s = setup(e, plan)
    now = e.clock.now()
    win = current_or_next(s.spec, now)
    data = {
        "env": e.name,
        "plan": s.plan.name,
        "window": s.spec.describe(),
        "notice_days": s.spec.notice_days,
        **win.to_dict(now),
    }
    out.emit_json(data)
    out.print(f"{e.name}: {s.spec.describe()}")
    if win.always:
        out.print("open now: yes (always)")
        return
    out.print(
        f"{'current' if win.inside(now) else 'next'} window: {data['start']} .. {data['end']} UTC, "
        f"cutoff {data['cutoff']}"
    )
    out.print(
        f"  local ({win.timezone}): {data['start_local']} .. {data['end_local']}, cutoff {data['cutoff_local']}"
    )
    out.print(f"open now: {'yes' if win.inside(now) else 'no'}")


@ops_task(help={"json": JSON_HELP})
def check(c: Context, json: bool = False) -> None:
    """Validate every maintenance plan: steps, settings, environments (exit 2 with file and line).

    Example: inv maint.check
    """
    from spywatcher_ops.core.errors import BadInput
    from spywatcher_ops.maintenance import plans
    from spywatcher_ops.maintenance.context import kinds, plans_folder

    out = console(json)
    s = settings(c)
    files, problems = plans.check_all(kinds(s), plans_folder(s))
    out.emit_json({"files": [plans.shown(p) for p in files], "problems": [str(p) for p in problems]})
    for p in problems:
        out.failed(str(p))
    if problems:
        more = f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""
        raise BadInput(f"{problems[0]}{more}")
    for f in files:
        out.ok(plans.shown(f))
    if not files:
        out.print(f"no plans in {plans.shown(plans_folder(s))}/")


RUNS_LISTED = 10  # maint.status lists this many recent run ids
WINDOW_HELP = "NEXT (the current or next window, default) or the local date of a window day, e.g. 2026-12-06"
REPORT_DIR_HELP = (
    "folder for the JSON, Markdown and HTML reports, e.g. /tmp/reports (default: <state_dir>/reports)"
)


def _report_dir(c: Context, report_dir: str | None) -> Any:
    from pathlib import Path

    return Path(report_dir) if report_dir else settings(c).state_dir / "reports"


def _fmt(value: Any) -> str:
    from spywatcher_ops.drills.reporting.report import fmt_seconds

    return fmt_seconds(value)


@ops_task(help={"env": ENV_HELP, "plan": PLAN_HELP, "window": WINDOW_HELP, "json": JSON_HELP})
def plan(
    c: Context, env: str | None = None, plan: str | None = None, window: str | None = None, json: bool = False
) -> None:
    """Show what the job would do: steps, expected durations against the cutoff, what would not fit, pre-checks.

    Expected durations are the p95 of earlier runs of each step on this environment
    (inv maint.history), or the step's documented default without history.
    Example: inv maint.plan --env production --window 2026-12-06
    """
    from spywatcher_ops.maintenance.context import setup
    from spywatcher_ops.maintenance.planning import make_plan

    out = console(json)
    e = environment(c, env)
    p = make_plan(e, setup(e, plan), window)
    out.emit_json(p)
    w = p["window"]
    out.print(f"{p['plan']} on {p['env']}: {p['window_spec']}")
    if not w["always"]:
        out.print(
            f"window {w['start']} .. {w['end']} UTC, cutoff {w['cutoff']} (open now: "
            f"{'yes' if w['inside_now'] else 'no'})"
        )
    for c_ in p["prechecks"]:
        out.print(f"  {c_['status'].upper():<6} {c_['name']}: {c_['detail']}")
    rows = []
    for s in p["steps"]:
        checks = "; ".join(f"{x['status'].upper()} {x['detail']}" for x in s["prechecks"]) or "-"
        rows.append(
            [
                s["index"],
                s["step"],
                f"{_fmt(s['expected_s'])} ({s['basis']})",
                _fmt(s["running_total_s"]) if s["fits"] else "-",
                (s["ends"] or "") if s["fits"] else "NOT STARTED: would cross the cutoff",
                checks,
            ]
        )
    out.table(["#", "step", "expected", "running total", "ends by", "pre-check"], rows, whole=["step"])
    out.print(f"expected total {_fmt(p['expected_total_s'])}; {p['snapshot']}")
    if p["not_started"]:
        out.print(f"would not be started: {', '.join(p['not_started'])}")


@ops_task(
    help={
        "env": ENV_HELP,
        "plan": PLAN_HELP,
        "window": WINDOW_HELP,
        "publish": "send it to the environment's SNS topic and journal that it went out for this window",
        "text": "print the plain-text version instead of Markdown",
        "json": JSON_HELP,
    }
)
def notice(
    c: Context,
    env: str | None = None,
    plan: str | None = None,
    window: str | None = None,
    publish: bool = False,
    text: bool = False,
    json: bool = False,
) -> None:
    """Write the maintenance announcement (Markdown or text): steps, expected impact and duration, rollback.

    Example: inv maint.notice --env production --window NEXT --publish
    """
    from spywatcher_ops.maintenance import notice as nt
    from spywatcher_ops.maintenance.context import setup
    from spywatcher_ops.maintenance.planning import make_notice

    out = console(json)
    e = environment(c, env)
    n = make_notice(e, setup(e, plan), window)
    result = nt.publish(e, n) if publish else None
    out.emit_json({**n, "markdown": nt.to_markdown(n), "text": nt.to_text(n), "published": result})
    out.print(nt.to_text(n) if text else nt.to_markdown(n))
    if result:
        where = (
            f"SNS {result['topic']} (message {result['message_id']})" if result["topic"] else "the journal"
        )
        out.print(f"published for the window {result['window']} to {where} at {result['published_at']}")


@ops_task(
    help={
        "env": ENV_HELP,
        "plan": PLAN_HELP,
        "yes": "run without a prompt (production also needs "
        "SPYWATCHER_OPS_CONFIRM=<env>); what the scheduler passes",
        "resume": "continue the unfinished run with this id from its first unfinished step, e.g. 3f2a9c1d0e4b",
        "emergency": "run outside the window or without the notice (needs --reason); shown on every report",
        "reason": 'why this is an emergency, e.g. "CVE-2026-1234 security patch"',
        "dry_run": "show the steps, the guards' verdict and the pre-checks; change nothing",
        "report_dir": REPORT_DIR_HELP,
        "json": JSON_HELP,
    }
)
def run(
    c: Context,
    env: str | None = None,
    plan: str | None = None,
    yes: bool = False,
    resume: str | None = None,
    emergency: bool = False,
    reason: str | None = None,
    dry_run: bool = False,
    report_dir: str | None = None,
    json: bool = False,
) -> None:
    """Run the maintenance plan in its window: pre-checks, a snapshot, each step measured by the probes; report.

    Refused outside the window or without the notice (exit 2), unless --emergency --reason.
    A step whose expected duration would cross the cutoff is not started (exit 1).
    Ctrl-C or SIGTERM rolls the current step back and stops (exit 4; 1 when it left changes, e.g.
    os-patch's installed packages); --resume ID continues.
    Example: inv maint.run --env production --yes
    """
    from spywatcher_ops.core.errors import OperationFailed, RolledBack
    from spywatcher_ops.core.guards import approve
    from spywatcher_ops.core.plan import Plan, Step
    from spywatcher_ops.maintenance import report as rep
    from spywatcher_ops.maintenance.context import setup
    from spywatcher_ops.maintenance.run import RunOptions
    from spywatcher_ops.maintenance.run import run as run_plan

    out = console(json)
    e = environment(c, env)
    s = setup(e, plan)
    options = RunOptions(plan=plan, yes=yes, resume=resume, emergency=emergency, reason=reason)

    def confirm(lines: list[str]) -> None:
        p = Plan(f"maintenance plan {s.plan.name} on {e.name}")
        for st in s.env_plan.steps:
            p.add(Step("maintenance", st.step, {k: v for k, v in st.settings.items()}))
        if not approve(p, e.env, out, dry_run=dry_run, yes=yes):
            raise _DryRun()

    try:
        with out.progress(f"maintenance on {e.name}") as progress:
            outcome = run_plan(e, s, options, progress=progress, approve=confirm)
    except _DryRun:
        out.emit_json({"dry_run": True, "env": e.name, "plan": s.plan.name})
        return
    report = rep.build(outcome.records, outcome.run_id)
    paths = rep.write(report, _report_dir(c, report_dir))
    if e.kind == "aws":  # CloudWatch metrics and the SNS summary, as the drills do
        from spywatcher_ops.maintenance.publish import publish

        report["published"] = publish(e, report)
    out.emit_json(report)
    _print_steps(out, report)
    for kind, path in paths.items():
        out.print(f"{kind}: {path}")
    if outcome.state == "interrupted":
        # what the interrupted step's rollback did, in its words: os-patch's packages stay installed
        # and a node whose host was rebooting stays cordoned; "rolled back" alone would claim more
        cut = next((s for s in report["steps"] if s["status"] == "interrupted"), None)
        undo = (cut or {}).get("rollback") or {}
        hint = f"continue with: inv maint.run --env {e.name} --resume {outcome.run_id}"
        if cut is None or undo.get("status") != "ok":
            where = f" in {cut['index']}. {cut['name']}" if cut else ""
            raise OperationFailed(
                f"run {outcome.run_id} interrupted{where}; its rollback: {undo.get('status', 'none')}: "
                f"{undo.get('detail', 'none ran')}; the rest not started",
                hint=hint,
            )
        raise RolledBack(
            f"run {outcome.run_id} interrupted in {cut['index']}. {cut['name']}; its rollback: "
            f"{undo.get('detail')}; the rest not started",
            hint=hint,
        )
    if outcome.state != "complete":
        raise OperationFailed(f"run {outcome.run_id} {outcome.state}: {report['summary']}")


class _DryRun(Exception):
    """--dry-run: the guard showed the plan; nothing runs."""


def _print_steps(out: Any, report: dict[str, Any]) -> None:
    out.print(
        f"{report['plan']} on {report['environment']['name']} (run {report['id']}): "
        f"{report['state'].upper()} - {report['summary']}"
    )
    if report.get("emergency"):
        out.print(f"EMERGENCY: {report['emergency']['reason']}")
    rows = [
        [
            s["index"],
            s["name"],
            s["status"] + (f" ({s['reason']})" if s.get("reason") else ""),
            _fmt(s["duration_s"]),
            s["summary"] or "-",
            s["error"] or "",
        ]
        for s in report["steps"]
    ]
    out.table(["#", "step", "status", "duration", "client impact", "error"], rows, whole=["step"])


@ops_task(help={"env": ENV_HELP, "json": JSON_HELP})
def status(c: Context, env: str | None = None, json: bool = False) -> None:
    """Show the current or last maintenance run step by step, and any unfinished run.

    Example: inv maint.status --env production
    """
    from spywatcher_ops.core.journal import read
    from spywatcher_ops.maintenance import report as rep
    from spywatcher_ops.maintenance import runlog

    out = console(json)
    e = environment(c, env)
    records = read(e.journal.path)
    runs = runlog.runs(records, e.name)
    if not runs:
        out.emit_json({"env": e.name, "runs": []})
        out.print(
            f"no maintenance run on {e.name} yet; inv maint.plan --env {e.name} shows what one would do"
        )
        return
    last = runlog.latest(runs)
    report = rep.build(runlog.records_of(records, last["run_id"]), last["run_id"])
    out.emit_json({"env": e.name, "runs": runs, "last": report})
    _print_steps(out, report)
    # the ids maint.report and --resume take, newest work first
    recent = sorted(runs, key=lambda r: str(r.get("last_at") or ""), reverse=True)[:RUNS_LISTED]
    out.print(f"runs on {e.name} (newest {len(recent)} of {len(runs)}):")
    for r in recent:
        out.print(f"  {r['run_id']}  {r['started_at']}  {r['plan']}  {r['state']}: {r['why']}")
    for r in runs:
        if r["state"] == "unfinished":
            out.print(
                f"UNFINISHED: run {r['run_id']} ({r['why']}); next step {r['next_step']}: "
                f"inv maint.run --env {e.name} --resume {r['run_id']}"
            )


@ops_task(
    positional=["id"],
    help={
        "id": "the run id (inv maint.status lists them), or latest",
        "env": "environment to look in, e.g. staging (default: all)",
        "report_dir": REPORT_DIR_HELP,
        "json": JSON_HELP,
    },
)
def report(
    c: Context,
    id: str | None = None,
    env: str | None = None,
    report_dir: str | None = None,
    json: bool = False,
) -> None:
    """Render a maintenance run's report (JSON, Markdown, HTML) from the journal: inv maint.report latest|ID.

    Example: inv maint.report latest --env sandbox
    """
    from spywatcher_ops.core.errors import BadInput
    from spywatcher_ops.core.journal import read
    from spywatcher_ops.maintenance import report as rep
    from spywatcher_ops.maintenance import runlog

    if not id or not id.strip():
        raise BadInput("give a run id or 'latest', e.g. inv maint.report latest")
    out = console(json)
    s = settings(c)
    names = [s.env(env).name] if env else sorted(s.environments)
    found = None
    for name in names:
        records = read(s.state_dir / "journal" / f"{name}.jsonl")
        runs = runlog.runs(records, name)
        for r in runs:
            if id.strip() in ("latest", r["run_id"]) and (found is None or runlog.latest([found[0], r]) is r):
                found = (r, records)
    if found is None:
        raise BadInput(
            f"{id}: no maintenance run with that id"
            + (f" on {env}" if env else "")
            + "; inv maint.status lists them"
        )
    r, records = found
    doc = rep.build(runlog.records_of(records, r["run_id"]), r["run_id"])
    paths = rep.write(doc, _report_dir(c, report_dir))
    out.emit_json(doc)
    _print_steps(out, doc)
    for kind, path in paths.items():
        out.print(f"{kind}: {path}")


@ops_task(
    help={
        "env": "only this environment, e.g. sandbox",
        "step": "only this step, e.g. db-engine",
        "last": "how many recent runs to list per step, e.g. 10",
        "json": JSON_HELP,
    }
)
def history(
    c: Context, env: str | None = None, step: str | None = None, last: int = 5, json: bool = False
) -> None:
    """Show maintenance step history: durations (p50/p95) and measured client impact per step.

    This is what the plan's expected durations come from.
    Example: inv maint.history --env sandbox --step db-engine
    """
    from spywatcher_ops.core.errors import BadInput
    from spywatcher_ops.maintenance import history as hist
    from spywatcher_ops.maintenance.steps import STEPS

    if last < 1:
        raise BadInput(f"--last {last}: use 1 or more, e.g. 5")
    s = settings(c)
    if env is not None:
        s.env(env)
    if step is not None and step not in STEPS:
        raise BadInput(f"--step {step}: unknown step; known: {', '.join(STEPS)}")
    out = console(json)
    groups = hist.summary(hist.read(hist.history_path(s.state_dir)), env, step, last)
    out.emit_json({"groups": groups})
    if not groups:
        out.print("no maintenance steps recorded yet; inv maint.run records them")
        return
    for g in groups:
        impact = ", ".join(f"{k} {_fmt(v)}" for k, v in g["impact_p95_s"].items()) or "-"
        out.print(
            f"{g['step']} on {g['env']}: {g['runs']} run(s), {g['ok']} ok; duration p50 "
            f"{_fmt(g['duration_p50_s'])} p95 {_fmt(g['duration_p95_s'])}; impact p95: {impact}; "
            f"lost writes {g['lost_writes']}"
        )
        for r in g["last_runs"]:
            out.print(f"  {r['at']}  {r['status']:<11} {_fmt(r.get('duration_s')):>8}  run {r['run_id']}")


@ops_task(
    help={
        "env": ENV_HELP,
        "set": "queue a pending-reboot database parameter change, NAME=VALUE, "
        "e.g. max_connections=80 (sandbox)",
        "json": JSON_HELP,
    }
)
def pending(c: Context, env: str | None = None, set: str | None = None, json: bool = False) -> None:
    """Show pending database changes (applied by the db-engine step), or queue one with --set.

    Example: inv maint.pending --env sandbox --set max_connections=80
    """
    from spywatcher_ops.core.errors import BadInput, Unsupported

    out = console(json)
    e = environment(c, env)
    port = e.parts.maintenance()
    if set is not None:
        name, sep, value = set.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise BadInput(f"--set {set}: not NAME=VALUE, e.g. max_connections=80")
        if e.kind != "sandbox":
            raise Unsupported(
                f"--set on {e.name}: change the RDS parameter group itself; this lists what it holds"
            )
        with e.operation("maint.pending", {"set": set}) as op:
            queued = port.queue_change(name.strip(), value.strip())
            op.result = queued
        out.print(f"queued {queued['name']} = {queued['value']} (now {queued['current']}), pending-reboot")
    changes = port.pending_changes()
    out.emit_json({"env": e.name, "pending": [vars(ch) for ch in changes]})
    if not changes:
        out.print(f"nothing pending on {e.name}")
    for ch in changes:
        out.print(f"{ch.part}: {ch.name} {ch.current} -> {ch.pending} ({ch.apply}) {ch.description}")


@ops_task(
    help={
        "env": ENV_HELP,
        "json": JSON_HELP,
        "timeout": "seconds each host may take to connect and answer, e.g. 10",
    }
)
def hosts(c: Context, env: str | None = None, json: bool = False, timeout: int = 10) -> None:
    """Each SSH host of the environment: reachable, OS, pending updates (security / all), reboot required, uptime.

    Read-only; every host is asked at once, each within --timeout. Exit 1 when a host cannot be read.
    Example: inv maint.hosts --env production --json
    """
    from spywatcher_ops.core.cli import check_timeout
    from spywatcher_ops.core.errors import OperationFailed
    from spywatcher_ops.maintenance.hostfacts import survey

    check_timeout(timeout)
    out = console(json)
    e = environment(c, env)
    port = e.parts.hosts()
    found = survey(port, timeout=float(timeout))
    out.emit_json(
        {"env": e.name, "known_hosts": str(port.known_hosts), "hosts": [f.to_dict() for f in found]}
    )
    if not found:
        out.print(f"{e.name} has no SSH hosts (ops.environments.{e.name}.ssh.hosts)")
        return
    rows = []
    for f in found:
        if not f.reachable:
            rows.append([f.name, f.address, "NO", f.error or "", "", "", "", ""])
            continue
        up = (
            f"{(f.uptime_s or 0) / 86400:.1f} d"
            if (f.uptime_s or 0) >= 86400
            else f"{(f.uptime_s or 0) / 3600:.1f} h"
        )
        rows.append(
            [
                f.name,
                f.address,
                "yes",
                f.os or "?",
                str(len(f.security)),
                str(len(f.updates)),
                "YES" if f.reboot_required else "no",
                up,
            ]
        )
    out.table(  # whole: a log (no terminal) keeps the names an on-call person copies, not 'sandbox…'
        ["host", "address", "reachable", "os", "security", "all", "reboot", "uptime"],
        rows,
        title=e.name,
        whole=["host", "address"],
    )
    bad = [f for f in found if not f.reachable]
    if bad:
        raise OperationFailed(
            f"{len(bad)} of {len(found)} hosts could not be read: "
            + "; ".join(f"{f.name} ({f.reason}: {f.error})" for f in bad)
        )
