"""The HTML drill report: clean ticks, labels that do not sit on each other, a headline a
person reads first, and the restore drawn on the chart."""

from __future__ import annotations

import re

from spywatcher_ops.drills.reporting.htmlpage import headline, svg_timeline, tick_label, to_html


def report(*, restore: bool = False) -> dict:
    timeline = [
        {
            "kind": "fault",
            "source": "drill",
            "message": "SIGKILL the Redis primary",
            "t_s": 0.0,
            "code": None,
        },
        {
            "kind": "provider",
            "source": "sentinel-1",
            "message": "+sdown master spywatcher 127.0.0.1 29559",
            "t_s": 0.604,
            "code": "+sdown",
        },
        {
            "kind": "provider",
            "source": "sentinel-1",
            "message": "+failover-state-wait-promotion slave 127.0.0.1:29885",
            "t_s": 0.867,
            "code": "+failover-state-wait-promotion",
        },
    ]
    if restore:
        timeline += [
            {
                "kind": "restore-started",
                "source": "drill",
                "message": "restore started",
                "t_s": 0.3,
                "code": None,
            },
            {
                "kind": "restore-finished",
                "source": "drill",
                "message": "accepts connections",
                "t_s": 3.1,
                "code": None,
            },
            {"kind": "verified", "source": "drill", "message": "5 writes present", "t_s": 3.17, "code": None},
        ]
    return {
        "schema": "spywatcher-ops/drill-report",
        "schema_version": 1,
        "id": "abc123",
        "outcome": "met",
        "scenario": {
            "name": "pitr-restore" if restore else "cache-failover",
            "injects": "x",
            "part": "database" if restore else "cache",
        },
        "environment": {"name": "sandbox", "kind": "sandbox"},
        "summary": "cache writable again after 0.30 s; longest phase 0.26 s: +failover-state-wait-promotion slave",
        "started_at": "2026-11-29T10:00:00Z",
        "ended_at": "2026-11-29T10:00:05Z",
        "rto": {
            "achieved_s": 3.17 if restore else 0.3,
            "target_s": 3600.0 if restore else 300.0,
            "verdict": "met",
            "target_key": "restore" if restore else "application",
            "basis": "b",
        },
        "rpo": {
            "achieved_s": 0.0,
            "target_s": 300.0,
            "verdict": "met",
            "target_key": "database",
            "basis": "b",
            "lost_writes": 0,
        },
        "fault": {"at": "2026-11-29T10:00:00Z"},
        "timeline": timeline,
        "phases": [],
        "probes": [
            {
                "name": "cache-write",
                "bands_t_s": [[-0.5, 0.03, "up"], [0.03, 0.28, "down"], [0.28, 2.0, "up"]],
                "impacted": True,
                "recovered_t_s": 0.3,
            }
        ],
        "details": {"restore": {"instance": "i"}} if restore else {},
        "preflight": [],
        "recheck": [],
        "aborted": None,
    }


def test_ticks_are_whole_multiples_with_clean_labels():
    assert tick_label(-5.551115123125783e-17, 0.5) == "0 s"
    assert tick_label(0.30000000000000004, 0.1) == "+0.3 s"
    assert tick_label(-1.0, 0.5) == "-1.0 s" and tick_label(120.0, 60.0) == "+120 s"
    svg = svg_timeline(report())
    ticks = re.findall(r'text-anchor="middle">([^<]+ s)</text>', svg)
    assert "0 s" in ticks and not [t for t in ticks if "e-" in t or t.startswith("-0 ")], ticks


def test_top_labels_each_have_their_own_row():
    svg = svg_timeline(report())
    ys = {
        label: re.search(rf'y="(\d+)"[^>]*>{label}', svg).group(1)
        for label in ("fault", r"recovered \(RTO", "RTO target")
    }
    assert len(set(ys.values())) == 3, (
        ys
    )  # fault at 0 s and recovery at 0.3 s no longer print over each other


def test_the_headline_is_the_verdict_and_one_sentence_without_provider_text():
    page = to_html(report())
    head = re.search(r'<p class="verdict">(.*?)</p>', page).group(1)
    assert head == (
        "MET: cache writable again after 0.30 s, within the 5.0 min target (application); "
        "no acknowledged write lost."
    )
    assert "+failover-state" not in head and "+failover-state-wait-promotion" in page  # on the timeline
    assert headline({**report(), "fault": None}) == "no fault was injected (met)."


