"""One status model for long tasks, two renderings.

A `Status` holds what a long task is doing right now: item k of n (a drill
scenario, a maintenance step), its phase and since when, each probe's state and
for how long, and the newest provider event. Threads write to it (the main loop
sets phases and probe states; a provider call in a worker thread reports events)
and nobody overwrites anybody: each writer owns its field.

Renderings read snapshots of it:
- `live_line`: one line a terminal redraws (rich, see console.py), e.g.
  `[1/4] db-failover  fault +7.2 s  db-write DOWN 7.1 s  db-read up  RDS: failing-over`;
- `LogSink`: for a file or a redirected stream, a UTC-timestamped line only when the
  state changes (probe flapping and chatty provider events coalesced), plus a
  heartbeat when nothing changed for 30 s. A scheduler's log stays short and greppable.

Stdlib only: imported by tasks when they run, never by `inv --list`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

# A phase shown with the time since the fault rather than since the phase began.
FAULT_CLOCK_PHASES = ("fault", "recovering")


@dataclass(frozen=True)
class ProbeState:
    up: bool
    since: float


@dataclass(frozen=True)
class Snapshot:
    title: str = ""
    index: int = 0  # k of n; 0 when the task has no items
    total: int = 0
    item: str = ""
    phase: str = ""
    phase_since: float = 0.0
    fault_at: float | None = None
    probes: dict[str, ProbeState] = field(default_factory=dict)
    event: str = ""
    event_at: float = 0.0
    started: float = 0.0
    timed: bool = True  # False for a final phase (an outcome): no running clock

    def key(self) -> tuple[object, ...]:
        """The state without its timers: a change of key is a change worth a log line."""
        return (
            self.index,
            self.item,
            self.phase,
            tuple((n, p.up) for n, p in self.probes.items()),
            self.shown_event(),
        )

    def shown_event(self) -> str:
        """The newest event, while it belongs to this phase (from the fault on, it belongs to the
        fault and recovery): a restore's last message must not narrate the rollback after it."""
        t0 = (
            self.fault_at
            if self.phase in FAULT_CLOCK_PHASES and self.fault_at is not None
            else self.phase_since
        )
        return self.event if not self.item or self.event_at >= t0 else ""


class Status:
    """Thread-safe current state of one long task. Calling it sets the newest event,
    so it can be passed wherever a Progress callback (`progress(text)`) is expected."""

    def __init__(self, title: str = "", *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._snap = Snapshot(title=title, started=now, phase_since=now)
        self._listeners: list[Callable[[str], None]] = []
        self._watchers: list[Callable[[Snapshot], None]] = []

    def watch(self, callback: Callable[[Snapshot], None]) -> None:
        """Call `callback(snapshot)` after every change, in the changing thread: a phase that
        lasts 50 ms is still seen (a poller would miss it)."""
        self._watchers.append(callback)

    def _changed(self) -> None:
        snap = self.snapshot()
        for callback in self._watchers:
            try:
                callback(snap)
            except Exception:  # noqa: BLE001,S110 - a status line must never break the task
                pass

    def listen(self, callback: Callable[[str], None]) -> None:
        """Also hand each new event text to `callback` (a plain Progress of an older caller)."""
        self._listeners.append(callback)

    def now(self) -> float:
        return self._clock()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snap

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)  # type: ignore[arg-type]
        self._changed()

    def item(self, name: str, index: int, total: int) -> None:
        """Start item k of n (a scenario, a step): phase, probes and event start afresh."""
        now = self._clock()
        self._set(
            item=name,
            index=index,
            total=total,
            phase="",
            phase_since=now,
            fault_at=None,
            probes={},
            event="",
            event_at=now,
        )

    def phase(self, name: str) -> None:
        now = self._clock()
        snap = self.snapshot()
        if snap.phase == name:
            return
        fault_at = snap.fault_at
        if name == "fault" and fault_at is None:
            fault_at = now
        self._set(phase=name, phase_since=now, fault_at=fault_at, timed=True)

    def result(self, text: str) -> None:
        """The item's outcome (e.g. `MET RTO 0.32 s`): a final phase, without clock, probes or event."""
        self._set(phase=text, phase_since=self._clock(), probes={}, event="", timed=False)

    def probes(self, states: dict[str, bool], ago: dict[str, float] | None = None) -> None:
        """Each probe up (True) or down; the time of a probe's last change is kept. `ago`: how
        long ago a probe's new state really began (its last good attempt), when that is known."""
        now = self._clock()
        ago = ago or {}
        with self._lock:
            old = self._snap.probes
            new = {
                n: old[n] if n in old and old[n].up == up else ProbeState(up, now - ago.get(n, 0.0))
                for n, up in states.items()
            }
            if new == old:
                return
            self._snap = replace(self._snap, probes=new)
        self._changed()

    def event(self, text: str) -> None:
        text = " ".join(str(text).split())
        if text and text != self.snapshot().event:
            self._set(event=text, event_at=self._clock())
            for callback in self._listeners:
                callback(text)

    __call__ = event


