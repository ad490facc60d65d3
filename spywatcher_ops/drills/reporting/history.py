"""The drill history: one JSON line per drill run in `<state_dir>/drills/history.jsonl`,
and the trend over it: last runs, p50 / p95 per metric, regressions flagged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..measure import percentile
from .report import fmt_seconds as _fmt  # one format for the scorecard and the reports

METRICS = ("rto_s", "rpo_s", "lost_writes")
# A run regresses when a metric is worse than REGRESSION_FACTOR x the median of the
# earlier runs AND worse by more than the absolute slack (so 0.07 s -> 0.09 s is noise).
REGRESSION_FACTOR = {"rto_s": 1.5, "rpo_s": 1.5, "lost_writes": 1.0}  # any lost write more is a regression
ABSOLUTE_SLACK = {"rto_s": 0.25, "rpo_s": 0.25, "lost_writes": 0}
MIN_BASELINE = 3


def history_path(state_dir: Path) -> Path:
    return state_dir / "drills" / "history.jsonl"


def entry(report: dict[str, Any]) -> dict[str, Any]:
    """The history line for one report."""
    return {
        "id": report["id"],
        "at": report["started_at"],
        "env": report["environment"]["name"],
        "kind": report["environment"]["kind"],
        "scenario": report["scenario"]["name"],
        "outcome": report["outcome"],
        "rto_s": report["rto"]["achieved_s"],
        "rto_target_s": report["rto"]["target_s"],
        "rto_verdict": report["rto"]["verdict"],
        "rto_target_key": report["rto"].get("target_key"),
        "rpo_s": report["rpo"]["achieved_s"],
        "rpo_target_s": report["rpo"]["target_s"],
        "rpo_verdict": report["rpo"]["verdict"],
        "rpo_target_key": report["rpo"].get("target_key"),
        "lost_writes": report["rpo"].get("lost_writes"),
        "report": (report.get("reports") or {}).get("json"),
    }


def append(path: Path, line: dict[str, Any]) -> None:
    import fcntl

    from ...core.journal import terminate_torn_tail

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        terminate_torn_tail(fd, os.fstat(fd).st_size, path)  # never glue a line onto a torn one
        os.write(fd, (json.dumps(line, default=str) + "\n").encode())
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line after a crash
    return out


def trend(
    runs: list[dict[str, Any]], *, scenario: str | None = None, env: str | None = None, last: int = 10
) -> dict[str, Any]:
    """Per (env, scenario): the last runs, p50/p95 of each metric, and regressions. Pure."""
    chosen = [
        r
        for r in runs
        if (scenario is None or r.get("scenario") == scenario) and (env is None or r.get("env") == env)
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in chosen:
        groups.setdefault((str(r.get("env")), str(r.get("scenario"))), []).append(r)
    out = []
    for (env_name, scen), rs in sorted(groups.items()):
        completed = [r for r in rs if r.get("outcome") in ("met", "missed")]
        stats = {}
        for metric in METRICS:
            values = [float(r[metric]) for r in completed if r.get(metric) is not None]
            stats[metric] = {
                "n": len(values),
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "last": values[-1] if values else None,
            }
        out.append(
            {
                "env": env_name,
                "scenario": scen,
                "runs": len(rs),
                "stats": stats,
                "last_runs": rs[-last:],
                "regressions": regressions(completed),
            }
        )
    return {"groups": out}


def regressions(runs: list[dict[str, Any]]) -> list[str]:
    """What the newest run did worse than the runs before it."""
    if len(runs) < MIN_BASELINE + 1:
        return []
    newest, before = runs[-1], runs[:-1]
    found = []
    for metric in METRICS:
        values = [float(r[metric]) for r in before if r.get(metric) is not None]
        if len(values) < MIN_BASELINE or newest.get(metric) is None:
            continue
        median = percentile(values, 50) or 0.0
        value = float(newest[metric])
        if value > median * REGRESSION_FACTOR[metric] and value - median > ABSOLUTE_SLACK[metric]:
            found.append(f"{metric} {value:g} vs median {median:g} of the {len(values)} runs before")
    for key in ("rto_verdict", "rpo_verdict"):
        if newest.get(key) == "missed" and all(r.get(key) == "met" for r in before[-MIN_BASELINE:]):
            found.append(f"{key.split('_')[0].upper()} target missed after {MIN_BASELINE} runs that met it")
    return found


def targets_text(run: dict[str, Any]) -> str:
    """'RTO 60.0 s (database), RPO 5.0 min (database)': what this run was judged against."""
    return ", ".join(
        f"{m} {_fmt(run.get(f'{m.lower()}_target_s'))} ({run[f'{m.lower()}_target_key']})"
        for m in ("RTO", "RPO")
        if run.get(f"{m.lower()}_target_key")
    )


def group_lines(group: dict[str, Any]) -> list[str]:
    """dr.history's lines for one (env, scenario): the stats, the targets (once when every run
    listed was judged against the same ones; else on each run's line), the runs, regressions."""
    st = group["stats"]
    lines = [
        f"{group['scenario']} on {group['env']}: {group['runs']} run(s); "
        f"RTO p50 {_fmt(st['rto_s']['p50'])} p95 {_fmt(st['rto_s']['p95'])}; "
        f"RPO p50 {_fmt(st['rpo_s']['p50'])} p95 {_fmt(st['rpo_s']['p95'])}"
    ]
    judged = {targets_text(r) for r in group["last_runs"]}
    shared = len(judged) == 1
    if shared and judged != {""}:
        lines.append(f"  targets: {judged.pop()}")
    elif not shared:
        lines.append("  targets: differ between these runs; each run's line names its own")
    for r in group["last_runs"]:
        lost = r.get("lost_writes") if r.get("lost_writes") is not None else "-"
        own = "" if shared or not targets_text(r) else f"  targets: {targets_text(r)}"
        lines.append(
            f"  {r['at']}  {r['outcome']:<9} RTO {_fmt(r.get('rto_s')):>8}  RPO {_fmt(r.get('rpo_s')):>8}"
            f"  lost {lost}  {r['id']}{own}"
        )
    lines += [f"  REGRESSION: {reg}" for reg in group["regressions"]]
    return lines
