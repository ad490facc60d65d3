"""Disaster-recovery drills that measure the achieved RTO and RPO against the targets."""

# Only invoke and core.cli at module level: `inv --list` must not import psycopg,
# redis, boto3 or rich. Each task imports the drills package when it runs.
from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke import Context

from spywatcher_ops.backends.table import environment
from spywatcher_ops.core.cli import (
    DRY_RUN_HELP,
    ENV_HELP,
    JSON_HELP,
    YES_HELP,
    console,
    ops_task,
    settings,
)
from spywatcher_ops.core.errors import BadInput

SCENARIO_HELP = (
    "scenario name (inv dr.scenarios lists them), e.g. db-failover (default: the environment's suite)"
)
REPORT_DIR_HELP = (
    "folder for the JSON, Markdown and HTML reports, e.g. /tmp/reports (default: <state_dir>/reports)"
)
TIMEOUT_HELP = "hard timeout after the fault, in seconds, e.g. 120; the drill aborts and rolls back (default: the scenario's)"
KEEP_HELP = "restore drills: keep the restored instance instead of removing it"
PARAM_HELP = "scenario parameter KEY=VALUE, repeatable, e.g. --param stall_s=3 (db-stall), --param writes=5 (db-async-loss)"
STABLE_HELP = "consecutive good probe attempts that count as recovered, e.g. 5"
NO_UP_HELP = "sandbox: do not start or repair the sandbox first; fail preflight if it is down"
SUITE_HELP = "a drill suite from drills/ (inv dr.check lists them), e.g. weekly-staging: its scenarios, params, targets"
LOG_HELP = (
    "append UTC-timestamped status lines (on each change, heartbeat every 30 s) to this file, "
    "e.g. /var/log/spywatcher/drills.log (default: ops.status_log, or none)"
)
QUIET_HELP = "print only the scorecard and errors (no plan, no status lines; --log still written)"


def _status_console(c: Context, json: bool, quiet: bool, log: str | None) -> Any:
    """The console of a long task: --log (or ops.status_log) gets the status lines, -q silences them."""
    out = console(json)
    out.quiet = quiet
    path = log or settings(c).raw.get("status_log")
    if path:
        target = Path(str(path)).expanduser()
        _writable_dir(target.parent if target.parent != Path("") else Path("."), "--log")
        if target.is_dir():
            raise BadInput(f"--log {target}: is a folder; give a file, e.g. {target / 'drills.log'}")
        out.log_path = target.resolve()
    return out


