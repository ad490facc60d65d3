"""The HTML drill report: one self-contained page (inline CSS and SVG, no
scripts, no fonts, no network fetches) with the timeline chart: each probe's
up/slow/down band, the fault and recovery markers, provider events and the
RTO target line."""

from __future__ import annotations

import textwrap
from html import escape
from typing import Any

from .report import fmt_seconds

COLORS = {"up": "#2e9d4a", "slow": "#e0a100", "down": "#d23c3c"}
# down but not yet seen by the probe (fault .. its first failure): red hatching, not blank
UNOBSERVED_FILL = "url(#down-unobserved)"
UNOBSERVED_PATTERN = (
    '<defs><pattern id="down-unobserved" patternUnits="userSpaceOnUse" width="6" height="6" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4c6c6"/>'
    f'<rect width="3" height="6" fill="{COLORS["down"]}"/></pattern></defs>'
)
UNOBSERVED_CSS = f"repeating-linear-gradient(45deg,{COLORS['down']} 0 2px,#f4c6c6 2px 4px)"
EVENT_CHARS, EVENT_CHAR_W, EVENT_LINE = 100, 6.0, 12  # 10px sans-serif: <= 6 px a character
RESTORE_COLORS = {"restoring": "#5b8def", "verifying": "#9b6bd6"}
WIDTH, LEFT, RIGHT, ROW, TOP = 960, 130, 20, 30, 64
LABEL_ROWS = (
    TOP - 48,
    TOP - 34,
    TOP - 20,
)  # fault, recovered, target: one row each, never on top of each other


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


def restore_phases(report: dict[str, Any]) -> list[tuple[str, float, float]]:
    """A restore drill's own phases from its timeline: (name, from, to) in seconds from the
    mark: restoring (copy + log replay, until it accepts connections), verifying."""
    at: dict[str, float] = {}
    for t in report["timeline"]:
        if t.get("kind") in ("restore-started", "restore-finished", "verified") and t.get("t_s") is not None:
            at.setdefault(str(t["kind"]), float(t["t_s"]))
    out = []
    if "restore-started" in at:
        end = at.get("restore-finished", at.get("verified"))
        if end is not None:
            out.append(("restoring", at["restore-started"], end))
    if "restore-finished" in at and "verified" in at:
        out.append(("verifying", at["restore-finished"], at["verified"]))
    return out


def signed(t: float) -> str:
    """`+0.266`, and `+0.000` rather than `-0.000` for an event logged a hair before the fault."""
    return f"{0.0 if abs(t) < 0.0005 else t:+.3f}"


def tick_label(t: float, step: float) -> str:
    """`+0.5 s`, `0 s`, `-1 s`: as many decimals as the step has, and never -0 or 1e-17."""
    decimals = 0
    while decimals < 3 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    value = round(t, decimals)
    if value == 0:
        return "0 s"
    return f"{value:+.{decimals}f} s"


def down_segments(probe: dict[str, Any], end: float) -> list[tuple[float, float, str]]:
    """What an impacted probe's row shows for its outage, as the drill measures RTO (fault ->
    first success after it): `unobserved` from the fault until the probe's first failure, then
    `down` until it recovered (`end`, the chart's edge, if it never did)."""
    if not probe.get("impacted"):
        return []
    stop = probe.get("recovered_t_s")
    stop = end if stop is None else max(0.0, float(stop))
    first = probe.get("first_failure_t_s")
    seen = stop if first is None else min(max(0.0, float(first)), stop)
    out = []
    if seen > 0.0:
        out.append((0.0, seen, "unobserved"))
    if stop > seen:
        out.append((seen, stop, "down"))
    return out


def _outside(a: float, b: float, lo: float, hi: float) -> list[tuple[float, float]]:
    """The parts of [a, b] outside [lo, hi]."""
    return [(x, y) for x, y in ((a, min(b, lo)), (max(a, hi), b)) if y > x]


def event_lines(ev: dict[str, Any]) -> list[str]:
    """An event's label under the axis, wrapped: never cut."""
    code = str(ev.get("code") or "")
    message = str(ev["message"])
    label = f"{signed(ev['t_s'])} s " + (message if message.startswith(code) else f"{code} {message}".strip())
    return textwrap.wrap(label, EVENT_CHARS, break_long_words=True) or [label]


