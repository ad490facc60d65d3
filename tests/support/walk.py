"""`inv ARGS` under a pseudo-terminal, answered as a responder would type, with the transcript
kept for the assertions (the runbook walks of the e2e tier)."""

from __future__ import annotations

import sys

import pexpect

from support.paths import ROOT


class Walk:
    def __init__(self, args: list[str], env: dict[str, str], timeout: float = 120) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "invoke", *args],
            cwd=str(ROOT),
            env=env,
            encoding="utf-8",
            timeout=timeout,
            dimensions=(60, 220),
        )
        self.transcript: list[str] = []

    def expect(self, pattern: str) -> None:
        self.child.expect(pattern)
        self.transcript.append(self.child.before + self.child.after)

    def finish(self) -> str:
        """Wait for the end; the whole transcript (the exit code is self.child.exitstatus)."""
        self.child.expect(pexpect.EOF)
        self.transcript.append(self.child.before)
        self.child.close()
        return "".join(self.transcript)