def _params(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--param {item}: not KEY=VALUE; e.g. --param stall_s=3")
        out[key.strip()] = value.strip()
    return out


def _options(timeout: int, keep: bool, param: list[str] | None, stable: int) -> Any:
    from spywatcher_ops.drills.measure import Stability
    from spywatcher_ops.drills.scenario import DrillOptions

    if timeout < 0:
        raise BadInput(f"--timeout {timeout}: use a number of seconds > 0, e.g. 120 (0: the scenario's own)")
    if not 1 <= stable <= 100:
        raise BadInput(f"--stable {stable}: use 1 to 100 consecutive good attempts, e.g. 5")
    return DrillOptions(
        timeout_s=float(timeout) if timeout else None,
        keep=keep,
        params=_params(param),
        stability=Stability(stable_count=stable),
    )


def _scenarios(e: Any, scenario: str | None) -> list[Any]:
    from spywatcher_ops.drills.scenarios import registry

    extra = e.settings.section("drills").get("scenario_modules") or []
    if scenario:
        names = [s.strip() for s in scenario.split(",") if s.strip()]
        return [registry.get(n, e.kind, extra) for n in names]
    suite = registry.default_suite(e, extra)
    if not suite:
        raise BadInput(
            f"no default drill suite for {e.name} ({e.kind}); pick one with --scenario, "
            f"or set environments.{e.name}.drill_suite"
        )
    return suite


def _chosen(
    e: Any, scenario: str | None, suite: str | None, options: Any, stable_given: bool
) -> tuple[Any, Any, Any]:
    """--scenario, --suite (drills/NAME.yaml: its scenarios, params, targets) or the default suite.
    With a suite, the environment's targets get its overrides; flags given on the command line win."""
    import dataclasses

    if not suite:
        return e, _scenarios(e, scenario), options
    if scenario:
        raise BadInput(
            f"--suite {suite} --scenario {scenario}: give one of them; the suite names its scenarios"
        )
    from spywatcher_ops.drills import suites
    from spywatcher_ops.drills.scenarios import registry

    extra = e.settings.section("drills").get("scenario_modules") or []
    loaded = suites.find(suite, e.settings, registry.load(extra))
    loaded.check_env(e.name)
    e = dataclasses.replace(e, settings=loaded.settings_for(e.settings))
    picked = [
        registry.get(n, e.kind, extra, source=f"drills/{loaded.path.name}: scenarios:")
        for n in loaded.scenarios
    ]
    return e, picked, suites.options_for(loaded, options, keep_stability=stable_given)


def _check_params(scenarios: list[Any], params: dict[str, str], kind: str) -> None:
    """Every --param key is read by one of the scenarios, and each value can work: checked before anything runs."""
    known = {k: v for sc in scenarios for k, v in sc.params.items()}
    for key in params:
        if key not in known:
            accepted = ", ".join(f"{k} ({v})" for k, v in sorted(known.items())) or "none for these scenarios"
            raise BadInput(f"--param {key}={params[key]}: no scenario here reads {key}; accepted: {accepted}")
    for sc in scenarios:
        sc.check_params(params)
        sc.check_params_on(kind, params)


def _report_dir(c: Context, report_dir: str | None) -> Path:
    return Path(report_dir).expanduser().resolve() if report_dir else settings(c).state_dir / "reports"


def _writable_dir(folder: Path, flag: str) -> Path:
    """Checked before any fault: a report that cannot be written would lose the measurement."""
    import os

    probe = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{flag} {folder}: is a file, not a folder")
    if probe is None or not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"{flag} {folder}: cannot write there; use a folder you can write, e.g. /tmp/reports")
    return folder


def _fmt(value: float | None) -> str:
    # one format for the scorecard and the reports
    from spywatcher_ops.drills.reporting.report import fmt_seconds

    return fmt_seconds(value)


def _undo_list(pending: list[dict[str, Any]]) -> str:
    return (
        ", ".join(f"{u.get('kind')} {u.get('instance') or u.get('nodes') or ''}".strip() for u in pending)
        or "close its record"
    )


def _cleanup_plan(e: Any, leftovers: list[Any]) -> Any:
    from spywatcher_ops.core.plan import Plan, Step

    plan = Plan(f"clean up after {len(leftovers)} earlier drill(s) on {e.name}")
    for start, pending in leftovers:
        for u in pending or [{"kind": "close-record"}]:
            plan.add(
                Step(
                    "drill",
                    f"undo {u.get('kind')}",
                    {k: v for k, v in u.items() if k not in ("id", "kind")},
                    why=f"left by drill {start['op_id']} (killed, or its rollback failed)",
                )
            )
    return plan


def _render_cleaned(out: Any, cleaned: list[dict[str, Any]]) -> None:
    for item in cleaned:
        details = "; ".join(
            f"{a['detail']}" + ("" if a["status"] == "ok" else " (FAILED: tried again next run)")
            for a in item["actions"]
        )
        out.print(f"cleaned up after drill {item['op_id']}: {details or 'nothing was left'}")


def _render_checks(out: Any, name: str, checks: list[Any]) -> None:
    out.print(f"preflight {name}:")
    for c in checks:
        if c.status == "ok":
            out.ok(f"{c.name}: {c.detail}")
        elif c.status == "warn":
            out.print(f"WARN {c.name}: {c.detail}")
        else:
            out.failed(f"{c.name}: {c.detail}", c.hint)


