"""The table of backends: which package implements the parts of each kind of
environment. This is the composition root: task modules build their
Environment here (`environment(c, name)`), and core, which never imports a
backend, receives the table from it (`core.environment.build(..., backends=)`).
tests/unit/test_layers.py keeps that direction.

Everything is imported when a task runs, not when this module is: `inv --list`
imports every task module and must stay light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoke import Context

    from ..core.clock import Clock
    from ..core.config import Settings
    from ..core.environment import Environment, Parts, PartsFactory


def _sandbox(environment: Environment) -> Parts:
    from .sandbox.parts import SandboxParts

    return SandboxParts(environment)


def _aws(environment: Environment) -> Parts:
    from .aws.parts import AwsParts

    return AwsParts(environment)


BACKENDS: Mapping[str, PartsFactory] = {"sandbox": _sandbox, "aws": _aws}


def build(settings: Settings, name: str | None, *, clock: Clock | None = None) -> Environment:
    """The named environment (default: the configured default) with its backend."""
    from ..core.environment import build as build_environment

    return build_environment(settings, name, backends=BACKENDS, clock=clock)


def environment(c: Context, name: str | None) -> Environment:
    """What a task body calls: the environment `--env NAME` names, from invoke's config."""
    from ..core.cli import settings

    return build(settings(c), name)
