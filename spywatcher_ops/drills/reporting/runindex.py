"""One index per run: the scorecard of a whole `dr.drill` (several scenarios) in JSON,
Markdown and HTML, linking each scenario's own report.

Built from the scenario reports (which are built from the journal), so `dr.report RUN`
re-renders it at any time. Generic enough for any run of items with figures (a
maintenance run): an item is a name, an outcome, a summary, figures and its report files.

The index is written when the run starts and again after each drill, so a run killed
mid-way (SIGKILL, a crash) leaves one that says how far it got. Its `state`:
- running: not finished when written (the process may since have been killed:
  `inv dr.report ID` re-reads the journal and says which);
- finished: every planned drill ran;
- stopped: a drill aborted or the environment was not ready, so the rest did not run;
- interrupted: Ctrl-C, SIGTERM/SIGHUP, or killed; `pending` names the drills never run.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .report import fmt_seconds

SCHEMA = "spywatcher-ops/run-index"
SCHEMA_VERSION = 1
RUN_OP = "drill-run"  # the journal operation of a whole run (not "dr.*": cleanup only looks at drills)


def run_outcome(outcomes: list[str]) -> str:
    """The worst of the items: aborted > not-ready > failed > missed > met."""
    for worst in ("aborted", "not-ready", "failed", "missed", "unfinished"):
        if worst in outcomes:
            return worst
    return "met" if outcomes else "empty"


def _sentence(report: dict[str, Any]) -> str:
    """The report's headline (one human sentence); its raw provider text stays in the report."""
    from .htmlpage import headline

    try:
        return headline(report)
    except (KeyError, TypeError):  # a report from an older schema: its own summary line
        return str(report.get("summary") or "")


def drill_item(report: dict[str, Any]) -> dict[str, Any]:
    """An index row from a drill report: the figures, which target key judged each, the files."""
    figures = []
    for key in ("rto", "rpo"):
        m = report.get(key) or {}
        figures.append(
            {
                "metric": key.upper(),
                "achieved_s": m.get("achieved_s"),
                "target_s": m.get("target_s"),
                "target_key": m.get("target_key"),
                "verdict": m.get("verdict", "n/a"),
            }
        )
    return {
        "name": (report.get("scenario") or {}).get("name"),
        "id": report.get("id"),
        "outcome": report.get("outcome"),
        "summary": _sentence(report),
        "figures": figures,
        "lost_writes": (report.get("rpo") or {}).get("lost_writes"),
        "reports": {k: Path(v).name for k, v in (report.get("reports") or {}).items()},
    }


STATES = ("running", "finished", "stopped", "interrupted")


def build(
    run: dict[str, Any],
    reports: list[dict[str, Any]],
    *,
    missing: list[str] | None = None,
    kind: str = "drill",
    state: str = "finished",
    pending: list[str] | None = None,
) -> dict[str, Any]:
    """`run`: the journal start/end of the run (id, env, at); `reports`: its items' reports, in order;
    `pending`: the planned items that never started. An unfinished run's outcome is its state
    (running, interrupted) whatever its finished items say: it did not prove the targets."""
    items = [drill_item(r) for r in reports]
    outcome = run_outcome([str(i["outcome"]) for i in items] + (["failed"] if missing else []))
    if state in ("running", "interrupted"):
        outcome = state
    elif pending and outcome in ("met", "empty"):
        outcome = "unfinished"  # what ran met its targets, but not every drill ran
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "id": run["id"],
        "environment": run.get("env"),
        "started_at": run.get("started_at"),
        "ended_at": run.get("ended_at"),
        "outcome": outcome,
        "state": state,
        "items": items,
        "missing": missing or [],
        "pending": pending or [],
    }


def worse_than_on_disk(index: dict[str, Any], folder: Path) -> str | None:
    """Why the index on disk must be kept rather than replaced by `index` (re-rendered from a
    journal that lost the run's end: cut or torn after the run ended), or None."""
    try:
        old = json.loads(paths(index, folder)["json"].read_text())
    except (OSError, ValueError):
        return None
    ended = old.get("state", "finished") in ("finished", "stopped") and old.get("ended_at")
    if ended and index.get("state") in ("running", "interrupted"):
        return "the journal has no end record for this run, but its index on disk says it ended"
    return None


def progress_line(index: dict[str, Any]) -> str | None:
    """What an unfinished run's index says about itself, or None for an ended run."""
    done, pending = len(index["items"]), list(index.get("pending") or [])
    if index.get("state") == "running":
        return (
            f"not finished when written ({done} of {done + len(pending)} drill(s) done); if no drill "
            f"runs now it was killed: inv dr.report {index['id']} says"
        )
    if index.get("state") == "interrupted":
        left = f"; never run: {', '.join(pending)}" if pending else ""
        return f"interrupted after {done} drill(s){left}"
    if index.get("state") == "stopped" and pending:
        return f"stopped after {done} drill(s); not run: {', '.join(pending)}"
    return None


