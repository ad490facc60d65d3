"""Drill reports, rendered from the journal records of one `dr.drill` operation.

`build(records)` turns the journal lines into the report document (schema in
docs/report-schema.md, `schema_version` 1); `write(report, folder)` renders it
as JSON, Markdown and a self-contained HTML page (htmlpage.py). `dr.report ID`
rebuilds the same files from the journal at any time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = "spywatcher-ops/drill-report"
SCHEMA_VERSION = 1

PART_WORDS = {
    "database": "database writable again",
    "cache": "cache writable again",
    "application": "application serving again",
    "infrastructure": "infrastructure back",
}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rel(epoch: float | None, origin: float | None) -> float | None:
    if epoch is None or origin is None:
        return None
    return round(epoch - origin, 4)


def _epoch(iso_text: str | None) -> float | None:
    if not iso_text:
        return None
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


def _steps(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == "step" and r.get("step") == name]


def _one(records: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    found = _steps(records, name)
    return found[-1] if found else None


def build(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The report document for one drill (all records share one op_id)."""
    start = next((r for r in records if r.get("event") == "start"), None)
    if start is None:
        raise ValueError("no start record for this drill in the journal")
    end = next((r for r in records if r.get("event") == "end"), None)
    cleaned = next((r for r in records if r.get("event") == "cleaned"), None)
    sc_step = _one(records, "scenario") or {}
    sc = {**(sc_step.get("scenario") or {}), "kind": sc_step.get("kind")}
    fault_step = _one(records, "fault")
    fault_at = fault_step.get("t") if fault_step else None
    done = _one(records, "fault-done")
    m = _one(records, "measured") or {}
    aborted = _one(records, "aborted")
    probes = [_probe(p.get("probe") or {}, fault_at) for p in _steps(records, "probe")]
    timeline: list[dict[str, Any]] = []

    if fault_step is not None and fault_at is not None:
        timeline.append(
            {
                "kind": "fault",
                "source": "drill",
                "message": fault_step.get("description", "fault"),
                "at_epoch": fault_at,
                "code": None,
            }
        )
    for ev in _steps(records, "event"):
        timeline.append(
            {
                "kind": ev.get("kind"),
                "source": ev.get("source"),
                "message": ev.get("message"),
                "at_epoch": ev.get("t"),
                "code": ev.get("code"),
            }
        )
    if done is not None:
        timeline.append(
            {
                "kind": "fault-done",
                "source": "drill",
                "at_epoch": done.get("t"),
                "code": None,
                "message": f"injection finished: {done.get('description', '')}",
            }
        )
    for p in probes:
        if p["first_failure_epoch"] is not None:
            timeline.append(
                {
                    "kind": "first-failure",
                    "source": p["name"],
                    "at_epoch": p["first_failure_epoch"],
                    "message": f"{p['name']}: first failure"
                    + (f" ({_short(p['first_error'])})" if p.get("first_error") else ""),
                    "code": None,
                }
            )
        if p["impacted"] and p["recovered_epoch"] is not None:
            timeline.append(
                {
                    "kind": "recovered",
                    "source": p["name"],
                    "at_epoch": p["recovered_epoch"],
                    "message": f"{p['name']}: first success of a stable run",
                    "code": None,
                }
            )
    timeline = [t for t in timeline if t["at_epoch"] is not None]
    timeline.sort(key=lambda t: t["at_epoch"])
    # Times are relative to the fault; with no fault (aborted before it), to the first event.
    origin = fault_at if fault_at is not None else (timeline[0]["at_epoch"] if timeline else None)
    for t in timeline:
        t["at"] = _iso(t["at_epoch"])
        t["t_s"] = _rel(t["at_epoch"], origin)

    outcome = ((end or {}).get("result") or {}).get("outcome") or _outcome_from(end, cleaned, aborted)
    part = sc.get("part", "database")
    rto = {
        "achieved_s": m.get("rto_s"),
        "target_s": m.get("rto_target_s"),
        "verdict": m.get("rto_verdict", "n/a"),
        "target_key": m.get("rto_target_key", sc.get("rto_target")),
        "basis": m.get("rto_basis"),
    }
    rpo = {
        "achieved_s": m.get("rpo_s"),
        "target_s": m.get("rpo_target_s"),
        "verdict": m.get("rpo_verdict", "n/a"),
        "target_key": m.get("rpo_target_key", sc.get("rpo_target")),
        "basis": m.get("rpo_basis"),
        "lost_writes": m.get("lost_writes"),
    }
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "id": start["op_id"],
        "environment": {"name": start.get("env"), "kind": sc.get("kind")},
        "scenario": {k: sc.get(k) for k in ("name", "injects", "part", "rto_target", "rpo_target", "probes")},
        "run_id": (start.get("args") or {}).get("run_id"),
        "args": start.get("args") or {},
        "who": start.get("who") or {},
        "started_at": start.get("at"),
        "ended_at": (end or {}).get("at"),
        "duration_s": (end or {}).get("duration_s"),
        "outcome": outcome,
        "rto": rto,
        "rpo": rpo,
        "fault": None
        if fault_step is None or fault_at is None
        else {
            "at": _iso(fault_at),
            "at_epoch": fault_at,
            "description": fault_step.get("description"),
            "done_t_s": _rel(done.get("t") if done else None, fault_at),
            "details": {
                k: v
                for k, v in fault_step.items()
                if k not in ("at", "t", "event", "op_id", "op", "env", "step", "status", "description")
            },
        },
        "phases": _phases(timeline, m.get("rto_s")),
        "timeline": timeline,
        "probes": probes,
        "details": m.get("details") or {},
        "preflight": (_one(records, "preflight") or {}).get("checks", []),
        "recheck": (_one(records, "recheck") or {}).get("checks", []),
        "rollback": {k: v for k, v in (_one(records, "rollback") or {}).items() if k in ("status", "error")},
        "aborted": None
        if aborted is None
        else {"reason": aborted.get("reason"), "signals": aborted.get("signals")},
        "cleaned_by_later_run": None if cleaned is None else cleaned.get("actions"),
        "error": (end or {}).get("error"),
        "request_ids": (end or {}).get("request_ids") or [],
        "steps": [
            {"at": r.get("at"), "step": r.get("step"), "status": r.get("status")}
            for r in records
            if r.get("event") == "step" and r.get("step") not in ("event", "probe")
        ],
    }
    report["summary"] = summary_line(report, part)
    return report


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _outcome_from(
    end: dict[str, Any] | None, cleaned: dict[str, Any] | None, aborted: dict[str, Any] | None
) -> str:
    if end is None:
        return "killed" if cleaned is not None else "unfinished"
    if aborted is not None:
        return "aborted"
    return {"ok": "met", "RolledBack": "aborted", "NotReady": "not-ready"}.get(
        str(end.get("outcome")), str(end.get("outcome"))
    )


