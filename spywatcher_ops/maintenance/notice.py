"""The maintenance notice: what will be done in a window, the expected client
impact and duration of each step (from earlier runs), and the rollback plan.
Rendered as Markdown and plain text; publishing sends it to the environment's
SNS topic and journals that the notice for that window went out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.errors import BadInput
from ..drills.reporting.report import fmt_seconds
from .budget import Slot
from .history import Estimate
from .impact import PROBE_WORDS
from .plans import EnvPlan
from .window import Window

if TYPE_CHECKING:
    from ..core.environment import Environment


def _impact_text(step: str, est: Estimate) -> str:
    from .steps import STEPS

    measured = [f"{PROBE_WORDS.get(p, p)} paused up to {v:.2f} s" for p, v in est.impact.items() if v >= 0.05]
    if est.runs:
        seen = "; ".join(measured) if measured else "no client impact measured"
        return f"{seen} (p95 of {est.runs} earlier run(s))"
    return STEPS[step].impact


def build(
    env: str,
    description: str,
    env_plan: EnvPlan,
    window: Window,
    slots: list[Slot],
    estimates: dict[str, Estimate],
) -> dict[str, Any]:
    from .steps import STEPS

    when = (
        "any time (this environment's window is always open)"
        if window.always
        else f"{iso(window.start)} to {iso(window.end)} (UTC); local {window.to_dict()['start_local']} to "
        f"{window.to_dict()['end_local']} ({window.timezone})"
    )
    total = sum(s.expected_s for s in slots if s.fits)
    steps = []
    for s, planned in zip(slots, env_plan.steps, strict=True):
        st = STEPS[s.step]
        steps.append(
            {
                "index": s.index,
                "step": s.step,
                "summary": st.summary,
                "expected_s": s.expected_s,
                "basis": s.basis,
                "impact": _impact_text(s.step, estimates[s.step]),
                "rollback": st.rollback_text,
                "fits": s.fits,
                "settings": planned.settings,
            }
        )
    return {
        "env": env,
        "plan": env_plan.plan,
        "window": window.to_dict(),
        "window_key": window.key(),
        "when": when,
        "description": description,
        "expected_total_s": total,
        "steps": steps,
    }


def to_markdown(n: dict[str, Any]) -> str:
    lines = [f"# Maintenance notice: {n['env']}", "", f"**When:** {n['when']}", ""]
    if n["description"]:
        lines += [n["description"], ""]
    lines += [
        f"**Expected duration:** {fmt_seconds(n['expected_total_s'])} in all.",
        "",
        "| # | what | expected duration | expected client impact | rollback |",
        "|---|---|---|---|---|",
    ]
    for s in n["steps"]:
        extra = "" if s["fits"] else " (does not fit before the cutoff: will not be started)"
        lines.append(
            f"| {s['index']} | **{s['step']}**: {s['summary']}{extra} | {fmt_seconds(s['expected_s'])} "
            f"({s['basis']}) | {s['impact']} | {s['rollback']} |"
        )
    return "\n".join(lines) + "\n"


def to_text(n: dict[str, Any]) -> str:
    lines = [f"MAINTENANCE NOTICE: {n['env']}", f"When: {n['when']}"]
    if n["description"]:
        lines.append(n["description"])
    lines.append(f"Expected duration: {fmt_seconds(n['expected_total_s'])} in all.")
    for s in n["steps"]:
        lines += [
            "",
            f"{s['index']}. {s['step']}: {s['summary']}" + ("" if s["fits"] else " [will not fit]"),
            f"   expected duration: {fmt_seconds(s['expected_s'])} ({s['basis']})",
            f"   expected client impact: {s['impact']}",
            f"   rollback: {s['rollback']}",
        ]
    return "\n".join(lines) + "\n"


def topic(env: Environment) -> str | None:
    value = env.env.raw.get("sns_topic_arn") or env.settings.section("aws").get("sns_topic_arn")
    return str(value) if value else None


def publish(env: Environment, notice: dict[str, Any]) -> dict[str, Any]:
    """Send the notice (SNS on aws) and journal that it went out for this window."""
    if notice["window"].get("always"):
        raise BadInput(f"{env.name}: its window is 'always'; there is no window to announce")
    arn = topic(env) if env.kind == "aws" else None
    if env.kind == "aws" and not arn:
        raise BadInput(
            f"{env.name}: no SNS topic to publish to; set ops.aws.sns_topic_arn or "
            f"environments.{env.name}.sns_topic_arn, e.g. arn:aws:sns:us-east-1:123456789012:maintenance"
        )
    args = {"plan": notice["plan"], "window": notice["window_key"], "topic": arn}
    with env.operation("maint.notice", args) as op:
        message_id = None
        if arn:
            subject = f"Maintenance on {env.name}: {notice['window_key']}"
            message_id = env.notifications.publish(arn, subject, to_text(notice))
        op.step("notice-published", "ok", window=notice["window_key"], topic=arn, message_id=message_id)
        op.result = {"window": notice["window_key"], "message_id": message_id}
    return {
        "window": notice["window_key"],
        "topic": arn,
        "message_id": message_id,
        "published_at": iso(env.clock.now()),
    }
