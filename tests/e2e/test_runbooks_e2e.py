"""A responder walks the shipped "data-corruption" runbook on a real sandbox,
end to end, through a real terminal: damage the data, restore to the last good
time into a new instance, verify, swap, and the good rows are back.

The sandbox (real PostgreSQL primary + standby, WAL archive, Redis) is brought
up with `inv sandbox.up` in this test's private state folder and purged after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import ROOT
from support.walk import Walk

INV = [sys.executable, "-m", "invoke"]


def run_env(state_dir: Path) -> dict[str, str]:
    return dict(os.environ, INVOKE_OPS_STATE_DIR=str(state_dir), TERM="dumb", NO_COLOR="1", COLUMNS="200")


def inv(args: list[str], state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        INV + args,
        cwd=str(ROOT),
        env=run_env(state_dir),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def sandbox(state_dir: Path, ops_config) -> Iterator:
    """The sandbox Environment, up and running in this test's state folder."""
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load

    up = inv(["sandbox.up"], state_dir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield build(load(ops_config), "sandbox")
    finally:
        down = inv(["sandbox.down", "--purge", "--yes"], state_dir)
        assert down.returncode == 0, down.stdout + down.stderr


def sql(environment, statement: str, instance: str | None = None):
    import psycopg

    with psycopg.connect(
        **environment.database.connection(instance).kwargs(), autocommit=True, connect_timeout=10
    ) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else None


@pytest.mark.real
@pytest.mark.e2e
def test_responder_walks_data_corruption_on_the_sandbox(sandbox, state_dir: Path) -> None:
    sql(sandbox, "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL)")
    sql(sandbox, "INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 20) g")
    time.sleep(0.2)
    (good,) = sql(
        sandbox, "SELECT to_char(clock_timestamp() AT TIME ZONE 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    )[0]
    time.sleep(0.2)
    # The bad migration.
    sql(sandbox, "UPDATE orders SET amount = 0")
    sql(sandbox, "DELETE FROM orders WHERE id > 10")
    assert sql(sandbox, "SELECT count(*), sum(amount) FROM orders") == [(10, 0)]

    walk = Walk(
        ["runbook.run", "data-corruption", "--env", "sandbox", "--incident", "INC-2041"], run_env(state_dir)
    )
    child, expect = walk.child, walk.expect

    expect(r"Step 1/9: Stop the damage")
    expect(r"Done\?")
    child.sendline("note")
    expect("Note for the timeline:")
    child.sendline("stopped migration job 0042")
    expect(r"Done\?")
    child.sendline("y")
    expect(r"\$ inv db.window --env sandbox")
    expect(r"latest restorable:")
    expect(r"Step 3/9: Choose the last good time")
    expect(r"Value for \{to\}")
    child.sendline(good)
    expect(r"Done\?")
    child.sendline("y")
    expect(r"\$ inv db.snapshot --env sandbox --label before-restore")
    expect(r"Run it\?")
    child.sendline("y")
    expect(r"Step 5/9: Restore into a new instance")
    expect(r"Value for \{restore_name\}: .*\[spywatcher-sandbox-db-restored\]")
    child.sendline("")
    expect(rf"\$ inv db.restore --env sandbox --to {good} --name spywatcher-sandbox-db-restored")
    expect(r"Run it\?")
    child.sendline("y")
    expect(r"restored spywatcher-sandbox-db-restored")
    expect(r"\$ inv db.verify --env sandbox --instance spywatcher-sandbox-db-restored")
    expect(r"\$ inv db.swap --env sandbox --instance spywatcher-sandbox-db-restored")
    expect(r"Run it\?")
    child.sendline("y")
    # asked once: the runbook's yes goes to db.swap as --yes; it does not ask "Go on?" again
    expect(r"\$ inv db.verify --env sandbox --instance spywatcher-sandbox-db")
    assert "Go on?" not in child.before
    expect(r"Step 9/9: Record")
    expect(r"Done\?")
    child.sendline("y")
    output = walk.finish()
    assert child.exitstatus == 0, output[-3000:]

    # The good rows are back on the serving instance; the damaged one is kept, renamed.
    assert sql(sandbox, "SELECT count(*), sum(amount) FROM orders") == [(20, 2100)]
    names = [i.id for i in sandbox.database.instances()]
    assert any(n.startswith("spywatcher-sandbox-db-replaced-") for n in names), names

    done = inv(["runbook.timeline", "--incident", "INC-2041", "--format", "json"], state_dir)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)["records"]
    steps = [(r["step"], r["outcome"]) for r in records if r["event"] == "step"]
    assert steps == [
        (1, "acknowledged"),
        (2, "done"),
        (3, "acknowledged"),
        (4, "done"),
        (5, "done"),
        (6, "done"),
        (7, "done"),
        (8, "done"),
        (9, "acknowledged"),
    ]
    commands = [(r["command"].split()[1], r["exit"]) for r in records if r["event"] == "command"]
    assert commands == [
        ("db.window", 0),
        ("db.snapshot", 0),
        ("db.restore", 0),
        ("db.verify", 0),
        ("db.swap", 0),
        ("db.verify", 0),
    ]
    assert ("to", good) in [(r["name"], r["value"]) for r in records if r["event"] == "input"]
    assert [r["text"] for r in records if r["event"] == "note"] == ["stopped migration job 0042"]
    swap = next(r for r in records if r["event"] == "command" and "db.swap" in r["command"])
    assert (
        "to reverse: inv db.swap --env sandbox --instance spywatcher-sandbox-db-replaced-" in swap["output"]
    )
    md = inv(["runbook.timeline", "--incident", "INC-2041"], state_dir)
    assert "| 5. Restore into a new instance | ok | `inv db.restore --env sandbox --to " + good in md.stdout
