"""The drill lifecycle with an in-memory service: a real Scenario and real probe
threads (ProbeThread) against a Python object that can be taken down. No
processes; checks ordering, rollback on every path, journal, reports, exit codes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from spywatcher_ops.backends.table import build
from spywatcher_ops.core.clock import SystemClock
from spywatcher_ops.core.config import load
from spywatcher_ops.core.errors import NotReady, RolledBack, TargetMissed
from spywatcher_ops.core.journal import read
from spywatcher_ops.drills import suite
from spywatcher_ops.drills.measure import Stability, Write
from spywatcher_ops.drills.probes import Anchor, Cadence, ProbeThread, WriteLedger
from spywatcher_ops.drills.reporting import history
from spywatcher_ops.drills.runner import mark_fault, run_scenario
from spywatcher_ops.drills.scenario import DrillOptions, Scenario

FAST = Cadence(interval=0.02, retry_interval=0.005)


class MemoryService:
    """Something that is up or down, and remembers acknowledged writes unless told to lose them."""

    def __init__(self) -> None:
        self.up = True
        self.rows: set[int] = set()
        self.lock = threading.Lock()

    def write(self, seq: int) -> None:
        if not self.up:
            raise ConnectionError("service down")
        with self.lock:
            self.rows.add(seq)


class MemWriter(ProbeThread):
    name, part, kind = "mem-write", "memory", "write"

    def __init__(self, service: MemoryService, anchor: Anchor) -> None:
        super().__init__(anchor, FAST)
        self.service = service
        self.ledger = WriteLedger()

    def once(self) -> None:
        seq = self.ledger.begin(self.anchor.now())
        self.service.write(seq)
        self.ledger.ack(seq, self.anchor.now())

    def writes(self) -> list[Write]:
        return self.ledger.writes()

    def surviving(self, deadline_s: float) -> set[int]:
        return set(self.service.rows)


class MemOutage(Scenario):
    """Takes the service down for `outage_s`; optionally loses the last `lose` acked writes."""

    name = "mem-outage"
    injects = "takes the in-memory service down"
    part = "memory"
    rto_key = "memory"
    rpo_key = "memory"
    kinds = ("sandbox",)
    probes = ("mem-write",)
    judged_by = ("mem-write",)
    timeout_s = 5.0

    def __init__(
        self,
        outage_s: float = 0.3,
        lose: int = 0,
        recover: bool = True,
        signal_me: int = 0,
        fail: bool = False,
        start_down: bool = False,
    ) -> None:
        self.service = MemoryService()
        self.service.up = not start_down
        self.outage_s, self.lose, self.recover = outage_s, lose, recover
        self.signal_me, self.fail = signal_me, fail
        self.calls: list[str] = []

    def make_probes(self, ctx):
        return [MemWriter(self.service, ctx.anchor)]

    def inject(self, ctx):
        self.calls.append("inject")
        if self.fail:
            raise RuntimeError("provider said no")
        fault = mark_fault(ctx, "service down")
        with self.service.lock:
            self.service.up = False
            for seq in sorted(self.service.rows)[-self.lose :] if self.lose else []:
                self.service.rows.discard(seq)
        if self.signal_me:
            os.kill(os.getpid(), self.signal_me)
        time.sleep(self.outage_s)
        self.service.up = self.recover
        return fault

    def rollback(self, ctx, fault):
        self.calls.append("rollback")
        self.service.up = True


@pytest.fixture
def env(ops_config):
    ops_config.ops.targets.rto.memory = 1.0
    ops_config.ops.targets.rpo.memory = 0.5
    return build(load(ops_config), "sandbox")


def options(**kw) -> DrillOptions:
    kw.setdefault("steady_timeout_s", 1.0)
    return DrillOptions(stability=Stability(stable_count=3), cadence=FAST, **kw)


def test_a_drill_measures_the_outage_and_writes_reports_and_history(env, tmp_path):
    scenario = MemOutage(outage_s=0.3)
    checked = [suite.Preflighted(scenario, [])]
    result = suite.run_suite(env, checked, options(), report_dir=tmp_path / "reports")
    (row,) = result.rows
    assert row.outcome == "met" and result.exit_error() is None
    assert 0.28 <= row.rto_s <= 0.45
    assert row.lost_writes == 0 and row.rpo_s == 0.0
    assert scenario.calls == ["inject", "rollback"]
    files = sorted((tmp_path / "reports").iterdir())
    drill_files = [p for p in files if "-run-" not in p.name]
    assert sorted(p.suffix for p in drill_files) == [".html", ".json", ".md"]
    # and the run's index beside them, linking the drill's report
    assert sorted(p.suffix for p in files if "-run-" in p.name) == [".html", ".json", ".md"]
    assert result.index["html"].endswith(f"-run-{result.run_id}.html")
    assert [p.name for p in drill_files if p.suffix == ".html"][0] in Path(result.index["html"]).read_text()
    steps = [r.get("step") for r in read(env.journal.path) if r.get("event") == "step"]
    for expected in (
        "probes-started",
        "steady-state",
        "fault",
        "fault-done",
        "recovered",
        "rollback",
        "probe",
        "measured",
        "recheck",
    ):
        assert expected in steps, expected
    assert steps.index("steady-state") < steps.index("fault") < steps.index("rollback")
    (line,) = history.read(history.history_path(env.settings.state_dir))
    assert line["scenario"] == "mem-outage" and line["rto_s"] == row.rto_s


def test_lost_acknowledged_writes_miss_the_rpo_target(env, tmp_path):
    result = suite.run_suite(
        env, [suite.Preflighted(MemOutage(outage_s=0.1, lose=3), [])], options(), report_dir=tmp_path
    )
    (row,) = result.rows
    assert row.lost_writes == 3 and row.rpo_verdict == "met"  # 3 writes at 20 ms: 0.06 s < 0.5 s
    env.settings.targets.rpo["memory"] = 0.01
    result = suite.run_suite(
        env, [suite.Preflighted(MemOutage(outage_s=0.1, lose=3), [])], options(), report_dir=tmp_path
    )
    assert result.rows[0].outcome == "missed"
    err = result.exit_error()
    assert isinstance(err, TargetMissed) and err.exit_code == 1 and "RPO" in str(err)


def test_a_slow_recovery_misses_the_rto_target(env, tmp_path):
    env.settings.targets.rto["memory"] = 0.1
    result = suite.run_suite(
        env, [suite.Preflighted(MemOutage(outage_s=0.3), [])], options(), report_dir=tmp_path
    )
    assert result.rows[0].rto_verdict == "missed" and result.exit_error().exit_code == 1


def test_hard_timeout_aborts_and_still_rolls_back(env, tmp_path):
    scenario = MemOutage(outage_s=0.05, recover=False)
    run = run_scenario(env, scenario, options(timeout_s=0.5))
    assert run.outcome == "aborted" and isinstance(run.error, RolledBack) and run.error.exit_code == 4
    assert scenario.calls == ["inject", "rollback"]
    end = [r for r in run.records if r["event"] == "end"][0]
    assert end["outcome"] == "RolledBack"
    assert any(r.get("step") == "aborted" and "hard timeout" in r["reason"] for r in run.records)


def test_sigterm_mid_drill_becomes_an_abort_with_rollback(env):
    scenario = MemOutage(outage_s=1.0, signal_me=signal.SIGTERM)
    previous = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    run = run_scenario(env, scenario, options())
    assert run.outcome == "aborted" and run.error.exit_code == 4
    assert "SIGTERM" in str(run.error)
    assert scenario.calls == ["inject", "rollback"]
    assert signal.getsignal(signal.SIGTERM) == previous  # handler restored
    assert time.monotonic() - started < 5


def test_no_steady_state_means_not_ready_and_nothing_injected(env):
    scenario = MemOutage(start_down=True)
    run = run_scenario(env, scenario, options())
    assert run.outcome == "not-ready" and isinstance(run.error, NotReady) and run.error.exit_code == 3
    assert scenario.calls == ["rollback"]


def test_a_failing_injection_is_rolled_back(env):
    scenario = MemOutage(fail=True)
    run = run_scenario(env, scenario, options())
    assert run.outcome == "aborted" and "provider said no" in str(run.error)
    assert scenario.calls == ["inject", "rollback"]


def test_a_held_lock_refuses_the_drill(env):
    with env.file_lock().hold("someone", "db.restore"):
        run = run_scenario(env, MemOutage(), options())
    assert run.outcome == "not-ready" and "locked" in str(run.error)


def test_preflight_failure_is_exit_3_before_anything(env):
    from spywatcher_ops.drills.scenario import Check

    checked = [suite.Preflighted(MemOutage(), [Check("standby", "failed", "no standby")])]
    err = suite.not_ready(checked)
    assert err is not None and err.exit_code == 3 and "no standby" in str(err)


def test_reports_can_be_rebuilt_from_the_journal(env, tmp_path):
    result = suite.run_suite(
        env, [suite.Preflighted(MemOutage(outage_s=0.1), [])], options(), report_dir=tmp_path
    )
    rep = suite.rerender(env.settings.state_dir, result.rows[0].report_id, tmp_path / "again")
    assert rep["id"] == result.rows[0].report_id and rep["rto"]["achieved_s"] == result.rows[0].rto_s
    assert len(list(Path(tmp_path / "again").iterdir())) == 3
    # latest is the run: its index and its drill's report again
    run = suite.rerender(env.settings.state_dir, "latest", tmp_path / "run")
    assert run["id"] == result.run_id and [i["id"] for i in run["items"]] == [result.rows[0].report_id]
    assert len(list(Path(tmp_path / "run").iterdir())) == 6


def test_ctrl_c_mid_drill_becomes_an_abort_with_rollback(env):
    scenario = MemOutage(outage_s=1.0, signal_me=signal.SIGINT)
    run = run_scenario(env, scenario, options())
    assert run.outcome == "aborted" and run.error.exit_code == 4 and "Ctrl-C" in str(run.error)
    assert scenario.calls == ["inject", "rollback"]


def test_cleanup_leaves_a_running_drill_alone_and_retries_what_failed(env):
    """A drill that is still running holds the lock: its pending undo entries are not leftovers yet."""
    import subprocess

    from spywatcher_ops.backends.sandbox.net import start_time as process_start_time
    from spywatcher_ops.drills.cleanup import clean_up

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(sleeper.pid, signal.SIGSTOP)
        journal = env.journal
        journal.write({"event": "start", "op_id": "live1", "op": "dr.drill", "env": "sandbox", "args": {}})
        journal.write(
            {
                "event": "step",
                "op_id": "live1",
                "op": "dr.drill",
                "env": "sandbox",
                "step": "undo",
                "status": "pending",
                "undo": {
                    "id": "u1",
                    "kind": "sigcont",
                    "pids": [[sleeper.pid, process_start_time(sleeper.pid)]],
                },
            }
        )
        journal.write(
            {
                "event": "step",
                "op_id": "live1",
                "op": "dr.drill",
                "env": "sandbox",
                "step": "undo",
                "status": "pending",
                "undo": {"id": "u2", "kind": "no-such-kind"},
            }
        )
        with env.parts.lock().hold("someone", "dr.drill"):  # the live drill
            assert clean_up(env) == []
            assert _state(sleeper.pid) == "T"  # still stopped: its own rollback will resume it
        (done,) = clean_up(env)  # the drill died without rolling back
        assert [(a["undo_id"], a["status"]) for a in done["actions"]] == [("u2", "failed"), ("u1", "ok")]
        assert _state(sleeper.pid) in ("S", "R")  # resumed
        (again,) = clean_up(env)  # the failed entry is tried again, the done one is not
        assert [(a["undo_id"], a["status"]) for a in again["actions"]] == [("u2", "failed")]
    finally:
        sleeper.kill()
        sleeper.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def test_sigterm_during_the_rollback_lets_the_drill_finish_then_stops_the_suite(env, tmp_path):
    class TermDuringRecheck(MemOutage):
        def recheck(self, env_):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the rollback is shielded
            return []

    first, second = TermDuringRecheck(outage_s=0.2), MemOutage(outage_s=0.2)
    second.name = "mem-outage-2"
    checked = [suite.Preflighted(first, []), suite.Preflighted(second, [])]
    result = suite.run_suite(env, checked, options(), report_dir=tmp_path, publish=False)
    assert [r.scenario for r in result.rows] == ["mem-outage"]  # the second was never injected
    assert second.calls == []
    assert result.rows[0].outcome == "met" and result.rows[0].rto_s is not None  # the measurement stands
    err = result.exit_error()
    assert isinstance(err, RolledBack) and err.exit_code == 4 and "SIGTERM during the rollback" in str(err)
    steps = [r.get("step") for r in read(env.journal.path)]
    assert "interrupted" in steps


def test_a_watch_only_probe_does_not_hold_up_the_steady_state():
    from types import SimpleNamespace

    from spywatcher_ops.drills.runner import _wait_steady

    class AlwaysDown(ProbeThread):
        name, part, kind = "app-health", "application", "read"
        watch_only = True

        def once(self) -> None:
            raise ConnectionError("HTTP 503")

    anchor = Anchor.from_clock(SystemClock())
    service = MemoryService()
    good, watcher = MemWriter(service, anchor), AlwaysDown(anchor, FAST)
    ctx = SimpleNamespace(options=options(), progress=lambda _s: None)
    for p in (good, watcher):
        p.start()
    try:
        _wait_steady(ctx, [good, watcher])  # returns: only the judged probe must be steady
        watcher.watch_only = False
        with pytest.raises(NotReady, match="app-health: .*HTTP 503"):
            _wait_steady(
                SimpleNamespace(options=options(steady_timeout_s=0.3), progress=lambda _s: None),
                [good, watcher],
            )
    finally:
        for p in (good, watcher):
            p.stop()


class Peek(MemOutage):
    """Reads the run's index on disk as its drill starts: what a SIGKILL now would leave."""

    name = "mem-peek"

    def __init__(self, folder: Path, **kw) -> None:
        super().__init__(**kw)
        self.folder, self.seen = folder, []

    def inject(self, ctx):
        import json

        self.seen = [json.loads(p.read_text()) for p in self.folder.glob("*-run-*.json")]
        return super().inject(ctx)


