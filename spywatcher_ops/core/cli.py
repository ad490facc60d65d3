"""The task boundary: domain errors become exit codes here and nowhere else.

`ops_task` is invoke's `@task` plus that mapping. Task bodies stay thin:
check arguments -> build the Environment -> call one domain function -> render.

Two kinds of bad input never reach a task body, so they are caught here for every
task at once: an option value invoke cannot convert (`--last abc` for an integer
option raised ValueError inside invoke's parser, a traceback) and an empty string
(`--env ''` silently meant the default). Both are exit 2 with one line.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from invoke import Context, Exit, Task, task
from invoke.parser import Argument

from .errors import OpsError, Refused

if TYPE_CHECKING:  # imported when a task runs: `inv --list` pays only for invoke and the task modules
    from .config import Settings
    from .console import Console


def _check_environ() -> None:
    """INVOKE_OPS_* variables are cast by invoke after the tasks are loaded and before any
    runs; a bad one is exit 2 naming it, here, instead of a traceback from inside invoke."""
    if any(k.startswith("INVOKE_OPS_") and k != "INVOKE_OPS_STATE_DIR" for k in os.environ):
        from .config import check_environ
        from .errors import BadInput

        try:
            check_environ(os.environ)
        except BadInput as exc:
            raise Exit(f"error: {exc}", code=2) from None


_check_environ()

# Set by the runbook engine for a diagnostic step's command: any task not declared
# read-only refuses to run (a second line of defence behind the engine's own check).
READ_ONLY_ENV = "SPYWATCHER_OPS_READ_ONLY"


class CheckedArgument(Argument):
    """invoke's Argument, refusing values it cannot convert and empty strings, with exit 2."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        if isinstance(value, str):
            name = self.name or "?"
            flag = name.upper() if self.positional else f"--{name.replace('_', '-')}"
            if self.positional and value.startswith("-"):
                # invoke hands `inv runbook.show --help` to the positional, not to its help flag
                raise Exit(
                    f"error: {flag} {value!r}: looks like an option, not a value; "
                    "for a task's help type `inv --help TASK`, e.g. inv --help runbook.show",
                    code=2,
                )
            if not value.strip():
                # A positional cannot be left out; its help says what a value looks like.
                hint = f"give a value: {self.help}" if self.positional and self.help else "give a value"
                if not self.positional:
                    hint += ", or leave the option out"
                raise Exit(f"error: {flag} {value!r}: empty; {hint}", code=2)
            if cast and self.kind not in (str, list, bool):
                try:
                    self.kind(value)
                except (TypeError, ValueError):
                    what = "a whole number" if self.kind is int else f"a {self.kind.__name__}"
                    usable = isinstance(self.default, int | float) and self.default > 0
                    example = f", e.g. {flag} {self.default}" if usable else ""
                    raise Exit(f"error: {flag} {value}: not {what}{example}", code=2) from None
        super().set_value(value, cast=cast)

    def __deepcopy__(self, memo: dict[int, Any]) -> CheckedArgument:
        # invoke deep-copies every task's parser context on each run (Parser, to_contexts): the
        # generic deepcopy of ~250 arguments was ~2 ms. The fields are immutable (names, kind, help
        # ...) but for the list a repeatable option collects (raw_value and _value start as one
        # list) and its default: copied here, once each.
        new = object.__new__(type(self))
        memo[id(self)] = new
        copies: dict[int, Any] = {}
        new.__dict__ = {
            k: copies.setdefault(id(v), v.copy()) if isinstance(v, list | dict | set) else v
            for k, v in self.__dict__.items()
        }
        return new


class OpsTask(Task):  # type: ignore[misc]
    """A Task whose arguments are CheckedArguments, and which says whether it changes things."""

    read_only: bool = False

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        for arg in args:
            arg.__class__ = CheckedArgument
            # One meaning per short flag across every task (invoke would hand out -n as --name
            # here and --no-up there): only the common options have one.
            long = arg.names[0]  # as invoke spells it on the command line: dry-run
            arg.names = (long, SHORT_FLAGS[long]) if long in SHORT_FLAGS else (long,)
        return list(args)


# The only short flags, the same in every task that has the option.
SHORT_FLAGS = {"env": "e", "json": "j", "dry-run": "d", "yes": "y", "quiet": "q"}


def changes_things(body: Callable[..., Any]) -> bool:
    """A task's own declaration that it mutates: it takes --dry-run or --yes (plan -> confirm ->
    apply). Every mutating task has both (conventions); read-only tasks have neither."""
    params = inspect.signature(body).parameters
    return "dry_run" in params or "yes" in params


class _Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP during a task (a CI job's timeout, systemd, a closed terminal)."""


def _on_signal(signum: int, _frame: Any) -> None:
    import signal

    raise _Terminated(signal.Signals(signum).name)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP interrupt a task the way Ctrl-C does, so its rollback and its
    journal record run instead of the process vanishing mid-step (a killed restore left its
    server running, with no end record and no word). A signal someone chose to ignore
    (nohup) stays ignored; tasks that install their own handlers (drills, maint.run) still do."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def boundary(body: Callable[..., Any], *, read_only: bool = False) -> Callable[..., Any]:
    @functools.wraps(body)
    def wrapper(c: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            if os.environ.get(READ_ONLY_ENV) and not read_only and not kwargs.get("dry_run"):
                raise Refused(
                    f"this command was started read-only ({READ_ONLY_ENV}=1: a runbook's diagnostic "
                    f"step) and its task ({body.__name__.rstrip('_')}) changes things; nothing was done"
                )
            with _terminate_as_interrupt():
                return body(c, *args, **kwargs)
        except OpsError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt as exc:
            # Tasks that roll back on an interrupt say so themselves (RolledBack, exit 4); an
            # interrupt that reaches this point was not rolled back, so claiming it would be false.
            by = f" by {exc}" if isinstance(exc, _Terminated) else ""
            if read_only:
                raise Exit(f"interrupted{by}; this task changes nothing", code=1) from None
            raise Exit(
                f"interrupted{by} part-way; nothing was rolled back: what this task did is in the audit "
                "journal (<state_dir>/journal/<env>.jsonl); run it again or check before going on",
                code=1,
            ) from None

    return wrapper


def ops_task(*args: Any, read_only: bool | None = None, **kwargs: Any) -> Any:
    """Like invoke's @task (same arguments), with the error boundary applied.

    `read_only` declares whether the task changes anything; by default it is derived from
    the task itself (read-only unless it takes --dry-run or --yes). The runbook engine
    runs only read-only tasks (or --dry-run) in diagnostic steps."""

    def decorate(body: Callable[..., Any]) -> Any:
        declared = not changes_things(body) if read_only is None else read_only
        made = task(*args, klass=OpsTask, **kwargs)(boundary(body, read_only=declared))
        made.read_only = declared
        return made

    if len(args) == 1 and callable(args[0]) and not kwargs and read_only is None:
        body, args = args[0], ()
        return decorate(body)
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
