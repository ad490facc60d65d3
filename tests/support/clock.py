"""The one test clock: wall time fixed at `at` (now by default) plus what was
slept; monotonic time `t` advancing by what is slept; `sleep` costs nothing.
Tests may also move `t` by hand (a token's age, a timeout's deadline).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime.now(UTC)
        self.t = 1000.0
        self.slept = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.at + timedelta(seconds=self.slept)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        self.slept += seconds