def test_a_restore_drill_draws_restoring_and_verifying():
    svg = svg_timeline(report(restore=True))
    assert ">restore</text>" in svg and "<title>restoring +0.300 s .. +3.100 s</title>" in svg
    assert "<title>verifying +3.100 s .. +3.170 s</title>" in svg and "verified at +3.170 s" in svg
    assert "restored and verified (RTO 3.17 s)" in svg
    assert ">restore</text>" not in svg_timeline(report())


def test_an_event_a_hair_before_the_fault_reads_plus_zero():
    r = report()
    r["timeline"].insert(
        0,
        {
            "kind": "provider",
            "source": "sandbox",
            "message": "primary killed",
            "t_s": -0.0001,
            "code": "fault",
        },
    )
    page = to_html(r)
    assert "-0.000" not in page and "+0.000 s fault primary killed" in page


def _rects(svg: str, state: str) -> list[tuple[float, float]]:
    return [
        (float(a), float(w))
        for a, w in re.findall(rf'<rect class="band-{state}" x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    ]


def test_the_outage_reads_down_from_the_fault_not_blank():
    # the probe saw its first failure 0.03 s after the fault and recovered at 0.3 s (RTO): the
    # chart draws fault..first failure as down-but-unobserved and first failure..recovery as down
    r = report()
    r["probes"][0].update(first_failure_t_s=0.03)
    svg = svg_timeline(r)
    zero = float(re.search(r'<line x1="([\d.]+)" y1="\d+" x2="[\d.]+" y2="\d+" stroke="#000"', svg).group(1))
    rto = float(re.search(r'<line x1="([\d.]+)"[^>]*stroke="#1f5fbf" stroke-dasharray', svg).group(1))
    [(ux, uw)] = _rects(svg, "unobserved")
    [(dx, dw)] = _rects(svg, "down")
    assert abs(ux - zero) < 0.11 and abs(ux + uw - dx) < 0.11 and abs(dx + dw - rto) < 0.11, (ux, uw, dx, dw)
    assert 'fill="url(#down-unobserved)"' in svg and 'id="down-unobserved"' in svg
    # nothing of the outage is drawn up: the up bands end at the fault and start at the recovery
    assert all(x + w <= zero + 0.11 or x >= rto - 0.11 for x, w in _rects(svg, "up"))
    assert "down, not yet seen by the probe" in to_html(r)  # the legend says what the hatching is


def test_a_probe_that_never_recovered_is_down_to_the_edge_and_an_unimpacted_one_has_no_outage():
    r = report()
    r["probes"][0].update(first_failure_t_s=None, recovered_t_s=None)
    r["probes"].append({"name": "db-read", "bands_t_s": [[-0.5, 2.0, "up"]], "impacted": False})
    svg = svg_timeline(r)
    [(_ux, uw)] = _rects(svg, "unobserved")
    assert uw > 500 and not _rects(svg, "down")  # no failure seen: hatched from the fault to the edge
    assert len(_rects(svg, "up")) == 2  # cache-write before the fault, db-read throughout


def test_event_labels_wrap_and_are_never_cut():
    r = report()
    message = (
        "5 transaction(s) committed on n2 never reached n1 and are lost; asynchronous replication: "
        "acknowledged writes may be among them"
    )
    r["timeline"].append(
        {"kind": "provider", "source": "sandbox", "message": message, "t_s": 0.9, "code": "data-loss"}
    )
    svg = svg_timeline(r)
    label = re.search(r'<text class="small event"[^>]*>((?:(?!</text>).)*data-loss.*?)</text>', svg).group(1)
    lines = re.findall(r'<tspan x="([\d.]+)"[^>]*>([^<]*)</tspan>', label)
    assert len(lines) == 2 and " ".join(t for _x, t in lines) == f"+0.900 s data-loss {message}"
    for x, text in lines:  # each line inside the 960 px chart at <= 6 px a character
        assert float(x) >= 0 and float(x) + 6.0 * len(text) <= 960, (x, text)
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    last_y = max(int(y) for y in re.findall(r'<text class="small event"[^>]*y="(\d+)"', svg))
    assert last_y + 12 * (len(lines) - 1) < height - 14  # the last line above the bottom edge
