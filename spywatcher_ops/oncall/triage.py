"""Alarms -> runbooks: which runbook covers each firing alarm, and the command that starts it.

Pure functions over plain data (CloudWatch's alarm dicts, parsed runbooks).
Runbook triggers name alarms the `{project}-{environment}-{resource}` way,
usually for production; an alarm of another environment with the same
resource part (`spywatcher-staging-db-unavailable`) is covered by the same
runbook. An alarm no runbook covers gets the runbooks whose trigger text is
nearest, so the responder still has somewhere to start.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..core.clock import iso

STATE_ORDER = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}


class RunbookLike(Protocol):
    name: str

    @property
    def title(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def triggers(self) -> list[str]: ...


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str
    since: datetime | None
    reason: str
    description: str = ""
    metric: str = ""  # "AWS/RDS CPUUtilization", or "composite"

    @classmethod
    def from_cloudwatch(cls, raw: dict[str, Any]) -> Alarm:
        if raw.get("_type") == "composite" or "AlarmRule" in raw:
            metric = "composite"
        else:
            metric = " ".join(str(p) for p in (raw.get("Namespace"), raw.get("MetricName")) if p)
        return cls(
            name=str(raw["AlarmName"]),
            state=str(raw.get("StateValue") or "?"),
            since=raw.get("StateUpdatedTimestamp"),
            reason=" ".join(str(raw.get("StateReason") or "").split()),
            description=" ".join(str(raw.get("AlarmDescription") or "").split()),
            metric=metric,
        )


@dataclass(frozen=True)
class Triaged:
    alarm: Alarm
    runbooks: list[str]  # every runbook whose triggers cover the alarm; the first is the one to run
    trigger: str | None  # the trigger that matched
    command: str | None  # `inv runbook.run NAME --env ENV`
    nearest: list[str] = field(default_factory=list)  # when no runbook covers it

    @property
    def covered(self) -> bool:
        return bool(self.runbooks)

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        a = self.alarm
        age = None if a.since is None or now is None else round((now - a.since).total_seconds(), 1)
        return {
            "alarm": a.name,
            "state": a.state,
            "since": iso(a.since),
            "age_s": age,
            "reason": a.reason,
            "description": a.description,
            "metric": a.metric,
            "runbook": self.runbooks[0] if self.runbooks else None,
            "command": self.command,
            "matched_trigger": self.trigger,
            "other_runbooks": self.runbooks[1:],
            "nearest_runbooks": self.nearest,
        }


def split_name(name: str, project: str, environments: Iterable[str]) -> tuple[str | None, str]:
    """`spywatcher-staging-db-unavailable` -> ("staging", "db-unavailable"); (None, name) when
    the name does not follow the pattern for a known environment."""
    for env in sorted(environments, key=len, reverse=True):  # "prod" must not shadow "production"
        prefix = f"{project}-{env}-"
        if name.startswith(prefix) and len(name) > len(prefix):
            return env, name[len(prefix) :]
    return None, name


def belongs_to(name: str, env: str, project: str, environments: Iterable[str]) -> bool:
    """An alarm named for another known environment is not this one's (a shared account);
    an alarm not following the pattern is shown everywhere rather than hidden."""
    owner, _ = split_name(name, project, environments)
    return owner is None or owner == env


def covering(
    name: str, runbooks: Sequence[RunbookLike], project: str, environments: Iterable[str]
) -> tuple[list[str], str | None]:
    """Runbooks covering the alarm: an exact trigger first, then the same resource part."""
    envs = list(environments)
    _, resource = split_name(name, project, envs)
    exact = [rb.name for rb in runbooks if name in rb.triggers]
    if exact:
        return exact, name
    same: list[str] = []
    trigger: str | None = None
    for rb in runbooks:
        for t in rb.triggers:
            owner, rest = split_name(t, project, envs)
            if owner is not None and rest == resource:
                same.append(rb.name)
                trigger = trigger or t
                break
    return same, trigger


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


@dataclass(frozen=True)
class _Text:
    """A text compared against alarm names: its words, and its words sorted and joined."""

    words: frozenset[str]
    joined: str

    @classmethod
    def of(cls, text: str) -> _Text:
        words = frozenset(_words(text))
        return cls(words, " ".join(sorted(words)))


def _score(a: _Text, b: _Text) -> float:
    overlap = len(a.words & b.words) / len(a.words | b.words) if a.words | b.words else 0.0
    matcher = difflib.SequenceMatcher(None, a.joined, b.joined, autojunk=False)
    return overlap + matcher.ratio()


def similarity(a: str, b: str) -> float:
    """Word overlap plus character similarity, both in 0..1."""
    return _score(_Text.of(a), _Text.of(b))


def nearest(
    name: str, runbooks: Sequence[RunbookLike], project: str, environments: Iterable[str], *, n: int = 3
) -> list[str]:
    """The `n` runbooks whose trigger text (or name / title) is closest to the alarm's resource part."""
    envs = list(environments)
    return _Index(runbooks, project, envs).nearest(split_name(name, project, envs)[1], n)


class _Index:
    """Each runbook's texts, prepared once for every alarm of a listing."""

    def __init__(self, runbooks: Sequence[RunbookLike], project: str, envs: list[str]) -> None:
        self.texts = [
            (
                rb.name,
                [_Text.of(split_name(t, project, envs)[1]) for t in rb.triggers]
                + [_Text.of(rb.name), _Text.of(rb.title)],
            )
            for rb in runbooks
        ]

    def nearest(self, resource: str, n: int = 3) -> list[str]:
        alarm = _Text.of(resource)
        scored = sorted(((-max(_score(alarm, t) for t in texts), name) for name, texts in self.texts))
        return [name for score, name in scored[:n] if score < 0]


def newest_first(alarms: Iterable[Alarm]) -> list[Alarm]:
    return sorted(
        alarms,
        key=lambda a: (
            STATE_ORDER.get(a.state, 3),
            -(a.since.timestamp() if a.since else float("-inf")),
            a.name,
        ),
    )


def triage(
    alarms: Iterable[Alarm],
    runbooks: Sequence[RunbookLike],
    *,
    env: str,
    project: str,
    environments: Iterable[str],
) -> list[Triaged]:
    """This environment's alarms, ALARM before INSUFFICIENT_DATA, newest first, each with its runbook."""
    envs = list(environments)
    index: _Index | None = None
    out: list[Triaged] = []
    for alarm in newest_first(a for a in alarms if belongs_to(a.name, env, project, envs)):
        names, trigger = covering(alarm.name, runbooks, project, envs)
        if names:
            out.append(Triaged(alarm, names, trigger, f"inv runbook.run {names[0]} --env {env}"))
        else:
            index = index or _Index(runbooks, project, envs)
            out.append(
                Triaged(alarm, [], None, None, index.nearest(split_name(alarm.name, project, envs)[1]))
            )
    return out
