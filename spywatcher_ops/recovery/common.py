"""Small pieces every recovery operation shares."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ..core.clock import utc_stamp
from ..core.errors import BadInput
from ..core.plan import Plan
from ..core.ports import Instance
from ..core.timeparse import check_db_identifier

if TYPE_CHECKING:
    from ..core.environment import Environment

# Shows the plan and says whether to apply it (core.guards.approve, bound by the task).
Approver = Callable[[Plan], bool]

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d{1,2}$")


def stamped_name(base: str, word: str, now: datetime) -> str:
    """`{base}-{word}-{stamp}` in lowercase (RDS lowercases identifiers), at most 63 characters."""
    suffix = f"-{word}-{utc_stamp(now)}".lower()
    return (base[: 63 - len(suffix)].rstrip("-") + suffix).lower()


def free_name(base: str, word: str, now: datetime, taken: set[str]) -> str:
    """`stamped_name`, with -2, -3... when that name is taken (two runs in the same second)."""
    name = stamped_name(base, word, now)
    n = 1
    candidate = name
    while candidate in taken:
        n += 1
        candidate = f"{name[: 63 - len(str(n)) - 1]}-{n}"
    return candidate


def check_region(value: str, *, flag: str) -> str:
    if not _REGION.match(value):
        raise BadInput(f"{flag} {value}: not an AWS region name; e.g. us-west-2")
    return value


def known_instance(environment: Environment, value: str | None, *, flag: str) -> Instance:
    """The instance named by `flag`, or BadInput listing the ones there are."""
    if not value:
        raise BadInput(
            f"{flag} is required: the instance to work on, e.g. {flag} spywatcher-staging-db-restored-..."
        )
    name = check_db_identifier(value, flag=flag)
    instances = environment.database.instances()
    for instance in instances:
        if instance.id.lower() == name:
            return instance
    names = ", ".join(sorted(i.id for i in instances)[:10]) or "none"
    raise BadInput(f"{flag} {value}: no such instance; instances: {names}")
