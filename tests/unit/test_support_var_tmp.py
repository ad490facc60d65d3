"""The finalizers of tests/support/var_tmp.py delete only the /var/tmp folders a test made."""

from __future__ import annotations

import hashlib
from pathlib import Path

from support.var_tmp import VAR_TMP, names_for, present, remove_made


def _name(root: Path, suffix: str = "") -> Path:
    return VAR_TMP / f"spywatcher-ops-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]}{suffix}"


def test_only_the_folders_of_this_tree_made_since_are_removed(tmp_path):
    state = tmp_path / "state"
    (state / "sandbox").mkdir(parents=True)
    older = _name(state / "sandbox", "-redis")  # there before: not this test's to delete
    older.mkdir()
    try:
        before = present()
        made_pg = _name(state / "sandbox")
        made_redis = _name(state / "sandbox" / "redis", "-redis")  # its root never made (refused)
        elsewhere = _name(tmp_path.parent / "someone-else")  # not named from this tree
        for folder in (made_pg, made_redis, elsewhere):
            folder.mkdir()
        (made_pg / "link").symlink_to(tmp_path / "victim")
        (tmp_path / "victim").write_text("precious\n")
        removed = remove_made(tmp_path, before)
        assert sorted(removed) == sorted([made_pg, made_redis])
        assert not made_pg.exists() and not made_redis.exists()
        assert older.is_dir() and elsewhere.is_dir()
        assert (tmp_path / "victim").read_text() == "precious\n"  # links removed, never followed
        assert made_pg.name in names_for(tmp_path)
    finally:
        for folder in (older, _name(tmp_path.parent / "someone-else")):
            if folder.is_dir():
                folder.rmdir()
