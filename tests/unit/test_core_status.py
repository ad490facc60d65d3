"""The status model of long tasks (core/status.py): the live line and the log lines."""

from __future__ import annotations

import re
import threading

from spywatcher_ops.core.status import LogSink, Status, live_line

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def board() -> tuple[Status, Clock, list[str], LogSink]:
    clock = Clock()
    st = Status("drills on sandbox", clock=clock)
    lines: list[str] = []
    sink = LogSink(lines.append, wall=lambda: 1_795_000_000.0 + clock.t)
    st.watch(lambda snap: sink.tick(snap, clock()))
    return st, clock, lines, sink


def test_the_live_line_shows_item_phase_probes_and_the_newest_event():
    st, clock, _lines, _sink = board()
    st.item("db-failover", 1, 4)
    st.phase("steady state")
    st.probes({"db-write": True, "db-read": True})
    clock.t += 1
    st.phase("fault")
    clock.t += 0.1
    st.probes({"db-write": False, "db-read": True})
    st("RDS: failing-over")
    clock.t += 7.1
    assert live_line(st.snapshot(), clock()) == (
        "[1/4] db-failover  fault +7.2 s  db-write DOWN 7.1 s  db-read up  RDS: failing-over"
    )
    # recovering keeps the fault's clock; the fault's event still belongs to it
    st.phase("recovering")
    assert live_line(st.snapshot(), clock()).startswith("[1/4] db-failover  recovering +7.2 s")
    assert live_line(st.snapshot(), clock()).endswith("RDS: failing-over")
    # the rollback does not narrate the fault's last event
    st.phase("rollback")
    assert "RDS" not in live_line(st.snapshot(), clock())
    st.result("MET RTO 7.20 s")
    assert live_line(st.snapshot(), clock()) == "[1/4] db-failover  MET RTO 7.20 s"


def test_a_task_without_items_reads_as_before():
    st, clock, lines, _sink = board()
    clock.t += 2.5
    st("initdb n1")
    assert live_line(st.snapshot(), clock()) == "drills on sandbox: initdb n1 (2.5 s)"
    st("starting primary n1")
    assert [STAMP.sub("", line) for line in lines] == [
        "drills on sandbox: initdb n1 (2.5 s)",
        "drills on sandbox: starting primary n1 (2.5 s)",
    ]


def test_the_event_thread_and_the_probe_loop_never_overwrite_each_other():
    """The cause of 'injecting' for 15 s: the main loop wrote its own text every 20 ms over the
    failover thread's messages. Now each writes its own field."""
    st = Status("x")
    st.item("db-stall", 1, 1)
    st.phase("fault")
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            st.probes({"db-write": False})

    t = threading.Thread(target=loop)
    t.start()
    st("primary frozen (SIGSTOP)")
    stop.set()
    t.join()
    line = live_line(st.snapshot(), st.now())
    assert "db-write DOWN" in line and line.endswith("primary frozen (SIGSTOP)")


def test_log_lines_on_change_coalesced_and_a_heartbeat_every_30_s():
    st, clock, lines, sink = board()
    st.item("cache-failover", 2, 4)
    assert lines == []  # nothing to say before the first phase
    st.phase("steady state")
    st.probes({"cache-write": True})
    clock.t += 0.5
    st.phase("fault")  # at once
    assert len(lines) == 2
    clock.t += 0.4
    st.probes({"cache-write": False})  # a probe going down: at once
    assert "cache-write DOWN" in lines[-1]
    for _ in range(20):  # flapping and chatty events inside a second: no line
        clock.t += 0.02
        st.probes({"cache-write": True})
        st(f"sentinel +sdown {clock.t}")
        st.probes({"cache-write": False})
    assert len(lines) == 3
    clock.t += 1.0
    st.probes({"cache-write": True})  # settled, a second after the last line: one line
    assert len(lines) == 4 and "cache-write up" in lines[-1]
    # nothing changes for 65 s: two heartbeats, from the periodic tick
    for _ in range(650):
        clock.t += 0.1
        sink.tick(st.snapshot(), clock())
    assert len(lines) == 6
    st.result("MET RTO 1.85 s")
    assert lines[-1].endswith("[2/4] cache-failover  MET RTO 1.85 s")
    assert all(STAMP.match(line) for line in lines)


def test_short_phases_collapse_but_the_result_is_always_written():
    st, clock, lines, sink = board()
    st.item("db-failover", 1, 1)
    st.phase("steady state")
    clock.t += 0.01
    st.phase("fault")
    clock.t += 0.05
    st.phase("recovering")
    st.phase("rollback")
    st.phase("re-check")
    assert [line.split("  ")[1].split(" +")[0] for line in lines] == ["steady state", "fault"]
    clock.t += 1.0
    sink.tick(st.snapshot(), clock())  # the state it settled on, a second later
    assert "re-check" in lines[-1]
    st.result("MISSED RTO 75.0 s")
    assert lines[-1].endswith("MISSED RTO 75.0 s") and len(lines) == 4
    sink.flush(st.snapshot(), clock())
    assert len(lines) == 4
