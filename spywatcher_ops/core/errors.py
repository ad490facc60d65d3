"""One exception tree; each class carries the exit code the CLI boundary uses.

Exit codes (docs/design.md): 0 success / targets met; 1 ran but a target or
verification failed; 2 bad input or refused by a guard; 3 environment not
ready (preflight failed); 4 operation failed and was rolled back.
"""

from __future__ import annotations


class OpsError(Exception):
    """Base of every error the toolkit raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class BadInput(OpsError):
    """An argument or a configuration value is not acceptable. Nothing was done."""

    exit_code = 2


class Refused(OpsError):
    """A guard said no (production, drills not allowed, confirmation declined)."""

    exit_code = 2


class Unsupported(Refused):
    """The environment has no such part (e.g. the sandbox has no cluster)."""


class NotReady(OpsError):
    """Preflight failed: the environment is not in a state to do this (lock held, standby down...)."""

    exit_code = 3


class Locked(NotReady):
    """Another mutating operation holds the environment's lock."""


class DeadHolder(Locked):
    """The lock's holder is provably gone (a killed process on this host): the next mutating
    task takes the lock over; a read-only check only says so."""


class LockLost(NotReady):
    """The environment lock could not be kept (renewal failed until it was about to expire,
    or another holder took it): the operation stopped at its next safe point."""


class MissingTool(NotReady):
    """A binary the operation needs is not installed."""


class OperationFailed(OpsError):
    """The operation ran and failed; what it left is described in the message."""

    exit_code = 1


class TimedOut(OperationFailed):
    """A wait on provider state passed its deadline."""


class VerificationFailed(OperationFailed):
    """The operation finished but the check afterwards did not pass."""


class TargetMissed(OpsError):
    """A drill ran to the end but an RTO/RPO target was missed."""

    exit_code = 1


class RolledBack(OpsError):
    """The operation failed or was aborted, and its rollback ran."""

    exit_code = 4


class CommandFailed(OperationFailed):
    """An external command exited with a code it is not allowed to."""

    def __init__(self, argv: list[str], code: int, output: str) -> None:
        tail = output.strip().splitlines()[-5:]
        super().__init__(
            f"`{' '.join(argv[:3])}{' ...' if len(argv) > 3 else ''}` exited {code}: "
            + (" | ".join(tail) if tail else "no output")
        )
        self.argv = argv
        self.code = code
        self.output = output
