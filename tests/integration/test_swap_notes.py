"""What db.swap says after it on the sandbox: the reverse command once (the task's "to reverse:"
line, not again as a note or warning), and that connections opened before it are closed (the old
pair is stopped). AWS: unit/test_swap_notes_unit.py."""

from __future__ import annotations

import pytest

from spywatcher_ops.recovery.swap import SwapOutcome

pytestmark = pytest.mark.real


def test_sandbox_swap_says_old_connections_are_cut_and_not_the_reverse_command(pg_pair_factory):
    pair = pg_pair_factory()
    main_id = pair.state()["main"]
    with pair.box.statefile.editing() as edited:  # a second instance to swap in (only its name is read)
        edited["instances"]["restored-n"] = dict(edited["instances"][main_id], created_by_us=True)
    plan = pair.database.plan_swap("restored-n", "old-n")
    warnings = SwapOutcome(plan, True, "old-n").warnings
    assert not any("inv db.swap" in w for w in warnings), warnings
    assert not any("keep talking to the old instance" in w for w in warnings), warnings
    assert any("the old pair is stopped" in w and "reconnect" in w for w in warnings), warnings
