"""A plan is the list of exact provider calls a mutating task will make.

Tasks build the plan first, show it, stop there under --dry-run, ask where a
guard says so, and only then apply it. Because the plan holds the real call
(service, operation, parameters), --dry-run shows what boto3, kubernetes or
the sandbox would be asked to do, not a paraphrase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    target: str  # "rds", "sandbox", "kubernetes", "elasticache", ...
    action: str  # the provider operation, e.g. "create_db_snapshot"
    params: dict[str, Any] = field(default_factory=dict)
    mutating: bool = True
    why: str = ""

    def render(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.target}.{self.action}({args})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "action": self.action,
            "params": self.params,
            "mutating": self.mutating,
            "why": self.why,
        }


@dataclass
class Plan:
    title: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    @property
    def mutating(self) -> bool:
        return any(s.mutating for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "steps": [s.to_dict() for s in self.steps],
            "notes": self.notes,
        }
