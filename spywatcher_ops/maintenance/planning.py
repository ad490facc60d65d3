"""`inv maint.plan` and `inv maint.notice`: what the job would do in a window,
against the time budget, with every pre-check's result. Read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.journal import read as read_journal
from . import gates, history, runlog
from .budget import schedule
from .context import Setup
from .steps import STEPS, Check, StepContext
from .window import parse_window_arg

if TYPE_CHECKING:
    from ..core.environment import Environment


PARALLEL = 8  # pre-checks wait on servers, not on the CPU: a plan of 20 steps reads them side by side


def _one_precheck(env: Environment, planned: Any) -> list[Check]:
    ctx = StepContext(env=env, settings=planned.settings, progress=lambda _m: None, note=lambda *_a: None)
    try:
        return list(STEPS[planned.step].implementation().precheck(ctx))
    except Exception as exc:  # noqa: BLE001 - a crashing pre-check is reported as failed, the plan goes on
        return [Check("pre-check", "failed", f"{type(exc).__name__}: {exc}")]


def step_prechecks(env: Environment, setup: Setup) -> dict[int, list[Check]]:
    """Every step's own pre-check (read-only), run side by side. A step that appears more than
    once with the same settings asks the same question at the same moment: it is asked once."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    steps = setup.env_plan.steps
    distinct: dict[str, Any] = {}
    for s in steps:
        distinct.setdefault(s.step + json.dumps(s.settings, sort_keys=True, default=str), s)
    with ThreadPoolExecutor(max_workers=min(PARALLEL, max(1, len(distinct)))) as pool:
        answers = dict(
            zip(distinct, pool.map(lambda s: _one_precheck(env, s), distinct.values()), strict=True)
        )
    return {s.index: answers[s.step + json.dumps(s.settings, sort_keys=True, default=str)] for s in steps}


def make_plan(
    env: Environment, setup: Setup, window_arg: str | None, *, checks: bool = True
) -> dict[str, Any]:
    now = env.clock.now()
    window = parse_window_arg(setup.spec, window_arg, now)
    steps = setup.env_plan.steps
    est = history.estimates(
        history.read(history.history_path(env.settings.state_dir)), env.name, [s.step for s in steps]
    )
    slots = schedule(steps, est, window, now)
    run_checks: list[Check] = []
    per_step: dict[int, list[Check]] = {}
    if checks:
        from concurrent.futures import ThreadPoolExecutor

        records = read_journal(env.journal.path)
        with ThreadPoolExecutor(max_workers=1) as pool:  # the run's checks beside the steps' own
            run_future = pool.submit(
                gates.run_checks,
                env,
                runlog.runs(records, env.name),
                needs_cache=any(s.step.startswith("cache") for s in steps),
                settings=setup.env_plan.prechecks,
            )
            per_step = step_prechecks(env, setup)
            run_checks = run_future.result()
        published = runlog.notice_published(records, env.name, window.key())
        if not window.always and setup.spec.notice_days:
            run_checks.insert(
                0,
                Check(
                    "notice",
                    "ok" if published else "warn",
                    f"published {published}"
                    if published
                    else f"not published yet; due {setup.spec.notice_days} days before the window",
                ),
            )
    out_steps = []
    for slot, planned in zip(slots, steps, strict=True):
        d = slot.to_dict()
        d["settings"] = planned.settings
        d["summary"] = STEPS[planned.step].summary
        d["prechecks"] = [c.to_dict() for c in per_step.get(planned.index, [])]
        out_steps.append(d)
    fitting = [s for s in slots if s.fits]
    return {
        "env": env.name,
        "plan": setup.plan.name,
        "window": window.to_dict(now),
        "window_spec": setup.spec.describe(),
        "max_errors": setup.env_plan.max_errors,
        "expected_total_s": round(sum(s.expected_s for s in fitting), 2),
        "not_started": [s.step for s in slots if not s.fits],
        "steps": out_steps,
        "prechecks": [c.to_dict() for c in run_checks],
        "snapshot": "a manual snapshot (Purpose=pre-maintenance) is taken before the first step",
    }


def make_notice(env: Environment, setup: Setup, window_arg: str | None) -> dict[str, Any]:
    from .notice import build

    now = env.clock.now()
    window = parse_window_arg(setup.spec, window_arg, now)
    steps = setup.env_plan.steps
    est = history.estimates(
        history.read(history.history_path(env.settings.state_dir)), env.name, [s.step for s in steps]
    )
    return build(
        env.name, setup.plan.description, setup.env_plan, window, schedule(steps, est, window, now), est
    )
