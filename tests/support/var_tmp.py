"""Tests leave no /var/tmp/spywatcher-ops-* folders behind.

As root, the sandbox keeps PostgreSQL's and Redis's folders in /var/tmp, named by a hash
of the sandbox's root (backends/sandbox/postgres/provision.py default_pg_base,
backends/sandbox/redis/servers.py default_base), and a test that stops without `sandbox.down --purge` (or plants such a
folder on purpose) would leave them there for good; with pytest's tmp paths repeating
across sessions, a later run could even find one as its own. These finalizers delete a
folder only when its name is the hash of a folder inside this test's (or this session's)
tmp folder and it did not exist when the test (session) started: nothing a test did not
create is touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

VAR_TMP = Path("/var/tmp")
PREFIX = "spywatcher-ops-"
DEPTH = 6  # tmp/<test>/state/sandbox/redis is 4 levels: roots are never deeper than this


def present() -> set[str]:
    try:
        return {p.name for p in VAR_TMP.iterdir() if p.name.startswith(PREFIX)}
    except OSError:
        return set()


def names_for(tree: Path) -> set[str]:
    """The /var/tmp names a sandbox rooted anywhere in `tree` would use (PostgreSQL, Redis)."""
    names: set[str] = set()
    top = len(tree.parts)
    for folder, dirs, _ in os.walk(tree):
        path = Path(folder)
        if len(path.parts) - top >= DEPTH:
            dirs.clear()
        # a sandbox refused before it made its root (a planted folder) names it all the same
        for root in (path, path / "sandbox", path / "redis", path / "sandbox" / "redis"):
            digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
            names.update({f"{PREFIX}{digest}", f"{PREFIX}{digest}-redis"})
    return names


def remove_made(tree: Path, before: set[str]) -> list[Path]:
    """Delete the folders of sandboxes rooted in `tree` that appeared since `before`."""
    removed = []
    for name in sorted((present() - before) & names_for(tree)):
        folder = VAR_TMP / name
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder, ignore_errors=True)  # links inside are removed, never followed
        removed.append(folder)
    return removed


@pytest.fixture(autouse=True)
def _var_tmp_of_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    if os.geteuid() != 0 or "tmp_path" not in request.fixturenames:
        yield  # not root: the sandbox keeps its folders under its root; no tmp_path: no root
        return
    tmp_path = request.getfixturevalue("tmp_path")  # so it is torn down after this, not before
    before = present()
    yield
    remove_made(tmp_path, before)


@pytest.fixture(scope="session", autouse=True)
def _var_tmp_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # module and session fixtures (pg_pair, sandbox_env, cache_state_dir) root theirs in mktemp folders
    if os.geteuid() != 0:
        yield
        return
    before = present()
    yield
    remove_made(tmp_path_factory.getbasetemp(), before)
