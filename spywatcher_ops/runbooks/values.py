"""Values that go into a runbook's commands: each checked against its kind, each one argument.

A value typed at 3 a.m. (or passed as `--var`) never reaches a shell or invoke's
parser as text to split: the command's template is split into words first, the
placeholders are filled in word by word, and the result is an argv list. On top
of that, every value must match the kind its input declares (front matter
`inputs: {name: {kind: ...}}`, default `identifier`), so a value can neither be
two words nor look like an option.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping

from ..core.errors import BadInput
from ..core.timeparse import TIME_HELP
from .model import PLACEHOLDER

DEFAULT_KIND = "identifier"

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,254}$")
_ENVIRONMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_INTEGER = re.compile(r"^[0-9]{1,9}$")
_DURATION = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d)?$")
_ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})$", re.I
)


def _time(value: str) -> bool:
    if value.lower() == "latest":
        return True
    if not _ISO_TIME.match(value):
        return False
    from datetime import datetime

    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


# kind -> (test, what is accepted)
KINDS: dict[str, tuple[Callable[[str], bool], str]] = {
    "identifier": (
        lambda v: bool(_IDENTIFIER.match(v)) and ".." not in v,
        "one word of letters, digits and . _ : / - (starting with a letter or digit), "
        "e.g. spywatcher-sandbox-db-restored",
    ),
    "time": (_time, TIME_HELP.removeprefix("use ")),
    "environment": (
        lambda v: bool(_ENVIRONMENT.match(v)),
        "an environment name from invoke.yaml, e.g. staging",
    ),
    "integer": (lambda v: bool(_INTEGER.match(v)), "a whole number, e.g. 3"),
    "duration": (lambda v: bool(_DURATION.match(v)), "a number with ms, s, m, h or d, e.g. 10m"),
}

# The kinds of the values the engine fills in itself.
BUILTIN_KINDS = {
    "env": "environment",
    "incident": "identifier",
    "project": "identifier",
    "region": "identifier",
    "db_instance": "identifier",
    "db_secret": "identifier",
}


def check_value(name: str, value: str, kind: str, *, source: str = "") -> str:
    """`value` if it is a valid `kind`, else BadInput naming the value and what is accepted."""
    test, accepted = KINDS.get(kind, KINDS[DEFAULT_KIND])
    if not test(value):
        where = source or f"{{{name}}}"
        shown = repr(value) if (not value or value != value.strip() or " " in value) else value
        raise BadInput(f"{where}={shown}: not a valid {kind} for {{{name}}}; use {accepted}")
    return value


def words(command: str) -> list[str]:
    """A command template split into words, placeholders still in place (never split again)."""
    return shlex.split(command)


def argv_for(command: str, values: Mapping[str, str], kinds: Mapping[str, str]) -> list[str]:
    """The exact argv of a runbook command: each template word filled in on its own, each
    value checked against its kind first. A value is one argument whatever it holds."""
    out: list[str] = []
    for word in words(command):

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                return match.group(0)
            return check_value(name, values[name], kinds.get(name, DEFAULT_KIND))

        out.append(PLACEHOLDER.sub(fill, word))
    return out


def display(argv: Iterable[str]) -> str:
    """The argv as a responder would type it (quoted where a word needs it)."""
    return shlex.join(list(argv))
