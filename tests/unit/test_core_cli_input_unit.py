"""Bad input caught before any task body, for every task at once (issue 10, item 9):
option values invoke cannot convert, empty strings, INVOKE_OPS_* numbers, and a
runbook run whose checks failed ending with exit 1."""

from __future__ import annotations

import pytest


def test_an_interrupt_no_task_handled_claims_no_rollback() -> None:
    """A Ctrl-C that reaches the task boundary was not rolled back by anyone: exit 1, and the
    message says so (it used to say 'has been rolled back', exit 4, whatever had happened)."""
    from invoke import Exit

    from spywatcher_ops.core.cli import boundary

    def body(c: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(Exit) as changing:
        boundary(body, read_only=False)(None)
    assert changing.value.code == 1
    assert "part-way; nothing was rolled back" in str(changing.value.message)
    assert "rolled back or" not in str(changing.value.message)
    with pytest.raises(Exit) as reading:
        boundary(body, read_only=True)(None)
    assert reading.value.code == 1 and "this task changes nothing" in str(reading.value.message)