def svg_timeline(report: dict[str, Any]) -> str:
    lo, hi = _range(report)
    probes = report["probes"]
    events = _chart_events(report)
    labels = [event_lines(ev) for ev in events]
    restore = restore_phases(report)
    rows = max(1, len(probes)) + (1 if restore else 0)
    height = TOP + ROW * rows + 50 + sum(EVENT_LINE * len(lines) + 2 for lines in labels) + 14
    span = max(hi - lo, 1e-6)

    def x(t: float) -> float:
        return LEFT + (t - lo) / span * (WIDTH - LEFT - RIGHT)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="drill timeline">',
        "<style>text{font:12px sans-serif;fill:#222}.small{font-size:10px;fill:#555}</style>",
        UNOBSERVED_PATTERN,
    ]
    axis_y = TOP + ROW * rows + 8
    # ticks at whole multiples of the step (counted, not summed: no 5.55e-17 at zero)
    step = _tick(span)
    import math

    for k in range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1):
        t = k * step
        out.append(f'<line x1="{x(t):.1f}" y1="{TOP - 6}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#eee"/>')
        out.append(
            f'<text class="small" x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">'
            f"{tick_label(t, step)}</text>"
        )
    if restore:
        y = TOP + max(1, len(probes)) * ROW
        out.append(f'<text x="{LEFT - 8}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">restore</text>')
        for name, a, b in restore:
            w = max(x(b) - x(a), 1.0)
            out.append(
                f'<rect x="{x(a):.1f}" y="{y + 5}" width="{w:.1f}" height="{ROW - 10}" '
                f'fill="{RESTORE_COLORS[name]}"><title>{name} {a:+.3f} s .. {b:+.3f} s</title></rect>'
            )
            if w > 7 * len(name):
                out.append(
                    f'<text class="small" x="{x(a) + w / 2:.1f}" y="{y + ROW / 2 + 3:.1f}" '
                    f'text-anchor="middle" style="fill:#fff">{name}</text>'
                )
        verified = next((b for n, _a, b in restore if n == "verifying"), None)
        if verified is not None:
            vx = x(verified)
            out.append(
                f'<line x1="{vx:.1f}" y1="{y + 1}" x2="{vx:.1f}" y2="{y + ROW - 1}" stroke="#1f5fbf" '
                f'stroke-width="3"><title>verified at {verified:+.3f} s</title></line>'
            )
    for i, p in enumerate(probes):
        y = TOP + i * ROW
        out.append(
            f'<text x="{LEFT - 8}" y="{y + ROW / 2 + 4:.1f}" text-anchor="end">{escape(p["name"])}</text>'
        )
        outage = down_segments(p, hi)
        segments = []
        for a, b, state in p.get("bands_t_s") or []:
            if a is None or b is None:
                continue
            # inside the outage the probe's own attempts (one in flight across it) do not show
            parts = _outside(a, b, outage[0][0], outage[-1][1]) if outage else [(a, b)]
            segments += [(pa, pb, state) for pa, pb in parts]
        for a, b, state in sorted(segments + outage):
            w = max(x(b) - x(a), 1.0)
            what = "down (not yet observed by the probe)" if state == "unobserved" else state
            fill = UNOBSERVED_FILL if state == "unobserved" else COLORS.get(state, "#999")
            out.append(
                f'<rect class="band-{state}" x="{x(a):.1f}" y="{y + 5}" width="{w:.1f}" height="{ROW - 10}" '
                f'fill="{fill}"><title>{escape(p["name"])} {what} '
                f"{a:+.3f} s .. {b:+.3f} s</title></rect>"
            )
        if p.get("impacted") and p.get("recovered_t_s") is not None:
            rx = x(p["recovered_t_s"])
            out.append(
                f'<line x1="{rx:.1f}" y1="{y + 1}" x2="{rx:.1f}" y2="{y + ROW - 1}" stroke="#1f5fbf" '
                f'stroke-width="3"><title>{escape(p["name"])} recovered at {p["recovered_t_s"]:+.3f} s</title></line>'
            )

    def top_label(at_x: float, row: int, text: str, colour: str) -> str:
        # each marker's label on its own row; anchored so it stays on the page
        anchor = "end" if at_x > WIDTH - RIGHT - 7 * len(text) else "start"
        lx = at_x - 3 if anchor == "end" else at_x + 3
        return (
            f'<text x="{lx:.1f}" y="{LABEL_ROWS[row]}" text-anchor="{anchor}" '
            f'style="fill:{colour}">{escape(text)}</text>'
        )

    if report["fault"] is not None:
        fx = x(0.0)
        out.append(
            f'<line x1="{fx:.1f}" y1="{LABEL_ROWS[0] + 4}" x2="{fx:.1f}" y2="{axis_y}" stroke="#000" '
            f'stroke-width="2"/>'
        )
        out.append(top_label(fx, 0, "fault" if not restore else "corruption mark", "#000"))
    rto = report["rto"].get("achieved_s")
    if rto:
        rx = x(rto)
        out.append(
            f'<line x1="{rx:.1f}" y1="{LABEL_ROWS[1] + 4}" x2="{rx:.1f}" y2="{axis_y}" stroke="#1f5fbf" '
            f'stroke-dasharray="4 2"/>'
        )
        what = "restored and verified" if restore else "recovered"
        out.append(top_label(rx, 1, f"{what} (RTO {fmt_seconds(rto)})", "#1f5fbf"))
    target = report["rto"].get("target_s")
    if target is not None:
        if target <= hi:
            tx = x(target)
            out.append(
                f'<line x1="{tx:.1f}" y1="{LABEL_ROWS[2] + 4}" x2="{tx:.1f}" y2="{axis_y}" stroke="#d23c3c" '
                f'stroke-dasharray="6 3"/>'
            )
            out.append(top_label(tx, 2, f"RTO target {fmt_seconds(target)}", "#d23c3c"))
        else:
            out.append(
                f'<text x="{WIDTH - RIGHT}" y="{height - 4}" text-anchor="end" fill="#d23c3c">'
                f"RTO target {escape(fmt_seconds(target))} (off the chart) &#8594;</text>"
            )
    ly = axis_y + 30
    for ev, lines in zip(events, labels, strict=True):
        ex = x(ev["t_s"])
        # the guide stops at the axis: a line running on through the labels below would cross them
        out.append(
            f'<line x1="{ex:.1f}" y1="{TOP - 6}" x2="{ex:.1f}" y2="{axis_y}" stroke="#7a3fbf" '
            f'stroke-dasharray="2 2"/><circle cx="{ex:.1f}" cy="{TOP - 6}" r="3" fill="#7a3fbf"/>'
        )
        widest = EVENT_CHAR_W * max(len(line) for line in lines)
        lx = max(4.0, min(ex, WIDTH - RIGHT - widest))  # the whole label on the page, wrapped not cut
        spans = "".join(
            f'<tspan x="{lx:.1f}" dy="{0 if k == 0 else EVENT_LINE}">{escape(line)}</tspan>'
            for k, line in enumerate(lines)
        )
        out.append(f'<text class="small event" x="{lx:.1f}" y="{ly}" fill="#7a3fbf">{spans}</text>')
        ly += EVENT_LINE * len(lines) + 2
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