def test_the_run_index_is_on_disk_while_the_run_goes(env, tmp_path):
    folder = tmp_path / "reports"
    peek = Peek(folder, outage_s=0.1)
    scenarios = [MemOutage(outage_s=0.1), peek, MemOutage(outage_s=0.1)]
    result = suite.run_suite(env, [suite.Preflighted(s, []) for s in scenarios], options(), report_dir=folder)
    (during,) = peek.seen
    assert during["id"] == result.run_id and during["state"] == during["outcome"] == "running"
    assert during["ended_at"] is None and during["pending"] == ["mem-peek", "mem-outage"]
    assert [i["id"] for i in during["items"]] == [result.rows[0].report_id]
    from spywatcher_ops.drills.reporting import runindex

    assert runindex.progress_line(during).startswith("not finished when written (1 of 3 drill(s) done)")
    final = suite.rerender(env.settings.state_dir, "latest", folder)
    assert final["state"] == "finished" and final["outcome"] == "met" and final["pending"] == []
    assert [i["id"] for i in final["items"]] == [r.report_id for r in result.rows]


def test_ctrl_c_mid_suite_leaves_an_index_saying_interrupted_and_what_never_ran(env, tmp_path):
    scenarios = [MemOutage(outage_s=0.1), MemOutage(outage_s=1.0, signal_me=signal.SIGINT), Peek(tmp_path)]
    result = suite.run_suite(
        env, [suite.Preflighted(s, []) for s in scenarios], options(), report_dir=tmp_path
    )
    assert isinstance(result.error, RolledBack) and [r.outcome for r in result.rows] == ["met", "aborted"]
    import json

    for index in (
        json.loads(Path(result.index["json"]).read_text()),
        suite.rerender(env.settings.state_dir, "latest", tmp_path / "again"),
    ):
        assert index["state"] == index["outcome"] == "interrupted" and index["pending"] == ["mem-peek"]
        assert [i["outcome"] for i in index["items"]] == ["met", "aborted"]
    md = Path(result.index["markdown"]).read_text()
    assert (
        "| mem-peek | - | - | NOT RUN | - |" in md
        and "interrupted after 2 drill(s); never run: mem-peek" in md
    )


