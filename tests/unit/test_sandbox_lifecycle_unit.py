"""sandbox.up/status/down on real processes: idempotence, repair, stray processes,
and the faults a user meets (busy port, missing binaries, a broken state folder)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from support.sandbox import sandbox_environment

from spywatcher_ops.core.errors import MissingTool, NotReady


def test_missing_binaries_name_the_package(tmp_path):
    env = sandbox_environment(tmp_path / "state", pg_bin=str(tmp_path / "no-postgres-here"))
    with pytest.raises(MissingTool) as caught:
        env.database.box.up()
    message = str(caught.value)
    assert "apt-get install postgresql-15" in message and "\n" not in message
    assert caught.value.exit_code == 3
    assert not (tmp_path / "state" / "sandbox" / "state.json").exists()


def test_a_state_folder_owned_by_someone_else_is_a_clear_error(tmp_path):
    env = sandbox_environment(tmp_path / "state")
    root = env.database.box.root
    root.mkdir(parents=True)
    os.chown(root, 65534, 65534)  # nobody
    with pytest.raises(NotReady) as caught:
        env.database.box.up()
    assert "owned by uid 65534" in str(caught.value)
    assert caught.value.hint and "chown" in caught.value.hint


def test_a_damaged_state_file_is_a_clear_error_with_a_repair_hint(tmp_path):
    env = sandbox_environment(tmp_path / "state")
    root = env.database.box.root
    root.mkdir(parents=True)
    (root / "state.json").write_text('{"version": 1, "nod')
    with pytest.raises(NotReady) as caught:
        env.database.box.up()
    assert "damaged" in str(caught.value) and "sandbox.reset" in (caught.value.hint or "")


def test_leftover_postgres_data_without_state_is_a_clear_error(tmp_path):
    from spywatcher_ops.backends.sandbox.postgres.provision import default_pg_base

    env = sandbox_environment(tmp_path / "state")
    box = env.database.box
    leftover = box.choose_pg_base()
    assert leftover in (box.root / "postgres", default_pg_base(box.root))
    (leftover / "nodes" / "n1").mkdir(parents=True)
    from spywatcher_ops.backends.sandbox.paths import mark

    mark(leftover)  # ours (a sandbox whose state file was lost); someone else's: see the purge test
    try:
        with pytest.raises(NotReady) as caught:
            box.up()
        assert "half-deleted" in str(caught.value) and "sandbox.reset" in (caught.value.hint or "")
        assert not box.statefile.exists()
    finally:
        shutil.rmtree(leftover)


def test_purge_deletes_only_folders_the_toolkit_created(tmp_path):
    from spywatcher_ops.backends.sandbox import lifecycle
    from spywatcher_ops.backends.sandbox.postgres.provision import default_pg_base

    env = sandbox_environment(tmp_path / "state")
    root = env.database.box.root
    foreign = [root / "redis", root / "postgres", default_pg_base(root)]
    try:
        for folder in foreign:  # no state file, no marker: someone else's folders at our paths
            folder.mkdir(parents=True)
            (folder / "precious.txt").write_text("not yours")
        assert all(str(f) in json.dumps(lifecycle.plan_down(env, purge=True).notes) for f in foreign)
        result = lifecycle.down(env, purge=True)
        for folder in foreign:
            assert (folder / "precious.txt").read_text() == "not yours"
            assert any(
                str(folder) in note and "not created by spywatcher-ops" in note for note in result["kept"]
            )
        assert all("\n" not in note for note in result["kept"])
        # and up refuses to build into them rather than adopt someone else's files
        with pytest.raises(NotReady) as caught:
            env.database.box.up()
        assert "not created by spywatcher-ops" in str(caught.value)
    finally:
        for folder in foreign:
            shutil.rmtree(folder, ignore_errors=True)


def test_down_and_reset_on_a_folder_owned_by_someone_else_are_clear_errors(tmp_path):
    from spywatcher_ops.backends.sandbox import lifecycle

    env = sandbox_environment(tmp_path / "state")
    root = env.database.box.root
    (root / "postgres").mkdir(parents=True)
    (root / "postgres" / "theirs.txt").write_text("keep")
    os.chown(root, 65534, 65534)  # nobody
    for action in (
        lambda: lifecycle.down(env, purge=True),
        lambda: lifecycle.reset(env),
        lambda: lifecycle.down(env, purge=False),
        lambda: env.database.describe(),
    ):
        with pytest.raises(NotReady) as caught:
            action()
        assert "owned by uid 65534" in str(caught.value)
        assert caught.value.hint and "chown" in caught.value.hint
    assert (root / "postgres" / "theirs.txt").read_text() == "keep"
