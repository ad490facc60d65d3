"""The HTML drill report: one self-contained page (inline CSS and SVG, no
scripts, no fonts, no network fetches) with the timeline chart: each probe's
up/slow/down band, the fault and recovery markers, provider events and the
RTO target line."""

from __future__ import annotations

from html import escape
from typing import Any

from .report import fmt_seconds

COLORS = {"up": "#2e9d4a", "slow": "#e0a100", "down": "#d23c3c"}
WIDTH, LEFT, RIGHT, ROW, TOP = 960, 130, 20, 30, 40


def _range(report: dict[str, Any]) -> tuple[float, float]:
    lo, hi = 0.0, 1.0
    for p in report["probes"]:
        for a, b, _s in p.get("bands_t_s") or []:
            if a is not None:
                lo = min(lo, a)
            if b is not None:
                hi = max(hi, b)
    for t in report["timeline"]:
        if t.get("t_s") is not None:
            lo, hi = min(lo, t["t_s"]), max(hi, t["t_s"])
    target = report["rto"].get("target_s")
    if target is not None and target <= 3 * max(hi, 1.0):
        hi = max(hi, target * 1.05)
    return lo, hi + (hi - lo) * 0.02


def svg_timeline(report: dict[str, Any]) -> str:
    lo, hi = _range(report)
    probes = report["probes"]
    events = _chart_events(report)
    height = TOP + ROW * max(1, len(probes)) + 64 + 14 * len(events)
    span = max(hi - lo, 1e-6)

    def x(t: float) -> float:
        return LEFT + (t - lo) / span * (WIDTH - LEFT - RIGHT)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="drill timeline">',
           '<style>text{font:12px sans-serif;fill:#222}.small{font-size:10px;fill:#555}</style>']
    axis_y = TOP + ROW * max(1, len(probes)) + 8
    # ticks
    step = _tick(span)
    t = (lo // step) * step
    while t <= hi:
        if t >= lo:
            out.append(f'<line x1="{x(t):.1f}" y1="{TOP - 6}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#eee"/>')
            out.append(f'<text class="small" x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">{t:+g} s</text>')
        t += step
    for i, p in enumerate(probes):
        y = TOP + i * ROW
        out.append(f'<text x="{LEFT - 8}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">{escape(p["name"])}</text>')
        for a, b, state in p.get("bands_t_s") or []:
            if a is None or b is None:
                continue
            w = max(x(b) - x(a), 1.0)
            out.append(f'<rect x="{x(a):.1f}" y="{y + 5}" width="{w:.1f}" height="{ROW - 10}" '
                       f'fill="{COLORS.get(state, "#999")}"><title>{escape(p["name"])} {state} '
                       f'{a:+.3f} s .. {b:+.3f} s</title></rect>')
        if p.get("impacted") and p.get("recovered_t_s") is not None:
            rx = x(p["recovered_t_s"])
            out.append(f'<line x1="{rx:.1f}" y1="{y + 1}" x2="{rx:.1f}" y2="{y + ROW - 1}" stroke="#1f5fbf" '
                       f'stroke-width="3"><title>{escape(p["name"])} recovered at {p["recovered_t_s"]:+.3f} s</title></line>')
    if report["fault"] is not None:
        fx = x(0.0)
        out.append(f'<line x1="{fx:.1f}" y1="{TOP - 12}" x2="{fx:.1f}" y2="{axis_y}" stroke="#000" stroke-width="2"/>')
        out.append(f'<text x="{fx + 3:.1f}" y="{TOP - 16}">fault</text>')
    rto = report["rto"].get("achieved_s")
    if rto:
        rx = x(rto)
        out.append(f'<line x1="{rx:.1f}" y1="{TOP - 12}" x2="{rx:.1f}" y2="{axis_y}" stroke="#1f5fbf" stroke-dasharray="4 2"/>')
        out.append(f'<text x="{rx + 3:.1f}" y="{TOP - 2}" fill="#1f5fbf">recovered (RTO {escape(fmt_seconds(rto))})</text>')
    target = report["rto"].get("target_s")
    if target is not None:
        if target <= hi:
            tx = x(target)
            out.append(f'<line x1="{tx:.1f}" y1="{TOP - 12}" x2="{tx:.1f}" y2="{axis_y}" stroke="#d23c3c" '
                       f'stroke-dasharray="6 3"/><text x="{tx - 3:.1f}" y="{TOP - 16}" text-anchor="end" '
                       f'fill="#d23c3c">RTO target {escape(fmt_seconds(target))}</text>')
        else:
            out.append(f'<text x="{WIDTH - RIGHT}" y="{height - 4}" text-anchor="end" fill="#d23c3c">'
                       f'RTO target {escape(fmt_seconds(target))} (off the chart) &#8594;</text>')
    for j, ev in enumerate(events[:12]):
        ex = x(ev["t_s"])
        ly = axis_y + 30 + 14 * j
        code = str(ev.get("code") or "")
        message = str(ev["message"])
        label = f'{ev["t_s"]:+.3f} s ' + (message if message.startswith(code) else f"{code} {message}".strip())
        out.append(f'<line x1="{ex:.1f}" y1="{TOP - 6}" x2="{ex:.1f}" y2="{ly - 10}" stroke="#7a3fbf" '
                   f'stroke-dasharray="2 2"/><circle cx="{ex:.1f}" cy="{TOP - 6}" r="3" fill="#7a3fbf"/>')
        label = label[:110]
        lx = max(4.0, min(ex, WIDTH - RIGHT - 5.6 * len(label)))  # keep the label on the page
        out.append(f'<text class="small" x="{lx:.1f}" y="{ly}" fill="#7a3fbf">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _chart_events(report: dict[str, Any], limit: int = 12) -> list[dict[str, Any]]:
    """Provider events for the chart: the first of each code (sentinels repeat
    each other), at most `limit`, in time order. The table lists them all."""
    seen: set[str] = set()
    out = []
    for t in report["timeline"]:
        if t.get("kind") != "provider" or t.get("t_s") is None:
            continue
        key = str(t.get("code") or t.get("message"))
        if key in seen:
            continue
        seen.add(key)
        out.append(t)
    return out[:limit]


def _tick(span: float) -> float:
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 12:
            return float(step)
    return 7200.0


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def to_html(report: dict[str, Any]) -> str:
    sc = report["scenario"]
    title = f"Drill report: {sc.get('name')} on {report['environment']['name']}"
    verdict_color = {"met": "#2e9d4a", "missed": "#d23c3c"}.get(report["outcome"], "#e0a100")
    metrics = [_row(["metric", "achieved", "target", "verdict", "how it was measured"], "th")]
    for key in ("rto", "rpo"):
        m = report[key]
        target = f"{fmt_seconds(m['target_s'])} ({m.get('target_key')})" if m["target_s"] is not None else "-"
        metrics.append(_row([key.upper(), escape(fmt_seconds(m["achieved_s"])), escape(target), escape(m["verdict"]),
                             escape(m.get("basis") or "")]))
    timeline = [_row(["t (s)", "kind", "source", "message"], "th")]
    for t in report["timeline"]:
        code = f" [{t['code']}]" if t.get("code") else ""
        timeline.append(_row([f"{t['t_s']:+.3f}", escape(str(t["kind"])), escape(str(t["source"])),
                              escape(str(t["message"]) + code)]))
    probes = [_row(["probe", "attempts", "failed", "first failure", "recovered", "RTO", "p50 latency", "lost writes"], "th")]
    for p in report["probes"]:
        loss = (p.get("loss") or {}).get("lost")
        probes.append(_row([escape(p["name"]), str(p.get("attempts")), str(p.get("failed")),
                            _t(p.get("first_failure_t_s")), _t(p.get("recovered_t_s")),
                            escape(fmt_seconds(p.get("rto_s"))), escape(fmt_seconds(p.get("latency_p50_s"))),
                            "-" if loss is None else str(loss)]))
    checks = []
    for title_, key in (("Preflight", "preflight"), ("Re-check after the rollback", "recheck")):
        if report[key]:
            items = "".join(f"<li><b>{escape(c['status'].upper())}</b> {escape(c['name'])}: {escape(str(c['detail']))}"
                            + (f" <i>(hint: {escape(str(c['hint']))})</i>" if c.get("hint") else "") + "</li>"
                            for c in report[key])
            checks.append(f"<h2>{title_}</h2><ul>{items}</ul>")
    aborted = ""
    if report["aborted"]:
        aborted = f"<p class='warn'>Aborted: {escape(str(report['aborted']['reason']))}; the rollback ran.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}}
th{{background:#f3f3f3}}.verdict{{font-size:20px;font-weight:bold;color:{verdict_color}}}.warn{{color:#d23c3c}}
.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="verdict">{escape(report['outcome'].upper())}: {escape(report['summary'])}</p>
<p>Injected: {escape(str(sc.get('injects')))}<br>Started {escape(str(report['started_at']))}, ended {escape(str(report['ended_at']))}; id <code>{escape(report['id'])}</code>, schema {report['schema']} v{report['schema_version']}.</p>
{aborted}
<table>{''.join(metrics)}</table>
<h2>Timeline</h2>
<p class="legend"><span style="background:{COLORS['up']}"></span>up<span style="background:{COLORS['slow']}"></span>slow<span style="background:{COLORS['down']}"></span>down
<span style="background:#000;width:3px"></span>fault<span style="background:#1f5fbf;width:3px"></span>recovery<span style="background:#7a3fbf;width:3px"></span>provider event<span style="background:#d23c3c;width:3px"></span>RTO target</p>
{svg_timeline(report)}
<table>{''.join(timeline)}</table>
<h2>Probes</h2><table>{''.join(probes)}</table>
{''.join(checks)}
</body></html>
"""


def _t(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f} s"