def paths(index: dict[str, Any], folder: Path) -> dict[str, Path]:
    stamp = str(index.get("started_at") or "")[:19].replace(":", "").replace("-", "")
    stem = f"{stamp}Z-{index['environment']}-run-{index['id']}"
    return {
        "json": folder / f"{stem}.json",
        "markdown": folder / f"{stem}.md",
        "html": folder / f"{stem}.html",
    }


def write(index: dict[str, Any], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = paths(index, folder)
    index["reports"] = {k: str(v) for k, v in files.items()}
    files["json"].write_text(json.dumps(index, indent=2, default=str) + "\n")
    files["markdown"].write_text(to_markdown(index))
    files["html"].write_text(to_html(index))
    return index["reports"]


def _figure(f: dict[str, Any]) -> str:
    if f["achieved_s"] is None and f["target_s"] is None:
        return "-"
    target = (
        f"{fmt_seconds(f['target_s'])} ({f['target_key']})" if f["target_s"] is not None else "not judged"
    )
    return f"{fmt_seconds(f['achieved_s'])} / {target}"


def to_markdown(index: dict[str, Any]) -> str:
    lines = [
        f"# Drill run {index['id']} on {index['environment']}: {index['outcome'].upper()}",
        "",
        f"- **Started:** {index['started_at']}  **Ended:** {index['ended_at']}",
        *([f"- **State:** {progress_line(index)}"] if progress_line(index) else []),
        "",
        "| scenario | RTO achieved / target (key) | RPO achieved / target (key) | verdict | report |",
        "|---|---|---|---|---|",
    ]
    for i in index["items"]:
        rto, rpo = i["figures"]
        link = (
            f"[{i['id']}]({i['reports'].get('markdown')})" if i["reports"].get("markdown") else str(i["id"])
        )
        lost = f" ({i['lost_writes']} lost)" if i.get("lost_writes") else ""
        lines.append(
            f"| {i['name']} | {_figure(rto)} | {_figure(rpo)}{lost} | {str(i['outcome']).upper()} | {link} |"
        )
    for name in index["missing"]:
        lines.append(f"| {name} | - | - | NO REPORT | - |")
    for name in index.get("pending") or []:
        lines.append(f"| {name} | - | - | NOT RUN | - |")
    lines += [""] + [f"- **{i['name']}**: {i['summary']}" for i in index["items"]]
    return "\n".join(lines) + "\n"


def to_html(index: dict[str, Any]) -> str:
    e = html.escape
    colour = {"met": "#1a7f37", "missed": "#cf222e"}
    rows = []
    for i in index["items"]:
        rto, rpo = i["figures"]
        page = i["reports"].get("html")
        link = f'<a href="{e(page)}">{e(str(i["id"]))}</a>' if page else e(str(i["id"]))
        lost = f" ({i['lost_writes']} lost)" if i.get("lost_writes") else ""
        rows.append(
            f"<tr><td>{e(str(i['name']))}</td><td>{e(_figure(rto))}</td><td>{e(_figure(rpo) + lost)}</td>"
            f'<td style="color:{colour.get(str(i["outcome"]), "#9a6700")};font-weight:bold">'
            f"{e(str(i['outcome']).upper())}</td><td>{link}</td><td>{e(str(i['summary']))}</td></tr>"
        )
    for name in index["missing"]:
        rows.append(f"<tr><td>{e(name)}</td><td>-</td><td>-</td><td>NO REPORT</td><td>-</td><td></td></tr>")
    for name in index.get("pending") or []:
        rows.append(f"<tr><td>{e(name)}</td><td>-</td><td>-</td><td>NOT RUN</td><td>-</td><td></td></tr>")
    state = progress_line(index)
    verdict = str(index["outcome"]).upper()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drill run {e(index["id"])}: {e(verdict)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #d0d7de;padding:6px 8px;text-align:left;white-space:nowrap;
vertical-align:top}}td:last-child{{white-space:normal}}th{{background:#f6f8fa}}</style></head><body>
<h1>Drill run on {e(str(index["environment"]))}: <span style="color:{colour.get(str(index["outcome"]), "#9a6700")}">{e(verdict)}</span></h1>
<p>Run <code>{e(index["id"])}</code>, {e(str(index["started_at"]))} to {e(str(index["ended_at"]))}.
Each figure names the target key that judged it.</p>
{f"<p><strong>{e(state)}</strong></p>" if state else ""}
<table><tr><th>scenario</th><th>RTO achieved / target (key)</th><th>RPO achieved / target (key)</th>
<th>verdict</th><th>report</th><th>summary</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