def _render_scorecard(out: Any, result: Any) -> None:
    rows = [["scenario", "RTO achieved / target (key)", "RPO achieved / target (key)", "verdict", "report"]]

    def key(name: str | None) -> str:  # the ops.targets key that judged the figure
        return f" ({name})" if name else ""

    for r in result.rows:
        rpo = f"{_fmt(r.rpo_s)} / {_fmt(r.rpo_target_s)}{key(r.rpo_target_key)}"
        if r.lost_writes:
            rpo += f" ({r.lost_writes} lost)"
        rows.append(
            [
                r.scenario,
                f"{_fmt(r.rto_s)} / {_fmt(r.rto_target_s)}{key(r.rto_target_key)}",
                rpo,
                r.outcome.upper(),
                r.report or "-",
            ]
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    out.print("")
    for i, row in enumerate(rows):
        out.print(
            " | ".join(str(cell).ljust(widths[j]) if j < 4 else str(cell) for j, cell in enumerate(row))
        )
        if i == 0:
            out.print("-+-".join("-" * w for w in widths) + "-+-" + "-" * 6)
    for r in result.rows:
        out.print(f"{r.scenario}: {r.summary}")
    if result.index.get("html"):
        out.print(f"run {result.run_id}: {result.index['html']} (inv dr.report latest re-renders it)")


@ops_task(
    iterable=["param"],
    help={
        "env": ENV_HELP,
        "scenario": SCENARIO_HELP + "; several: db-failover,cache-failover",
        "suite": SUITE_HELP,
        "json": JSON_HELP,
        "report_dir": REPORT_DIR_HELP,
        "timeout": TIMEOUT_HELP,
        "keep": KEEP_HELP,
        "param": PARAM_HELP,
        "stable": STABLE_HELP,
        "no_up": NO_UP_HELP,
        "dry_run": DRY_RUN_HELP,
        "yes": YES_HELP,
        "log": LOG_HELP,
        "quiet": QUIET_HELP,
    },
)
def drill(
    c: Context,
    env: str | None = None,
    scenario: str | None = None,
    suite: str | None = None,
    json: bool = False,
    report_dir: str | None = None,
    timeout: int = 0,
    keep: bool = False,
    param: list[str] | None = None,
    stable: int = 5,
    no_up: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    log: str | None = None,
    quiet: bool = False,
) -> None:
    """Run failover drills and print a scorecard of measured RTO/RPO against the targets.

    With no arguments: brings the sandbox up if needed, runs the environment's
    default suite (sandbox: db-failover, cache-failover, pitr-restore,
    snapshot-restore) and prints: scenario | RTO achieved / target | RPO
    achieved / target | verdict | report. Exit 0 all targets met, 1 a target
    missed, 2 bad input or refused, 3 preflight failed (nothing injected),
    4 aborted and rolled back. Reports: JSON, Markdown, HTML.
    Status: one live line in a terminal; redirected, a timestamped line per change.
    Example: inv dr.drill --env staging --scenario db-failover --json
    """
    from spywatcher_ops.core.errors import Refused
    from spywatcher_ops.core.guards import approve
    from spywatcher_ops.drills import suite as runs  # `suite` is the --suite flag

    out = _status_console(c, json, quiet, log)
    e = environment(c, env)
    options = _options(timeout, keep, param, stable)
    e, scenarios, options = _chosen(e, scenario, suite, options, stable_given=stable != 5)
    _check_params(scenarios, options.params, e.kind)
    folder = _writable_dir(_report_dir(c, report_dir), "--report-dir")
    if not e.env.allow_drills:
        raise Refused(
            f"drills are not allowed on {e.name} (allow_drills: false)",
            hint=f"set ops.environments.{e.name}.allow_drills: true for it first",
        )
    confirm = e.kind != "sandbox"  # the sandbox is ours to break; anything else asks
    # Leftovers of earlier drills first: they can fail the preflight (a frozen primary, a
    # cordoned node). On the sandbox at once; elsewhere the cleanup is a change too, so it
    # is shown and confirmed on its own before anything else (a dry run only lists it).
    cleaned: list[dict[str, Any]] = []
    later = runs.pending_leftovers(e) if dry_run or confirm else []
    if later and not dry_run:
        if approve(_cleanup_plan(e, later), e.env, out, dry_run=False, yes=yes, confirm=True):
            later = []
            cleaned = runs.cleanup_leftovers(e)
    elif not dry_run and not confirm:
        cleaned = runs.cleanup_leftovers(e)
    _render_cleaned(out, cleaned)
    with out.progress(f"drills on {e.name}") as progress:
        if e.kind == "sandbox" and not no_up and not dry_run:
            with e.operation("sandbox.up", {"by": "dr.drill"}):
                e.parts.ensure_running(progress)
        checked = runs.preflight_all(e, scenarios, options)
    for pre in checked:
        if not out.json_mode and (not pre.ok or any(ch.status == "warn" for ch in pre.checks)):
            _render_checks(out, pre.scenario.name, pre.checks)
    failed = runs.not_ready(checked)
    if failed is not None:
        out.emit_json(
            {
                "env": e.name,
                "preflight": {p.scenario.name: [ch.to_dict() for ch in p.checks] for p in checked},
                "exit_code": 3,
            }
        )
        raise failed
    plan = runs.suite_plan(e, scenarios, options)
    for start, pending in later:  # a dry run: what would be cleaned up first
        plan.notes.insert(0, f"first, clean up after drill {start['op_id']}: {_undo_list(pending)}")
    if not approve(plan, e.env, out, dry_run=dry_run, yes=yes, confirm=confirm):
        out.emit_json({"dry_run": True, "plan": plan.to_dict()})
        return
    with out.progress(f"drills on {e.name}") as progress:
        result = runs.run_suite(e, checked, options, report_dir=folder, progress=progress)
    result.cleaned = cleaned
    out.emit_json(result.to_dict())
    if not out.json_mode:
        _render_scorecard(out, result)
    err = result.exit_error()
    if err is not None:
        raise err


@ops_task(
    help={"env": "only scenarios this environment supports, e.g. staging (default: all)", "json": JSON_HELP}
)
def scenarios(c: Context, env: str | None = None, json: bool = False) -> None:
    """List the drill scenarios: what each injects, its targets, where it runs.

    Example: inv dr.scenarios --env staging
    """
    from spywatcher_ops.drills.runner import target_key
    from spywatcher_ops.drills.scenarios import registry

    out = console(json)
    s = settings(c)
    kind = s.env(env).kind if env else None
    extra = s.section("drills").get("scenario_modules") or []
    rows, data = [], []
    for name, sc in sorted(registry.load(extra).items()):
        if kind and kind not in sc.kinds:
            continue
        rto_k, rpo_k = target_key(s.targets.rto, sc.rto_key), target_key(s.targets.rpo, sc.rpo_key)
        rto = f"RTO {rto_k} {_fmt(s.targets.rto.get(rto_k))}" if rto_k else "RTO not judged"
        rpo = f"RPO {rpo_k} {_fmt(s.targets.rpo.get(rpo_k))}" if rpo_k else "RPO not judged"
        suites = (", ".join(sc.default_for) or "-") + (
            f" (when {sc.default_needs} is set)" if sc.default_for and sc.default_needs else ""
        )
        rows.append([name, sc.injects, f"{rto}; {rpo}", ", ".join(sc.kinds), suites])
        data.append(
            {
                **sc.describe(),
                "rto_target_s": s.targets.rto.get(rto_k) if rto_k else None,
                "rpo_target_s": s.targets.rpo.get(rpo_k) if rpo_k else None,
                "default_suite_for": list(sc.default_for),
            }
        )
    out.emit_json({"scenarios": data})
    for r in rows:
        out.print(
            f"{r[0]}\n  injects: {r[1]}\n  judged by: {r[2]}\n  environments: {r[3]} (default suite: {r[4]})"
        )


@ops_task(
    help={"env": ENV_HELP, "scenario": SCENARIO_HELP, "json": JSON_HELP, "param": PARAM_HELP},
    iterable=["param"],
)
def preflight(
    c: Context,
    env: str | None = None,
    scenario: str | None = None,
    json: bool = False,
    param: list[str] | None = None,
) -> None:
    """Check everything a drill needs, without injecting anything. Exit 3 if a check fails.

    Steady state, drills allowed, lock free, standby / Multi-AZ, backups,
    TestFailover quota, IAM permissions (aws) and predictions where the
    configuration cannot meet a target. On the sandbox it first cleans up after
    drills that were killed; elsewhere it only lists what dr.drill would clean up.
    Example: inv dr.preflight --scenario db-failover
    """
    from spywatcher_ops.drills import suite

    out = console(json)
    e = environment(c, env)
    options = _options(0, False, param, 5)
    scenarios_ = _scenarios(e, scenario)
    _check_params(scenarios_, options.params, e.kind)
    with out.progress(f"preflight on {e.name}"):
        # Only the sandbox is cleaned up here; elsewhere a preflight changes nothing and
        # lists what `inv dr.drill` will offer to clean up (with confirmation).
        cleaned = suite.cleanup_leftovers(e) if e.kind == "sandbox" else []
        pending = [] if e.kind == "sandbox" else suite.pending_leftovers(e)
        checked = suite.preflight_all(e, scenarios_, options)
    out.emit_json(
        {
            "env": e.name,
            "cleaned_up": cleaned,
            "pending_cleanup": [{"op_id": s["op_id"], "undo": p} for s, p in pending],
            "scenarios": {
                p.scenario.name: {"ok": p.ok, "checks": [ch.to_dict() for ch in p.checks]} for p in checked
            },
        }
    )
    _render_cleaned(out, cleaned)
    for start, undo in pending:
        out.print(
            f"left by drill {start['op_id']}: {_undo_list(undo)} (inv dr.drill cleans it up, after confirmation)"
        )
    if not out.json_mode:
        for pre in checked:
            _render_checks(out, pre.scenario.name, pre.checks)
    failed = suite.not_ready(checked)
    if failed is not None:
        raise failed


@ops_task(
    positional=["id"],
    help={
        "id": "a run or drill id, or its first 4+ characters (scorecard, dr.history), "
        "or latest (the newest run), e.g. 3f9e",
        "report_dir": REPORT_DIR_HELP,
        "json": JSON_HELP,
    },
)
def report(c: Context, id: str | None = None, report_dir: str | None = None, json: bool = False) -> None:
    """Re-render a run's index or one drill's report (JSON, Markdown, HTML) from the journal.

    ID: latest (the newest run of dr.drill), or any unique prefix (4+ characters) of a run or
    drill id; an ambiguous prefix is exit 2 listing the candidates.
    Example: inv dr.report latest
    """
    from spywatcher_ops.drills import suite
    from spywatcher_ops.drills.reporting import runindex

    if not id or not id.strip():
        raise BadInput("give a drill id or 'latest', e.g. inv dr.report latest")
    out = console(json)
    rep = suite.rerender(settings(c).state_dir, id.strip(), _report_dir(c, report_dir))
    out.emit_json(rep)
    for said in [*rep.get("warnings", []), *([rep["kept"]] if rep.get("kept") else [])]:
        out.warn(said)
    if "items" in rep:  # a run's index
        out.print(
            f"run {rep['id']} on {rep['environment']}: {rep['outcome'].upper()} "
            f"({len(rep['items'])} drill(s), started {rep['started_at']})"
        )
        for item in rep["items"]:
            out.print(f"  {item['name']}: {str(item['outcome']).upper()} - {item['id']}")
        for name in rep["missing"]:
            out.print(f"  {name}: no report")
        for name in rep.get("pending") or []:
            out.print(f"  {name}: not run")
        said = runindex.progress_line(rep)
        if said:
            out.print(f"  {said}")
    else:
        out.print(
            f"{rep['scenario']['name']} on {rep['environment']['name']} ({rep['id']}): "
            f"{rep['outcome'].upper()} - {rep['summary']}"
        )
    for kind, path in rep["reports"].items():
        out.print(f"{kind}: {path}")


@ops_task(
    help={
        "scenario": "only this scenario, e.g. db-failover",
        "env": "only this environment, e.g. sandbox",
        "last": "how many recent runs to list per scenario, e.g. 10",
        "json": JSON_HELP,
        "fail_on_regression": "exit 1 when a regression is flagged (for a scheduler to alert on)",
    }
)
def history(
    c: Context,
    scenario: str | None = None,
    env: str | None = None,
    last: int = 10,
    json: bool = False,
    fail_on_regression: bool = False,
) -> None:
    """Show the drill trend: last runs, p50 / p95 of RTO and RPO, regressions flagged.

    With --fail-on-regression the exit code is 1 when any regression is flagged.
    Example: inv dr.history --scenario db-failover --fail-on-regression
    """
    from spywatcher_ops.drills.reporting import history as hist

    if last < 1:
        raise BadInput(f"--last {last}: use 1 or more, e.g. 10")
    out = console(json)
    s = settings(c)
    if env is not None:
        s.env(env)  # an unknown name is bad input listing the known ones
    if scenario is not None:
        from spywatcher_ops.drills.scenarios import registry

        known = registry.load(s.section("drills").get("scenario_modules") or [])
        if scenario not in known:
            raise BadInput(f"--scenario {scenario}: unknown scenario; known: {', '.join(known)}")
    runs = hist.read(hist.history_path(s.state_dir))
    trend = hist.trend(runs, scenario=scenario, env=env, last=last)
    out.emit_json(trend)
    if not trend["groups"]:
        out.print("no drills recorded yet" + (f" for {scenario}" if scenario else "") + "; run inv dr.drill")
        return
    for g in trend["groups"]:
        for line in hist.group_lines(g):
            out.print(line)
    flagged = [f"{g['scenario']} on {g['env']}: {reg}" for g in trend["groups"] for reg in g["regressions"]]
    if fail_on_regression and flagged:
        from spywatcher_ops.core.errors import TargetMissed

        raise TargetMissed(f"{len(flagged)} regression(s) flagged: " + "; ".join(flagged))


@ops_task(help={"json": JSON_HELP})
def check(c: Context, json: bool = False) -> None:
    """Validate every drill suite in drills/: scenarios, params, targets, environments (exit 2 with file and line).

    Example: inv dr.check
    """
    from spywatcher_ops.drills import suites
    from spywatcher_ops.drills.scenarios import registry

    out = console(json)
    s = settings(c)
    found, problems = suites.check_all(s, registry.load(s.section("drills").get("scenario_modules") or []))
    out.emit_json(
        {
            "suites": [
                {
                    "name": x.name,
                    "file": f"drills/{x.path.name}",
                    "environments": x.environments,
                    "scenarios": x.scenarios,
                }
                for x in found
            ],
            "problems": [str(p) for p in problems],
        }
    )
    for p in problems:
        out.failed(str(p))
    if problems:
        more = f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""
        raise BadInput(f"{problems[0]}{more}")
    for x in found:
        out.ok(f"drills/{x.path.name}: {', '.join(x.scenarios)} on {', '.join(x.environments)}")
    if not found:
        out.print(f"no drill suites in {suites.suites_dir(s)}")
