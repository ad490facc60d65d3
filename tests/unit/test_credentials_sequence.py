"""The one rotation sequence of recovery/credentials.py (stage -> set -> verify a login -> promote,
and its undo), driven through a Credentials port held in memory: the cases the real backends
(tests/integration/test_db_credentials*.py) cannot reach on demand - an interrupt while the
database takes the new password, a failure after the promotion went through, an undo that fails
too. The password "database" here is the port's own state; the login check reads it."""

from __future__ import annotations

from typing import Any

import pytest
from support.clock import FakeClock

from spywatcher_ops.core import config as cfg
from spywatcher_ops.core.environment import Environment
from spywatcher_ops.core.errors import OperationFailed, RolledBack
from spywatcher_ops.core.journal import read
from spywatcher_ops.core.plan import Plan, Step
from spywatcher_ops.core.ports import ConnectionInfo, Progress, Rotation
from spywatcher_ops.recovery.credentials import rotate

OLD, NEW = "old-Secret-1", "new-Secret-2"


class MemoryCredentials:
    """A secret store (current, pending) and a database password, with faults on request."""

    def __init__(self) -> None:
        self.current, self.pending, self.on_database = OLD, None, OLD
        self.fail_set: list[BaseException] = []  # raised by set_password, in turn, after it took effect
        self.fail_promote: BaseException | None = None  # raised by promote after it took effect

    def plan_rotation(self) -> tuple[Plan, Rotation]:
        plan = Plan("rotate in memory")
        plan.add(Step("memory", "stage", {"password": "****"}))
        return plan, Rotation(
            secret="memory",
            user="app",
            method="alter-role",
            old_password=OLD,
            current="current in memory",
            stage_step="stage_in_memory",
            if_stuck="set it by hand",
        )

    def stage(self, rotation: Rotation, new: str) -> None:
        self.pending = new

    def set_password(self, rotation: Rotation, *, old: str, new: str, progress: Progress) -> None:
        self.on_database = new
        if self.fail_set:
            raise self.fail_set.pop(0)

    def promote(self, rotation: Rotation) -> None:
        self.current = self.pending or self.current
        if self.fail_promote:
            raise self.fail_promote

    def promoted(self, rotation: Rotation) -> bool:
        return self.current != OLD

    def unstage(self, rotation: Rotation) -> bool:
        had, self.pending = self.pending is not None, None
        return had

    def start_provider_rotation(self, rotation: Rotation) -> None:
        raise AssertionError("not configured")

    def provider_rotated(self, rotation: Rotation, progress: Progress) -> tuple[str, str, str]:
        raise AssertionError("not configured")


class Db:
    def connection(self) -> ConnectionInfo:
        return ConnectionInfo("127.0.0.1", "5432", "app", "app")


class Parts:
    def __init__(self, store: MemoryCredentials, env: list[Environment]) -> None:
        self.store, self.env = store, env

    def credentials(self) -> MemoryCredentials:
        return self.store

    def database(self) -> Db:
        return Db()

    def identity(self) -> dict[str, str]:
        return {}

    def lock(self) -> Any:
        return self.env[0].file_lock()


@pytest.fixture
def world(ops_config: Any) -> tuple[Environment, MemoryCredentials]:
    settings = cfg.load(ops_config)
    store, holder = MemoryCredentials(), []  # type: ignore[var-annotated]
    env = Environment(settings, settings.env("sandbox"), FakeClock(), _parts=Parts(store, holder))  # type: ignore[arg-type]
    holder.append(env)
    return env, store


def run(env: Environment, store: MemoryCredentials, *, refuse: str | None = None) -> Any:
    def login(info: ConnectionInfo, user: str, password: str) -> str | None:
        if password == refuse:
            return "refused (simulated pooler)"
        return None if password == store.on_database else "password authentication failed"

    return rotate(env, approve=lambda plan: True, password=lambda: NEW, login=login)


def steps(env: Environment) -> list[tuple[str, str]]:
    return [(r["step"], r["status"]) for r in read(env.journal.path) if r.get("event") == "step"]


def test_stage_set_verify_promote_then_nothing_pending(world):
    env, store = world
    outcome = run(env, store)
    assert outcome.applied and outcome.verified
    assert (store.current, store.pending, store.on_database) == (NEW, None, NEW)
    assert steps(env) == [
        ("stage_in_memory", "ok"),
        ("set_password", "started"),
        ("set_password", "ok"),
        ("login", "ok"),
        ("promote", "ok"),
        ("unstage_pending", "ok"),
    ]


def test_a_new_password_that_does_not_log_in_is_undone(world):
    env, store = world
    with pytest.raises(RolledBack) as caught:
        run(env, store, refuse=NEW)
    assert "did not log in" in str(caught.value) and "stays current in memory" in str(caught.value)
    assert (store.current, store.pending, store.on_database) == (OLD, None, OLD)
    assert ("rollback", "ok") in steps(env) and ("promote", "ok") not in steps(env)


def test_an_interrupt_while_the_database_takes_it_is_undone(world):
    env, store = world
    store.fail_set = [KeyboardInterrupt()]
    with pytest.raises(RolledBack) as caught:
        run(env, store)
    assert str(caught.value).startswith("interrupted; the old password is set again")
    assert (store.current, store.pending, store.on_database) == (OLD, None, OLD)


def test_a_failure_after_the_promotion_keeps_the_new_password(world):
    env, store = world
    store.fail_promote = KeyboardInterrupt()
    outcome = run(env, store)  # the promotion went through: nothing is undone, nobody locked out
    assert outcome.applied and (store.current, store.on_database) == (NEW, NEW)
    promote = [r for r in read(env.journal.path) if r.get("step") == "promote"]
    assert promote[-1]["status"] == "ok" and "done, then" in promote[-1]["note"]


def test_an_undo_that_fails_too_says_what_to_do(world):
    env, store = world
    store.fail_set = [RuntimeError("connection reset"), RuntimeError("still down")]
    with pytest.raises(OperationFailed) as caught:
        run(env, store)
    message = str(caught.value)
    assert "could not be undone: setting the old password again failed: still down" in message
    assert message.rstrip().endswith("set it by hand")
    assert ("rollback", "failed") in steps(env)