def _secs(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def live_line(s: Snapshot, now: float, *, event_width: int = 60) -> str:
    """`[1/4] db-failover  fault +7.2 s  db-write DOWN 7.1 s  db-read up  <event>`; without items,
    `<title>: <event> (<elapsed>)` as long tasks printed before."""
    if not s.item:
        what = s.event or s.phase or "starting"
        return f"{s.title}: {what} ({_secs(max(0.0, now - s.started))})"
    parts = [f"[{s.index}/{s.total}] {s.item}" if s.total else s.item]
    if s.phase and not s.timed:
        parts.append(s.phase)
    elif s.phase:
        t0 = s.fault_at if s.phase in FAULT_CLOCK_PHASES and s.fault_at is not None else s.phase_since
        parts.append(f"{s.phase} +{_secs(max(0.0, now - t0))}")
    for name, p in s.probes.items():
        parts.append(f"{name} up" if p.up else f"{name} DOWN {_secs(max(0.0, now - p.since))}")
    shown = s.shown_event()
    if shown:
        parts.append(shown if len(shown) <= event_width else shown[: event_width - 3] + "...")
    return "  ".join(parts)


def utc_stamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LogSink:
    """Timestamped lines for a file or a redirected stream: one when the state changes, and a
    heartbeat after `heartbeat_s` of silence. Written at once: a new item, the fault, an item's
    result, a probe going down, and each new text of a task without items (those are its
    steps). Other changes wait until `min_gap_s` after the previous line, so phases of a few
    milliseconds and flapping probes collapse into one line with the state they settled on;
    an event alone waits `event_gap_s` (sentinels and RDS narrate every sub-step; the
    report's timeline keeps them all)."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        heartbeat_s: float = 30.0,
        min_gap_s: float = 1.0,
        event_gap_s: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._write = write
        self.heartbeat_s = heartbeat_s
        self.min_gap_s = min_gap_s
        self.event_gap_s = event_gap_s
        self._wall = wall
        self._last_key: tuple[object, ...] | None = None
        self._last_at = float("-inf")
        self._lock = threading.Lock()
        self.lines = 0

    def _emit(self, s: Snapshot, now: float) -> None:
        self._write(f"{utc_stamp(self._wall())} {live_line(s, now, event_width=200)}")
        self._last_key, self._last_at = s.key(), now
        self.lines += 1

    def tick(self, s: Snapshot, now: float) -> None:
        """Called on every change and periodically (heartbeats, coalesced changes); any thread."""
        if s.item and not s.phase or not s.item and not (s.event or s.phase):
            return  # nothing to say yet
        with self._lock:
            key, last = s.key(), self._last_key
            if key == last:
                if now - self._last_at >= self.heartbeat_s:
                    self._emit(s, now)
                return
            if last is None:
                self._emit(s, now)
                return
            at_once = (
                key[:2] != last[:2]
                or not s.item
                or not s.timed
                or (s.phase == "fault" and last[2] != "fault")
            )
            gap = now - self._last_at
            if at_once or (key[2] != last[2] and gap >= self.min_gap_s):
                self._emit(s, now)
            elif key[3] != last[3] and (_downs(key) > _downs(last) or gap >= self.min_gap_s):
                self._emit(s, now)  # a probe went down: at once, however short the outage
            elif gap >= self.event_gap_s:
                self._emit(s, now)

    def flush(self, s: Snapshot, now: float) -> None:
        """At the end: the state it ended in, if that was not written yet."""
        with self._lock:
            if s.key() != self._last_key and (s.phase or s.event):
                self._emit(s, now)


def _downs(key: tuple[object, ...]) -> int:
    probes = key[3]
    assert isinstance(probes, tuple)
    return sum(1 for _name, up in probes if not up)


class Ticker:
    """Calls `tick()` every `interval` s in a daemon thread until stopped, so heartbeats and
    coalesced changes are written even while the task's own thread is blocked."""

    def __init__(self, tick: Callable[[], None], interval: float = 0.1) -> None:
        self._tick = tick
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-ticker", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:  # noqa: BLE001,S110 - a status line must never break the task
                pass

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
