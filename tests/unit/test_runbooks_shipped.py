"""The runbooks we ship: they pass `inv runbook.check` against the real task
collection (CI runs this), they list and render, and each ends with a
verification and with what to record."""

from __future__ import annotations

from spywatcher_ops.runbooks.library import SHIPPED, load_all

NAMES = {
    "database-unavailable",
    "data-corruption",
    "cache-unavailable",
    "database-credentials-compromised",
    "drill-failed",
    "service-down",
    "high-error-rate",
    "elevated-response-time",
    "high-cpu-memory",
    "low-disk-space",
    "replication-degraded",
    "cache-redundancy-lost",
}


def test_the_library_readme_lists_exactly_the_shipped_runbooks() -> None:
    import re

    listed = set(
        re.findall(r"^\| \[([a-z0-9-]+)\]\(\1\.md\) \|", (SHIPPED / "README.md").read_text(), flags=re.M)
    )
    assert listed == {rb.name for rb in load_all()} == NAMES


def test_each_runbook_verifies_and_says_what_to_record() -> None:
    for rb in load_all():
        last = rb.steps[-1]
        assert last.title == "Record" and last.kind == "manual", rb.name
        assert "Record in the timeline" in last.body, rb.name
        checks = [s for s in rb.steps[:-1] if s.title.startswith(("Verify", "Check the environment"))]
        assert checks and checks[-1].kind == "diagnostic", rb.name


def test_rotation_is_the_toolkit_task_and_the_restart_follows() -> None:
    (rb,) = [r for r in load_all() if r.name == "database-credentials-compromised"]
    (rotate,) = [s for s in rb.steps if s.title == "Rotate the secret"]
    assert rotate.kind == "mutating"
    assert [c for b in rotate.runnable for _, c in b.commands()] == ["inv db.rotate-credentials --env {env}"]
    (restart,) = [s for s in rb.steps if s.title == "Make the application reconnect"]
    assert [c for b in restart.runnable for _, c in b.commands()] == [
        "inv app.restart --env {env} --deployment backend"
    ]
