"""The task boundary: domain errors become exit codes here and nowhere else.

`ops_task` is invoke's `@task` plus that mapping. Task bodies stay thin:
check arguments -> build the Environment -> call one domain function -> render.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoke import Context, Exit, task

from .errors import OpsError

if TYPE_CHECKING:  # imported when a task runs: `inv --list` pays only for invoke and the task modules
    from .config import Settings
    from .console import Console


def boundary(body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(body)
    def wrapper(c: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return body(c, *args, **kwargs)
        except OpsError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted; what was started has been rolled back or is in the journal", code=4) from None

    return wrapper


def ops_task(*args: Any, **kwargs: Any) -> Any:
    """Like invoke's @task (same arguments), with the error boundary applied."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return task(boundary(args[0]))

    def decorate(body: Callable[..., Any]) -> Any:
        return task(*args, **kwargs)(boundary(body))

    return decorate


def check_timeout(timeout: int) -> None:
    """--timeout of a task that waits for a change to finish: a 0 s wait would fail after the change."""
    if timeout <= 0:
        from .errors import BadInput

        raise BadInput(f"--timeout {timeout}: must be a positive number of seconds, e.g. 300")


def settings(c: Context) -> Settings:
    from .config import load

    return load(c.config)


def console(json: bool = False) -> Console:
    from .console import Console

    return Console(json_mode=json)


ENV_HELP = "environment name from invoke.yaml, e.g. staging (default: sandbox)"
JSON_HELP = "print machine-readable JSON on stdout"
DRY_RUN_HELP = "show the exact provider calls and make none"
YES_HELP = "answer yes to confirmations (production also needs SPYWATCHER_OPS_CONFIRM=<env>)"
