"""Running `inv` against a sandbox state folder, interrupting it at a progress
line, and reading what it left: shared by the sandbox's fail-safe e2e tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from support.paths import ROOT


def inv(state_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    return subprocess.run(["inv", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def inv_until(
    state_dir: Path, args: list[str], marker: str, sig: int, timeout: float = 180
) -> dict[str, Any]:
    """Run `inv ARGS`, send `sig` once a progress line containing `marker` appears on stderr."""
    env = {**os.environ, "INVOKE_OPS_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        ["inv", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen: list[str] = []
    sent = False
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            proc.send_signal(sig)
            sent = True
            break
        if time.monotonic() > deadline:
            break
    out, err = proc.communicate(timeout=timeout)
    return {"code": proc.returncode, "stdout": out, "stderr": "".join(seen) + err, "sent": sent}


def state_of(state_dir: Path) -> dict[str, Any]:
    return dict(json.loads((state_dir / "sandbox" / "state.json").read_text()))


def connect(env: Any, instance: str | None = None) -> Any:
    import psycopg

    info = env.database.admin_connection(instance)
    return psycopg.connect(**info.kwargs(), connect_timeout=5, autocommit=True)