def _probe(step: dict[str, Any], fault_at: float | None) -> dict[str, Any]:
    out = {k: v for k, v in step.items() if k not in ("at", "event", "op_id", "op", "env", "step", "status")}
    out["first_failure_epoch"] = step.get("first_failure")
    out["recovered_epoch"] = step.get("recovered_at")
    out["first_failure_t_s"] = _rel(step.get("first_failure"), fault_at)
    out["recovered_t_s"] = _rel(step.get("recovered_at"), fault_at)
    out["bands_t_s"] = [[_rel(a, fault_at), _rel(b, fault_at), s] for a, b, s in step.get("bands") or []]
    out.pop("first_failure", None)
    out.pop("recovered_at", None)
    out.pop("bands", None)
    out.setdefault("impacted", False)
    return out


def _phases(timeline: list[dict[str, Any]], rto_s: float | None) -> list[dict[str, Any]]:
    """Consecutive intervals between timeline events from the fault up to the recovery."""
    points = [
        t
        for t in timeline
        if t.get("t_s") is not None and t["t_s"] >= 0 and (rto_s is None or t["t_s"] <= rto_s + 1e-6)
    ]
    phases = []
    for a, b in zip(points, points[1:], strict=False):
        dur = round(b["t_s"] - a["t_s"], 4)
        if dur <= 0:
            continue
        phases.append(
            {
                "from": a["message"],
                "to": b["message"],
                "from_t_s": a["t_s"],
                "to_t_s": b["t_s"],
                "duration_s": dur,
            }
        )
    return phases


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 7200:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.1f} min"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s" if value >= 0.01 or value == 0 else f"{value * 1000:.1f} ms"


def summary_line(report: dict[str, Any], part: str) -> str:
    rto = report["rto"]["achieved_s"]
    if report["fault"] is None:
        return f"no fault was injected ({report['outcome']})"
    if rto is None:
        return f"not recovered ({report['outcome']})"
    words = PART_WORDS.get(part, "recovered")
    if report["details"].get("restore"):
        words = "restored and verified"
    text = f"{words} after {fmt_seconds(rto)}"
    if rto == 0:
        text = f"no outage seen by the probes ({words} throughout)"
    phases = report["phases"]
    if phases and rto:
        longest = max(phases, key=lambda p: p["duration_s"])
        text += f"; longest phase {fmt_seconds(longest['duration_s'])}: {longest['from']} -> {longest['to']}"
    lost = report["rpo"].get("lost_writes")
    if lost:
        text += f"; {lost} acknowledged write(s) lost"
    api = next((p for p in report["probes"] if p.get("name") == "app-health"), None)
    if api is not None and part != "application":
        text += (
            f"; the API (health URL) after {fmt_seconds(api['rto_s'])}"
            if api.get("impacted") and api.get("rto_s") is not None
            else "; the API (health URL) " + ("did not recover" if api.get("impacted") else "stayed up")
        )
    return text


# rendering ---------------------------------------------------------------------


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"


