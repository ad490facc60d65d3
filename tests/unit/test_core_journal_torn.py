"""A torn journal (issue 10, item 7): the writer never appends onto a torn last line,
readers skip and count it, `dr.report` never rewrites a report into a worse state than
the one on disk without saying why, and a journal deleted during a drill is no traceback.

Reproduced first: truncate the journal's last line and run any task: its `start`
record was glued onto the torn line and lost; `dr.report latest` then rewrote a finished
drill's reports from "met" to "unfinished"; deleting the journal mid-drill ended in
`ValueError: no start record for this drill in the journal`.
"""

from __future__ import annotations

from pathlib import Path

from support.journal import tear

from spywatcher_ops.core.clock import SystemClock
from spywatcher_ops.core.journal import Journal, read, unfinished


def test_the_writer_terminates_a_torn_tail_before_appending(tmp_path: Path, capfd) -> None:
    path = tmp_path / "journal" / "sandbox.jsonl"
    journal = Journal(path, SystemClock())
    with journal.operation("db.snapshot", "sandbox", {"label": "a"}):
        pass
    tear(path)
    assert len(read(path).corrupt) == 1  # the reader skips and counts it

    journal = Journal(path, SystemClock())  # the next process
    with journal.operation("db.snapshot", "sandbox", {"label": "b"}) as op:
        pass
    assert "the last line was torn (40 bytes" in capfd.readouterr().err
    records = read(path)
    assert records.corrupt == [2]  # the torn line stays (append-only), as its own line
    assert [r["event"] for r in records] == ["start", "journal-repaired", "start", "end"]
    assert records[1]["torn_bytes"] == 40
    assert records[2]["op_id"] == op.id and records[2]["args"] == {"label": "b"}  # not glued, not lost
    # The first operation's end was the torn line: it now counts as unfinished, as it should.
    assert [r["args"]["label"] for r in unfinished(records)] == ["a"]
    # A later write finds a clean tail: no second repair.
    journal.write({"event": "note"})
    assert [r["event"] for r in read(path)][-1] == "note"
    assert sum(r["event"] == "journal-repaired" for r in read(path)) == 1


def test_the_drill_history_is_not_appended_onto_a_torn_line(tmp_path: Path, capfd) -> None:
    from spywatcher_ops.drills.reporting import history

    path = tmp_path / "history.jsonl"
    history.append(path, {"id": "a", "rto_s": 0.1})
    history.append(path, {"id": "b", "rto_s": 0.2})
    tear(path, keep=5)
    history.append(path, {"id": "c", "rto_s": 0.3})
    assert [r["id"] for r in history.read(path)] == ["a", "c"]
    assert "the last line was torn (5 bytes" in capfd.readouterr().err


def test_a_journal_deleted_while_in_use_is_said(tmp_path: Path, capfd) -> None:
    path = tmp_path / "journal" / "sandbox.jsonl"
    journal = Journal(path, SystemClock())
    with journal.operation("dr.drill", "sandbox", {}) as op:
        op.step("fault", "injected")
        path.unlink()
        op.step("measured", "ok")
    assert "was deleted or replaced while this process wrote to it" in capfd.readouterr().err
    assert [r["event"] for r in read(path)] == ["journal-restarted", "step", "end"]
    assert read(path)[0]["op_id"] == op.id
