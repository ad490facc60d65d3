"""Maintenance reports, rendered from the journal records of one run (all its
`maint.run` operations, resumes included): JSON, Markdown and a self-contained
HTML page whose timeline chart is the drill report's (probe bands, events)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..drills.reporting.report import fmt_seconds
from .runlog import step_states

SCHEMA = "spywatcher-ops/maintenance-report"
SCHEMA_VERSION = 1


def build(records: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    starts = [r for r in records if r.get("event") == "start"]
    if not starts:
        raise ValueError(f"no maintenance run {run_id} in the journal")
    ends = {r["op_id"]: r for r in records if r.get("event") == "end"}
    first, last = starts[0], starts[-1]
    args = last.get("args") or {}
    end = ends.get(last["op_id"])
    result = (end or {}).get("result") or {}
    state = result.get("state") or ("killed" if end is None else str(end.get("outcome")))
    steps_by_index = step_states(records)
    planned = args.get("steps") or []
    steps = []
    origin: float | None = None
    for i, name in enumerate(planned, 1):
        r = steps_by_index.get(i) or {}
        status = r.get("status", "not-started")
        if status == "started":
            status = "cut short (the run was killed during it)"
        if r.get("t") is not None and (origin is None or r["t"] < origin):
            origin = float(r["t"])
        steps.append(
            {
                "index": i,
                "name": name,
                "status": status,
                "reason": r.get("reason"),
                "duration_s": r.get("duration_s"),
                "summary": r.get("summary") or r.get("detail") or "",
                "impact": r.get("impact") or {},
                "lost": r.get("lost") or {},
                "error": r.get("error"),
                "prechecks": r.get("prechecks") or [],
                "postchecks": r.get("postchecks") or [],
                "rollback": r.get("rollback"),
                "details": r.get("details") or {},
                "t": r.get("t"),
                "t_end": r.get("t_end"),
                "events": r.get("events") or [],
            }
        )
    timeline = []
    for s in steps:
        if s["t"] is not None:
            timeline.append(
                {
                    "kind": "provider",
                    "source": "maintenance",
                    "code": f"{s['index']}. {s['name']}",
                    "message": f"step started: {s['name']}",
                    "at_epoch": s["t"],
                }
            )
        for ev in s["events"]:
            if ev.get("code") in ("action", "action-done"):
                continue
            timeline.append(
                {
                    "kind": "provider",
                    "source": s["name"],
                    "code": ev.get("code"),
                    "message": ev.get("message"),
                    "at_epoch": ev.get("t"),
                }
            )
        if s["t_end"] is not None:
            timeline.append(
                {
                    "kind": "step-end",
                    "source": "maintenance",
                    "code": None,
                    "message": f"step {s['status']}: {s['name']}",
                    "at_epoch": s["t_end"],
                }
            )
    timeline.sort(key=lambda t: t["at_epoch"] or 0)
    for t in timeline:
        t["t_s"] = None if origin is None or t["at_epoch"] is None else round(t["at_epoch"] - origin, 3)
    probes = []
    for r in records:
        if r.get("event") == "step" and r.get("step") == "probe-bands":
            bands = [
                [
                    None if origin is None else round(a - origin, 3),
                    None if origin is None else round(b - origin, 3),
                    st,
                ]
                for a, b, st in r.get("bands") or []
            ]
            probes.append(
                {"name": r.get("probe"), "bands_t_s": bands, "impacted": False, "recovered_t_s": None}
            )
    checks: list[dict[str, Any]] = next(
        (r.get("checks") for r in reversed(records) if r.get("step") == "prechecks"), []
    )
    snapshot = next(
        (r for r in reversed(records) if r.get("step") == "snapshot" and r.get("status") in ("ok", "failed")),
        None,
    )
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "id": run_id,
        "environment": {"name": first.get("env")},
        "plan": args.get("plan"),
        "window": args.get("window"),
        "started_at": first.get("at"),
        "ended_at": (end or {}).get("at"),
        "state": state,
        "operations": [s["op_id"] for s in starts],
        "emergency": {"reason": args.get("reason"), "overridden": args.get("overridden") or []}
        if args.get("emergency")
        else None,
        "prechecks": checks or [],
        "snapshot": None
        if snapshot is None
        else {
            "snapshot": snapshot.get("snapshot"),
            "status": snapshot.get("snapshot_status"),
            "duration_s": snapshot.get("duration_s"),
        },
        "steps": [{k: v for k, v in s.items() if k not in ("t", "t_end", "events")} for s in steps],
        "timeline": timeline,
        "probes": probes,
        # the drill chart reads these: no fault marker, no RTO line
        "fault": None,
        "rto": {"achieved_s": None, "target_s": None},
        "error": (end or {}).get("error"),
    }
    report["summary"] = summary_line(report)
    return report


def summary_line(report: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for s in report["steps"]:
        key = s["status"] if not s["status"].startswith("cut short") else "cut short"
        counts[key] = counts.get(key, 0) + 1
    # the state itself is not repeated: every caller shows it beside this line (COMPLETE - 3 ok)
    text = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no step ran"
    worst = [s["summary"] for s in report["steps"] if s["summary"] and "paused" in s["summary"]]
    if worst:
        text += "; " + "; ".join(worst)
    return text


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Maintenance report: {report['plan']} on {report['environment']['name']}",
        "",
        f"- **State:** {report['state']}",
        f"- **Summary:** {report['summary']}",
        f"- **Window:** {report['window']}",
        f"- **Started:** {report['started_at']}  **Ended:** "
        f"{report['ended_at']}  (run `{report['id']}`, operations {', '.join(report['operations'])})",
    ]
    if report["emergency"]:
        lines.append(f"- **EMERGENCY maintenance:** {report['emergency']['reason']}")
        lines += [f"  - overrode: {o}" for o in report["emergency"]["overridden"]]
    if report["snapshot"]:
        lines.append(
            f"- **Pre-maintenance snapshot:** {report['snapshot']['snapshot']} ({report['snapshot']['status']})"
        )
    lines += [
        "",
        "| # | step | status | duration | client impact | lost writes |",
        "|---|---|---|---|---|---|",
    ]
    for s in report["steps"]:
        lost = sum(int(v or 0) for v in s["lost"].values()) if s["lost"] else "-"
        status = s["status"] + (f" ({s['reason']})" if s.get("reason") else "")
        lines.append(
            f"| {s['index']} | {s['name']} | {status} | {fmt_seconds(s['duration_s'])} | "
            f"{s['summary'] or '-'} | {lost} |"
        )
    for s in report["steps"]:
        if not (s["prechecks"] or s["postchecks"] or s["error"]):
            continue
        lines += ["", f"## {s['index']}. {s['name']}: {s['status']}", ""]
        if s["error"]:
            lines.append(f"**Error:** {s['error']}")
        if s["rollback"]:
            lines.append(f"**Rollback:** {s['rollback'].get('status')}: {s['rollback'].get('detail')}")
        for title, key in (("pre-check", "prechecks"), ("post-check", "postchecks")):
            for c in s[key]:
                lines.append(f"- {title} {c['status'].upper()} {c['name']}: {c['detail']}")
    if report["prechecks"]:
        lines += ["", "## Pre-checks of the run", ""]
        lines += [f"- {c['status'].upper()} {c['name']}: {c['detail']}" for c in report["prechecks"]]
    lines += ["", "## Timeline (seconds from the first step)", "", "| t | source | event |", "|---|---|---|"]
    for t in report["timeline"]:
        at = "-" if t["t_s"] is None else f"{t['t_s']:+.3f}"
        lines.append(f"| {at} | {t['source']} | {t['message']} |")
    return "\n".join(lines) + "\n"


def to_html(report: dict[str, Any]) -> str:
    from html import escape

    from ..drills.reporting.htmlpage import COLORS, svg_timeline

    def row(cells: list[str], tag: str = "td") -> str:
        return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"

    title = f"Maintenance report: {report['plan']} on {report['environment']['name']}"
    rows = [row(["#", "step", "status", "duration", "client impact", "lost writes"], "th")]
    for s in report["steps"]:
        lost = sum(int(v or 0) for v in s["lost"].values()) if s["lost"] else "-"
        rows.append(
            row(
                [
                    str(s["index"]),
                    escape(s["name"]),
                    escape(s["status"]),
                    escape(fmt_seconds(s["duration_s"])),
                    escape(s["summary"] or "-"),
                    str(lost),
                ]
            )
        )
    emergency = ""
    if report["emergency"]:
        emergency = (
            f"<p class='warn'>EMERGENCY maintenance: {escape(str(report['emergency']['reason']))}; overrode: "
            + escape("; ".join(report["emergency"]["overridden"]) or "nothing")
            + "</p>"
        )
    chart = (
        svg_timeline(report)
        if report["probes"]
        else "<p>(no probe data: the run was killed before it ended)</p>"
    )
    events = [row(["t (s)", "source", "event"], "th")] + [
        row(
            [
                "-" if t["t_s"] is None else f"{t['t_s']:+.3f}",
                escape(str(t["source"])),
                escape(str(t["message"])),
            ]
        )
        for t in report["timeline"]
    ]
    color = {"complete": COLORS["up"], "failed": COLORS["down"]}.get(report["state"], COLORS["slow"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}}
th{{background:#f3f3f3}}.state{{font-size:20px;font-weight:bold;color:{color}}}.warn{{color:#d23c3c}}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="state">{escape(report["state"].upper())}: {escape(report["summary"])}</p>
<p>Window {escape(str(report["window"]))}; started {escape(str(report["started_at"]))}, ended {escape(str(report["ended_at"]))};
run <code>{escape(report["id"])}</code>, schema {report["schema"]} v{report["schema_version"]}.</p>
{emergency}
<table>{"".join(rows)}</table>
<h2>Timeline</h2>
{chart}
<table>{"".join(events)}</table>
</body></html>
"""


def write(report: dict[str, Any], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = str(report["started_at"])[:19].replace(":", "").replace("-", "")
    stem = f"{stamp}Z-{report['environment']['name']}-maintenance-{report['id']}"
    paths = {
        "json": folder / f"{stem}.json",
        "markdown": folder / f"{stem}.md",
        "html": folder / f"{stem}.html",
    }
    report["reports"] = {k: str(v) for k, v in paths.items()}
    paths["json"].write_text(to_json(report))
    paths["markdown"].write_text(to_markdown(report))
    paths["html"].write_text(to_html(report))
    return report["reports"]