def to_markdown(report: dict[str, Any]) -> str:
    sc = report["scenario"]
    lines = [f"# Drill report: {sc.get('name')} on {report['environment']['name']}", ""]
    lines += [
        f"- **Outcome:** {report['outcome']}",
        f"- **Summary:** {report['summary']}",
        f"- **Injected:** {sc.get('injects')}",
        f"- **Started:** {report['started_at']}  **Ended:** {report['ended_at']}  (id `{report['id']}`)",
        "",
    ]
    lines += ["| metric | achieved | target | verdict | how it was measured |", "|---|---|---|---|---|"]
    for key in ("rto", "rpo"):
        m = report[key]
        target = f"{fmt_seconds(m['target_s'])} ({m.get('target_key')})" if m["target_s"] is not None else "-"
        lines.append(
            f"| {key.upper()} | {fmt_seconds(m['achieved_s'])} | {target} | {m['verdict']} | {m.get('basis') or ''} |"
        )
    lost = report["rpo"].get("lost_writes")
    if lost is not None:
        lines += ["", f"Acknowledged writes lost: **{lost}**."]
    if report["aborted"]:
        lines += ["", f"**Aborted:** {report['aborted']['reason']} - the rollback ran."]
    if report["phases"]:
        lines += ["", "## Where the time went", "", "| from | to | duration |", "|---|---|---|"]
        for p in report["phases"]:
            lines.append(
                f"| {p['from']} (+{p['from_t_s']:.3f} s) | {p['to']} (+{p['to_t_s']:.3f} s) | {fmt_seconds(p['duration_s'])} |"
            )
    lines += [
        "",
        "## Timeline (seconds from the fault)",
        "",
        "| t | kind | source | message |",
        "|---|---|---|---|",
    ]
    for t in report["timeline"]:
        code = f" [{t['code']}]" if t.get("code") else ""
        lines.append(f"| {t['t_s']:+.3f} | {t['kind']} | {t['source']} | {t['message']}{code} |")
    if report["probes"]:
        lines += [
            "",
            "## Probes",
            "",
            "| probe | attempts | failed | first failure | recovered | RTO | p50 latency | lost writes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in report["probes"]:
            loss = (p.get("loss") or {}).get("lost")
            lines.append(
                f"| {p['name']} | {p.get('attempts')} | {p.get('failed')} | {_t(p.get('first_failure_t_s'))} | "
                f"{_t(p.get('recovered_t_s'))} | {fmt_seconds(p.get('rto_s'))} | {fmt_seconds(p.get('latency_p50_s'))} | "
                f"{'-' if loss is None else loss} |"
            )
    if report["details"].get("stages"):  # a rebuild: each stage timed
        lines += ["", "## Stages", "", "| stage | status | seconds | detail |", "|---|---|---|---|"]
        for s in report["details"]["stages"]:
            secs = "-" if s.get("duration_s") is None else f"{s['duration_s']:.2f}"
            lines.append(f"| {s['stage']} | {s['status']} | {secs} | {s.get('detail', '')} |")
    for title, key in (("Preflight", "preflight"), ("Re-check after the rollback", "recheck")):
        if report[key]:
            lines += ["", f"## {title}", ""]
            for c in report[key]:
                hint = f" (hint: {c['hint']})" if c.get("hint") else ""
                lines.append(f"- {c['status'].upper()} {c['name']}: {c['detail']}{hint}")
    if report["details"]:
        lines += [
            "",
            "## Details",
            "",
            "```json",
            json.dumps(report["details"], indent=2, default=str),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _t(value: float | None) -> str:
    return "-" if value is None else f"+{value:.3f} s"


def _paths(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    stem = f"{report['started_at'][:19].replace(':', '').replace('-', '')}Z-{report['environment']['name']}-{report['scenario']['name']}-{report['id']}"
    return {
        "json": folder / f"{stem}.json",
        "markdown": folder / f"{stem}.md",
        "html": folder / f"{stem}.html",
    }


def worse_than_on_disk(report: dict[str, Any], folder: Path) -> tuple[dict[str, Any], str] | None:
    """(the report on disk, why) when `report` says less than it: re-rendering from a damaged
    journal (a torn or lost `end` record) must not turn a finished "met" report into
    "unfinished". None when there is no report on disk or the new one is as complete."""
    path = _paths(report, folder)["json"]
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return None
    if old.get("ended_at") and not report.get("ended_at"):
        return old, (
            "the journal has no end record for this drill any more "
            f"(the report on disk ended at {old['ended_at']})"
        )
    if old.get("outcome") != "unfinished" and report.get("outcome") == "unfinished":
        return old, f"the journal says {report.get('outcome')}, the report on disk says {old.get('outcome')}"
    for key in ("rto", "rpo"):
        if (old.get(key) or {}).get("achieved_s") is not None and (report.get(key) or {}).get(
            "achieved_s"
        ) is None:
            return old, f"the journal no longer holds the measured {key.upper()} the report on disk has"
    if len(report.get("timeline") or []) < len(old.get("timeline") or []):
        return old, "the journal holds fewer of this drill's events than the report on disk"
    return None


def write(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write the three files; returns their paths (also stored in the JSON)."""
    from .htmlpage import to_html

    folder.mkdir(parents=True, exist_ok=True)
    paths = _paths(report, folder)
    report["reports"] = {k: str(v) for k, v in paths.items()}
    paths["json"].write_text(to_json(report))
    paths["markdown"].write_text(to_markdown(report))
    paths["html"].write_text(to_html(report))
    return report["reports"]
