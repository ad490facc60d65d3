"""Guards in front of every mutation: dry-run, confirmation, production.

Production needs the environment's name typed at the prompt, or `--yes`
together with the non-interactive opt-in SPYWATCHER_OPS_CONFIRM=<environment>
(so a copied command line alone can never hit production).
Other environments ask only where the operation itself says so
(`confirm=True`: failovers, swaps, drills); `--yes` answers that.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .config import EnvSettings
from .console import Console
from .errors import Refused
from .plan import Plan

OPT_IN_VAR = "SPYWATCHER_OPS_CONFIRM"


def show_plan(console: Console, plan: Plan, *, dry_run: bool) -> None:
    if console.json_mode:
        return
    head = "DRY RUN - would make these calls" if dry_run else "Plan"
    console.print(f"{head}: {plan.title}")
    for i, step in enumerate(plan.steps, 1):
        marker = "" if step.mutating else " (read-only)"
        console.print(f"  {i}. {step.render()}{marker}")
        if step.why:
            console.print(f"     {step.why}")
    for note in plan.notes:
        console.print(f"  note: {note}")


def approve(
    plan: Plan,
    env: EnvSettings,
    console: Console,
    *,
    dry_run: bool,
    yes: bool,
    confirm: bool = False,
    ask: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> bool:
    """Show the plan; return True to apply, False for a dry run; raise Refused otherwise.
    A quiet console (-q) shows it only when it is a dry run or someone is asked about it."""
    asks = env.production or (confirm and not yes)
    if dry_run or asks or not console.quiet:
        show_plan(console, plan, dry_run=dry_run)
    if dry_run:
        return False
    if interactive is None:
        interactive = sys.stdin.isatty()
    ask = ask or input
    if env.production:
        if yes:
            if os.environ.get(OPT_IN_VAR) != env.name:
                raise Refused(
                    f"--yes on production environment {env.name} needs {OPT_IN_VAR}={env.name} in the environment",
                    hint="or run interactively and type the environment name",
                )
            return True
        if not interactive:
            raise Refused(
                f"{env.name} is production: type its name at the prompt, or pass --yes with {OPT_IN_VAR}={env.name}"
            )
        answer = ask(f"This changes PRODUCTION. Type the environment name ({env.name}) to go on: ")
        if answer.strip() != env.name:
            raise Refused(f"confirmation {answer.strip()!r} does not match {env.name}; nothing was done")
        return True
    if confirm and not yes:
        if not interactive:
            raise Refused(f"{plan.title}: needs confirmation; pass --yes to run it without a prompt")
        answer = ask(f"{plan.title} on {env.name}. Go on? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise Refused("not confirmed; nothing was done")
    return True
