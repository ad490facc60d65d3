"""The unit tier: no real process and no real waiting (a test that sleeps, polls
or waits on a fake server's clock belongs in tests/integration: tests/README.md).
PostgreSQL, Redis, sshd, terraform and the `inv` command are refused here (an
autouse guard around subprocess.Popen), so this tier needs no Debian package,
only the venv. moto (in-process or its ThreadedMotoServer), the in-test
Kubernetes API server and loopback fakes are Python in this process and are
fine when the test does not wait on them in real time (FakeClock).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

# What a unit test may not start: the servers and tools of the integration tier
# (apt packages, or the terraform binary) and the inv command of the e2e tier.
FORBIDDEN = {
    "postgres",
    "postmaster",
    "initdb",
    "psql",
    "redis-server",
    "redis-sentinel",
    "redis-cli",
    "sshd",
    "terraform",
    "inv",
    "invoke",
}


def forbidden(args: Any) -> str | None:
    """The forbidden program an argv would start (pg_* tools included), or None."""
    argv = str(args).split() if isinstance(args, (str, bytes, os.PathLike)) else [str(a) for a in args]
    for i, arg in enumerate(argv[:-1]):  # a shell script (`sh -c '... exec sshd ...'`) names it inside
        if arg == "-c" and os.path.basename(argv[i - 1] if i else "") in ("sh", "bash", "dash"):
            argv += re.split(r"[\s;&|()]+", argv[i + 1])
    names = [os.path.basename(a) for a in argv]
    for i, name in enumerate(names):
        if name in FORBIDDEN or name.startswith("pg_"):
            return name
        if name == "-m" and names[i + 1 : i + 2] == ["invoke"]:
            return "python -m invoke"
    return None


@pytest.fixture(autouse=True)
def no_real_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a unit test that starts a real server, terraform or `inv` (also from a thread)."""
    started: list[str] = []
    real_init = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        name = forbidden(args)
        if name:
            started.append(name)
            pytest.fail(_message(name), pytrace=False)
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    yield
    if started:
        pytest.fail(_message(started[0]), pytrace=False)


def _message(name: str) -> str:
    return (
        f"tests/unit may not start `{name}`: a test that needs a real PostgreSQL, Redis, sshd or "
        "terraform belongs in tests/integration, one that runs inv in tests/e2e (tests/README.md)"
    )
