"""A second local user cannot plant the sandbox's folders in /var/tmp (audit of issue 10, item 6).

As root the sandbox puts PostgreSQL's and Redis's folders under /var/tmp with a predictable
name (a hash of the state folder). Another user could make that folder first with links in
it: before, `inv sandbox.up` (as root) wrote its marker through the planted link and chowned
the target to postgres (any file on the machine: /etc/passwd). Now such a folder is refused
(exit 3) and nothing is written through it. Through the real `inv`.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT

pytestmark = [pytest.mark.real, pytest.mark.e2e]


def inv(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    return subprocess.run(["inv", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("part", ["postgres", "redis"])
def test_a_planted_var_tmp_folder_is_refused_and_nothing_is_written_through_it(tmp_path, part):
    from spywatcher_ops.backends.sandbox.postgres.provision import default_pg_base
    from spywatcher_ops.backends.sandbox.redis.servers import default_base

    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    sandbox = state_dir / "sandbox"
    planted = default_pg_base(sandbox) if part == "postgres" else default_base(sandbox / "redis")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    if os.geteuid() != 0:
        # not root: the sandbox keeps its folders under the state folder; /var/tmp is not used
        done = inv(state_dir, "sandbox.up", "--dry-run")
        assert done.returncode == 0 and "/var/tmp" not in done.stdout
        return
    other = pwd.getpwnam("nobody")
    planted.mkdir(mode=0o777)
    try:
        (planted / ".created-by-spywatcher-ops").symlink_to(victim)
        if part == "redis":  # a node's folder, which up fills and chowns to the server user
            (planted / "redis-1").symlink_to(tmp_path)
        os.chmod(planted, 0o777)
        os.lchown(planted, other.pw_uid, other.pw_gid)
        done = inv(state_dir, "sandbox.up")
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"{planted} exists and belongs to uid {other.pw_uid}" in done.stderr, done.stderr
        assert victim.read_text() == "precious\n"
        st = victim.stat()
        assert (st.st_uid, st.st_gid) == (0, 0)
        assert os.stat(tmp_path).st_uid == 0
    finally:
        down = inv(state_dir, "sandbox.down", "--purge", "--yes")
        # the planted folder goes whatever down said (an assert before this left it, 0777 and nobody's)
        for entry in planted.iterdir() if planted.is_dir() and not planted.is_symlink() else []:
            entry.unlink()
        if planted.is_dir():
            planted.rmdir()
        assert down.returncode == 0, down.stderr
