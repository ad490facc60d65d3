"""The plan of a role change of a sandbox pair, PostgreSQL's (failover, swap, Multi-AZ style
restart) or Redis's (rolling restart): one node stops or restarts, the other takes over, the
first follows it. Three steps, each named by its exact call, so --dry-run shows what runs."""

from __future__ import annotations

from typing import Any

from ...core.plan import Plan, Step


def pair_plan(title: str, *steps: tuple[str, dict[str, Any], str] | Step) -> Plan:
    """Each step is the (action, params, why) of a mutating sandbox call, or a Step of another
    target (the sentinels'), in order."""
    plan = Plan(title)
    for step in steps:
        if not isinstance(step, Step):
            action, params, why = step
            step = Step("sandbox", action, params, why=why)
        plan.add(step)
    return plan
