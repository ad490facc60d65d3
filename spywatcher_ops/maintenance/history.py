"""Maintenance history: one JSON line per step run in `<state_dir>/maintenance/history.jsonl`.

It feeds the estimates: a step's expected duration on an environment is the
p95 of its earlier successful runs there; without any, the step's documented
default. `inv maint.history` shows durations and measured impact per step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..drills.measure import percentile
from .steps import STEPS


@dataclass(frozen=True)
class Estimate:
    step: str
    expected_s: float
    basis: str  # "p95 of 12 runs" | "default"
    runs: int
    impact: dict[str, float]  # probe -> p95 of the measured impairment (s), from the same runs


def history_path(state_dir: Path) -> Path:
    return state_dir / "maintenance" / "history.jsonl"


def append(path: Path, line: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line, default=str) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    with path.open() as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line after a crash
    return out


def estimates(runs: list[dict[str, Any]], env: str, steps: list[str]) -> dict[str, Estimate]:
    """Expected duration and impact per step on `env`. Pure; one pass over the history."""
    wanted = set(steps)
    durations: dict[str, list[float]] = {s: [] for s in wanted}
    impacts: dict[str, dict[str, list[float]]] = {s: {} for s in wanted}
    for r in runs:
        step = r.get("step")
        if r.get("env") != env or step not in wanted or r.get("status") != "ok":
            continue
        if r.get("duration_s") is not None:
            durations[step].append(float(r["duration_s"]))
        for probe, value in (r.get("impact") or {}).items():
            if value is not None:
                impacts[step].setdefault(probe, []).append(float(value))
    out = {}
    for step in wanted:
        values = durations[step]
        p95 = percentile(values, 95)
        impact = {k: round(percentile(v, 95) or 0.0, 3) for k, v in sorted(impacts[step].items())}
        if p95 is None:
            out[step] = Estimate(step, STEPS[step].default_s, "default", 0, impact)
        else:
            out[step] = Estimate(step, round(p95, 2), f"p95 of {len(values)} run(s)", len(values), impact)
    return out


def summary(runs: list[dict[str, Any]], env: str | None, step: str | None, last: int) -> list[dict[str, Any]]:
    """Per (env, step): runs, p50/p95 duration, p95 impact per probe, lost writes, the last runs."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        if (env is None or r.get("env") == env) and (step is None or r.get("step") == step):
            groups.setdefault((str(r.get("env")), str(r.get("step"))), []).append(r)
    out = []
    for (e, s), rs in sorted(groups.items()):
        ok = [r for r in rs if r.get("status") == "ok"]
        durations = [float(r["duration_s"]) for r in ok if r.get("duration_s") is not None]
        probes: dict[str, list[float]] = {}
        for r in ok:
            for probe, value in (r.get("impact") or {}).items():
                if value is not None:
                    probes.setdefault(probe, []).append(float(value))
        out.append(
            {
                "env": e,
                "step": s,
                "runs": len(rs),
                "ok": len(ok),
                "duration_p50_s": percentile(durations, 50),
                "duration_p95_s": percentile(durations, 95),
                "impact_p95_s": {k: percentile(v, 95) for k, v in sorted(probes.items())},
                "lost_writes": sum(int(n or 0) for r in rs for n in (r.get("lost") or {}).values()),
                "last_runs": rs[-last:],
            }
        )
    return out