def _killed_during_drill(env, n: int, pid: int, started: object = "keep") -> None:
    """Cut the journal as a SIGKILL during the n-th drill (after its fault) would; the run's pid is
    `pid` (and its start time `started`, unless "keep")."""
    import json

    records = read(env.journal.path)
    drills = [r["op_id"] for r in records if r.get("event") == "start" and r.get("op") == "dr.drill"]
    cut = next(
        i for i, r in enumerate(records) if r.get("op_id") == drills[n - 1] and r.get("step") == "fault"
    )
    for r in records[: cut + 1]:
        if r.get("event") == "start" and r.get("op") == "drill-run":
            r["args"]["pid"] = pid
            if started != "keep":
                r["args"]["pid_started"] = started
    env.journal.path.write_text("".join(json.dumps(r) + "\n" for r in records[: cut + 1]))


def test_a_killed_run_shows_as_interrupted_from_the_journal(env, tmp_path):
    scenarios = [MemOutage(outage_s=0.1), MemOutage(outage_s=0.1), Peek(tmp_path)]
    result = suite.run_suite(
        env, [suite.Preflighted(s, []) for s in scenarios], options(), report_dir=tmp_path
    )
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process can have it
    _killed_during_drill(env, 2, dead)
    index = suite.rerender(env.settings.state_dir, "latest", tmp_path / "fresh")
    assert index["id"] == result.run_id and index["state"] == index["outcome"] == "interrupted"
    assert [i["outcome"] for i in index["items"]] == ["met", "unfinished"] and index["pending"] == [
        "mem-peek"
    ]
    assert index["ended_at"] is None and index["warnings"] == []
    # a journal cut after the run ended (the index on disk says it ended) keeps that index
    kept = suite.rerender(env.settings.state_dir, "latest", tmp_path)
    assert kept["state"] == "finished" and any("kept the run index on disk" in w for w in kept["warnings"])
    # the process that journalled it is still there: running, not interrupted
    _killed_during_drill(env, 2, os.getpid())
    running = suite.rerender(env.settings.state_dir, "latest", tmp_path / "live")
    assert running["state"] == running["outcome"] == "running"


def test_a_run_whose_pid_now_names_another_process_is_interrupted(env, tmp_path):
    """The kernel reuses pids: the run's pid is alive, but started at another time than the run's
    process (a later process that got the number), so the run was killed, not running."""
    from spywatcher_ops.core.process import start_time

    suite.run_suite(env, [suite.Preflighted(MemOutage(outage_s=0.1), [])], options(), report_dir=tmp_path)
    start = next(r for r in read(env.journal.path) if r.get("op") == "drill-run")
    assert start["args"]["pid"] == os.getpid() and start["args"]["pid_started"] == start_time(os.getpid())
    _killed_during_drill(env, 1, os.getpid(), started=start_time(os.getpid()) + 1)
    index = suite.rerender(env.settings.state_dir, "latest", tmp_path / "reused")
    assert index["state"] == index["outcome"] == "interrupted"
    # its own start time: running; a journal from before start times were kept: the pid alone
    for started in (start_time(os.getpid()), None):
        _killed_during_drill(env, 1, os.getpid(), started=started)
        running = suite.rerender(env.settings.state_dir, "latest", tmp_path / f"live-{started}")
        assert running["state"] == "running", started