def headline(report: dict[str, Any]) -> str:
    """One sentence a person reads first: what came back, how fast, against which target. The
    provider's own words (sentinel lines, RDS messages) stay in the timeline below."""
    from .report import PART_WORDS

    rto, rpo = report["rto"], report["rpo"]
    if report["fault"] is None:
        return f"no fault was injected ({report['outcome']})."
    if rto.get("achieved_s") is None:
        return "the service did not come back before the drill's timeout; see the timeline."
    words = PART_WORDS.get(str(report["scenario"].get("part")), "recovered")
    if report["details"].get("restore"):
        words = "restored into a new instance and verified"
    text = f"{words} after {fmt_seconds(rto['achieved_s'])}"
    if rto.get("target_s") is not None:
        side = "within" if rto.get("verdict") == "met" else "over"
        text += f", {side} the {fmt_seconds(rto['target_s'])} target ({rto.get('target_key')})"
    lost = rpo.get("lost_writes")
    if lost:
        text += f"; {lost} acknowledged write(s) lost, {fmt_seconds(rpo.get('achieved_s'))} of data"
        if rpo.get("target_s") is not None:
            text += f" against {fmt_seconds(rpo['target_s'])} ({rpo.get('target_key')})"
    elif lost == 0:
        text += "; no acknowledged write lost"
    return text + "."


