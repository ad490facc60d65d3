"""Imported by the root tasks.py for its side effect: invoke's own command-line parse errors
go through the project's boundary (exit 2, one line starting `error:` naming the value and
what is accepted) instead of invoke's bare message and exit 1.

Why a hook: users type `inv`, invoke's entry point, so no console script of ours runs first.
The first code of ours that runs is tasks.py, imported while invoke's Program.run loads the
collection (parse_collection); the task arguments are parsed after that (parse_tasks) and an
unknown `inv --help TASK` is refused later still (parse_cleanup). Wrapping those two public
Program methods (documented since invoke 1.0) turns their ParseError into invoke's Exit, which
Program.run already prints and exits with (CheckedArgument in cli.py raises Exit the same way).
Making positionals optional in task signatures and checking them in the boundary would fix only
the missing-positional case (invoke treats every positional as required, whatever its default).

What it relies on, checked against invoke 2.2.1 (tests/unit/test_core_parse_errors.py fails
loudly when any of it changes): Program.parse_tasks and Program.parse_cleanup exist and are
called by Program.run after the collection is loaded; Program.parser holds the task contexts;
ParseError carries the parser context (.context) and the messages below. A message that
matches none of them still becomes `error: <invoke's message>`, exit 2.
Not covered: a core option missing its value (`inv -f`), parsed before tasks.py is loaded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from invoke.exceptions import Exit, ParseError
from invoke.program import Program

# invoke's messages; patterns, not compiled ones: compiling costs ~1 ms of every `inv` at import
_UNKNOWN = r"No idea what '(.*)' is!$"
_MISSING = r"'(.+)' did not receive required positional arguments: (.+)$"
_NO_VALUE = r"Flag <\w+: ([\w-]+).*> needed value and was not given one!$"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _near(word: str, choices: Iterable[str]) -> str:
    import difflib  # only on this error path

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def message(exc: ParseError, tasks: Iterable[str]) -> str:
    """The one line for invoke's ParseError `exc`; `tasks`: the task names the parser knew."""
    text = str(exc)
    context = exc.context
    task = getattr(context, "name", None)  # None: before any task name (invoke's own options)
    helps = f"inv --help {task}" if task else "inv --help"
    if m := re.match(_UNKNOWN, text):
        word = m.group(1)
        if word.startswith("-") and context is not None and task:
            flags = sorted(_flag(a.name) for a in context.args.values() if not a.positional)
            return (
                f"{word}: not an option of {task}; {_near(word.split('=')[0], flags)}"
                f"its options: {', '.join(flags) or 'none'} (details: {helps})"
            )
        if word.startswith("-"):
            return f"{word}: not an option of inv; {_near(word, ['--list', '--help'])}see inv --help"
        after = f"{task} takes no more values and " if task else ""
        return f"{word!r}: {after}no task has that name; {_near(word, tasks)}list the tasks with inv --list"
    if m := re.match(_MISSING, text):
        names = [n.strip("'") for n in m.group(2).split(", ")]
        args = context.args if context is not None else {}
        said = "; ".join(f"{n.upper()}: {args[n].help}" for n in names if n in args and args[n].help)
        said = f" ({said})" if said else ""
        return f"{m.group(1)}: missing {', '.join(n.upper() for n in names)}{said}; see {helps}"
    if m := re.match(_NO_VALUE, text):
        name = m.group(1)
        arg = context.args.get(name) if context is not None else None
        what = f": {arg.help}" if arg is not None and arg.help else ""
        return f"{_flag(name)}: needs a value{what}; see {helps}"
    return f"{text}; see {helps}"


def _as_exit(method: Callable[[Program], None]) -> Callable[[Program], None]:
    @functools.wraps(method)
    def wrapper(self: Program) -> None:
        try:
            method(self)
        except ParseError as exc:
            parser = getattr(self, "parser", None)
            tasks = list(getattr(parser, "contexts", {}))
            raise Exit(f"error: {message(exc, tasks)}", code=2) from None

    wrapper.spywatcher_ops_parse_errors = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Wrap Program.parse_tasks and Program.parse_cleanup once; a missing one is left alone."""
    for name in ("parse_tasks", "parse_cleanup"):
        method: Any = getattr(Program, name, None)
        if callable(method) and not getattr(method, "spywatcher_ops_parse_errors", False):
            setattr(Program, name, _as_exit(method))


install()
