"""One wrapper for every external command: allowed exit codes, captured output,
an optional user to run as (PostgreSQL refuses root), a timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import CommandFailed, MissingTool, OperationFailed


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def require_binary(name: str, *, search: Sequence[str] = (), package: str) -> str:
    """Full path of `name` from `search` folders or PATH, or a one-line error naming the apt package."""
    for folder in search:
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    raise MissingTool(f"`{name}` not found", hint=f"install it with: apt-get install {package}")


def run(
    argv: Sequence[str],
    *,
    ok_codes: Sequence[int] = (0,),
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = 300,
    input: str | None = None,
) -> Completed:
    """Run a command to completion; raise CommandFailed on a code not in ok_codes."""
    argv = [str(a) for a in argv]
    group: int | None = None
    extra_groups: list[int] | None = None
    if user is not None:
        import pwd

        # user= alone keeps our groups (root's): take the user's primary group and drop the rest
        group = pwd.getpwnam(user).pw_gid
        if os.geteuid() == 0:
            extra_groups = []  # setgroups() needs root
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            user=user,
            group=group,
            extra_groups=extra_groups,
            input=input,
        )
    except FileNotFoundError as exc:
        raise OperationFailed(f"cannot run `{argv[0]}`: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise OperationFailed(f"`{' '.join(argv[:3])}` did not finish within {timeout} s") from exc
    done = Completed(argv, proc.returncode, proc.stdout, proc.stderr)
    if proc.returncode not in ok_codes:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return done