def legend() -> str:
    """The chart's key; each swatch stays on one line with its words."""
    items = [
        (COLORS["up"], "12px", "up"),
        (COLORS["slow"], "12px", "slow"),
        (COLORS["down"], "12px", "down"),
        (UNOBSERVED_CSS, "12px", "down, not yet seen by the probe (fault to its first failure)"),
        (RESTORE_COLORS["restoring"], "12px", "restoring"),
        (RESTORE_COLORS["verifying"], "12px", "verifying"),
        ("#000", "3px", "fault"),
        ("#1f5fbf", "3px", "recovery"),
        ("#7a3fbf", "3px", "provider event"),
        ("#d23c3c", "3px", "RTO target"),
    ]
    return " ".join(
        f'<span><i style="background:{colour};width:{width}"></i>{escape(text)}</span>'
        for colour, width, text in items
    )


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
        metrics.append(
            _row(
                [
                    key.upper(),
                    escape(fmt_seconds(m["achieved_s"])),
                    escape(target),
                    escape(m["verdict"]),
                    escape(m.get("basis") or ""),
                ]
            )
        )
    timeline = [_row(["t (s)", "kind", "source", "message"], "th")]
    for t in report["timeline"]:
        code = f" [{t['code']}]" if t.get("code") else ""
        timeline.append(
            _row(
                [
                    signed(t["t_s"]),
                    escape(str(t["kind"])),
                    escape(str(t["source"])),
                    escape(str(t["message"]) + code),
                ]
            )
        )
    probes = [
        _row(
            [
                "probe",
                "attempts",
                "failed",
                "first failure",
                "recovered",
                "RTO",
                "p50 latency",
                "lost writes",
            ],
            "th",
        )
    ]
    for p in report["probes"]:
        loss = (p.get("loss") or {}).get("lost")
        probes.append(
            _row(
                [
                    escape(p["name"]),
                    str(p.get("attempts")),
                    str(p.get("failed")),
                    _t(p.get("first_failure_t_s")),
                    _t(p.get("recovered_t_s")),
                    escape(fmt_seconds(p.get("rto_s"))),
                    escape(fmt_seconds(p.get("latency_p50_s"))),
                    "-" if loss is None else str(loss),
                ]
            )
        )
    checks = []
    for title_, key in (("Preflight", "preflight"), ("Re-check after the rollback", "recheck")):
        if report[key]:
            items = "".join(
                f"<li><b>{escape(c['status'].upper())}</b> {escape(c['name'])}: {escape(str(c['detail']))}"
                + (f" <i>(hint: {escape(str(c['hint']))})</i>" if c.get("hint") else "")
                + "</li>"
                for c in report[key]
            )
            checks.append(f"<h2>{title_}</h2><ul>{items}</ul>")
    aborted = ""
    if report["aborted"]:
        aborted = (
            f"<p class='warn'>Aborted: {escape(str(report['aborted']['reason']))}; the rollback ran.</p>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}}
th{{background:#f3f3f3}}.verdict{{font-size:20px;font-weight:bold;color:{verdict_color}}}.warn{{color:#d23c3c}}
.legend span{{white-space:nowrap}}.legend i{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="verdict">{escape(report["outcome"].upper())}: {escape(headline(report))}</p>
<p>Injected: {escape(str(sc.get("injects")))}<br>Started {escape(str(report["started_at"]))}, ended {escape(str(report["ended_at"]))}; id <code>{escape(report["id"])}</code>, schema {report["schema"]} v{report["schema_version"]}.</p>
{aborted}
<table>{"".join(metrics)}</table>
<h2>Timeline</h2>
<p class="legend">{legend()}</p>
{svg_timeline(report)}
<table>{"".join(timeline)}</table>
<h2>Probes</h2><table>{"".join(probes)}</table>
{"".join(checks)}
</body></html>
"""


def _t(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f} s"
