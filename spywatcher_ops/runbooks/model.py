"""A runbook file -> a Runbook: front matter, numbered steps, runnable blocks.

The Markdown is the single source. Format (see runbooks/README.md):

    ---
    title: Database unavailable
    summary: the application cannot reach PostgreSQL
    triggers: [spywatcher-production-db-unavailable, "API returns 503 on every request"]
    severity: critical
    owner: platform-team
    last_reviewed: 2026-11-20
    inputs:                      # values the responder types when a step needs them
      to: {prompt: "last good time, e.g. 2026-11-25T14:03:00Z", kind: time}
    ---
    ## 1. Check the database        <- a step: `## N. Title`
    ```sh run=diagnostic           <- read-only: runs without asking
    inv db.verify --env {env}
    ```

A block fenced ```` ```sh run=mutating ```` is shown and asked for (y / skip /
abort); a step without a runnable block is manual and waits for an
acknowledgement. Parsing never raises on content: structural problems are
collected with their line numbers for `runbook.check` and the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED = ("title", "summary", "triggers", "severity", "owner", "last_reviewed")
SEVERITIES = ("critical", "high", "medium", "low")
RUN_KINDS = ("diagnostic", "mutating")
# Values the engine always knows; everything else must be declared under `inputs`.
BUILTINS = ("env", "incident", "project", "region", "db_instance", "db_secret")

_STEP = re.compile(r"^##\s+(\d+)\.\s+(\S.*?)\s*$")
_H2 = re.compile(r"^##\s")
_FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})(.*)$")
# `{name}` but not shell `${name}`; JSON such as '{"a": 1}' never matches.
PLACEHOLDER = re.compile(r"(?<![$\w{])\{([a-z][a-z0-9_]*)\}")
_INLINE_INV = re.compile(r"`(inv(?:oke)?\s[^`]+)`")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Block:
    """A fenced code block. `run` is "diagnostic", "mutating" or None (shown only)."""

    line: int  # line of the opening fence, 1-based, in the file
    info: str
    text: str
    run: str | None
    bad_attrs: tuple[str, ...] = ()

    @property
    def jumps(self) -> dict[str, int]:
        """Where the walk goes after this block: ```` ```sh run=diagnostic ok=6 failed=4 ```` ->
        {"ok": 6, "failed": 4} (the step's check decides the next step; the engine records it)."""
        return parse_jumps(self.info)

    def commands(self) -> list[tuple[int, str]]:
        """(line, command) for each command: `\\`-continuations joined, comments and blanks dropped."""
        out: list[tuple[int, str]] = []
        pending: list[str] = []
        start = 0
        for offset, raw in enumerate(self.text.splitlines(), 1):
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if not pending:
                start = self.line + offset
            if line.endswith("\\"):
                pending.append(line[:-1].strip())
                continue
            pending.append(line)
            out.append((start, " ".join(p for p in pending if p)))
            pending = []
        if pending:
            out.append((start, " ".join(p for p in pending if p)))
        return out


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    line: int
    body: str  # the step's Markdown after its heading, blocks included
    blocks: tuple[Block, ...]

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.run]

    @property
    def kind(self) -> str:
        kinds = {b.run for b in self.runnable}
        if "mutating" in kinds:
            return "mutating"
        if "diagnostic" in kinds:
            return "diagnostic"
        return "manual"

    def placeholders(self) -> list[str]:
        return unique(PLACEHOLDER.findall(self.title + "\n" + self.body))

    def segments(self) -> list[str | Block]:
        """The body in reading order: Markdown text, and each runnable block where it stands."""
        out: list[str | Block] = []
        runnable = iter(self.runnable)
        text: list[str] = []
        fence: list[str] | None = None
        marker = ""
        for raw in self.body.splitlines():
            if fence is None:
                opened = _FENCE.match(raw)
                if opened:
                    fence, marker = [raw], opened.group(2)
                else:
                    text.append(raw)
                continue
            fence.append(raw)
            stripped = raw.strip()
            if stripped.startswith(marker) and set(stripped) <= {marker[0]}:
                run, _ = parse_info(_FENCE.match(fence[0]).group(3).strip())  # type: ignore[union-attr]
                if run:
                    if "\n".join(text).strip():
                        out.append("\n".join(text).strip("\n"))
                    text = []
                    out.append(next(runnable))
                else:
                    text.extend(fence)
                fence = None
        text.extend(fence or [])
        if "\n".join(text).strip():
            out.append("\n".join(text).strip("\n"))
        return out


@dataclass(frozen=True)
class Input:
    name: str
    prompt: str
    default: str | None = None
    kind: str = "identifier"  # what a value must look like (runbooks/values.py KINDS)


@dataclass
class Runbook:
    name: str
    path: Path
    meta: dict[str, Any]
    steps: list[Step]
    body: str  # the Markdown after the front matter
    body_line: int  # file line of the body's first line
    inline_commands: list[tuple[int, str]] = field(default_factory=list)
    shown_commands: list[tuple[int, str]] = field(default_factory=list)  # `inv` lines in non-runnable blocks
    problems: list[Problem] = field(default_factory=list)
    meta_lines: dict[str, int] = field(default_factory=dict)  # front matter key -> file line

    def line_of(self, key: str) -> int:
        return self.meta_lines.get(key, 1)

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.name)

    @property
    def summary(self) -> str:
        return " ".join(str(self.meta.get("summary") or "").split())

    @property
    def severity(self) -> str:
        return str(self.meta.get("severity") or "")

    @property
    def owner(self) -> str:
        return str(self.meta.get("owner") or "")

    @property
    def triggers(self) -> list[str]:
        value = self.meta.get("triggers") or []
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def inputs(self) -> dict[str, Input]:
        out: dict[str, Input] = {}
        raw = self.meta.get("inputs") or {}
        if not isinstance(raw, dict):
            return out
        for name, spec in raw.items():
            if isinstance(spec, dict):
                default = spec.get("default")
                out[str(name)] = Input(
                    str(name),
                    str(spec.get("prompt") or name),
                    None if default is None else str(default),
                    str(spec.get("kind") or "identifier"),
                )
            else:
                out[str(name)] = Input(str(name), str(spec or name))
        return out

    @property
    def mutating(self) -> bool:
        return any(s.kind == "mutating" for s in self.steps)

    def placeholders(self) -> list[str]:
        return unique(p for s in self.steps for p in s.placeholders())


def unique(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace known `{name}` placeholders; unknown ones stay as they are."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


JUMP_KEYS = ("ok", "failed")


def parse_jumps(info: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for word in info.split()[1:]:
        key, sep, value = word.partition("=")
        if sep and key in JUMP_KEYS and value.isdigit():
            out[key] = int(value)
    return out


def parse_info(info: str) -> tuple[str | None, tuple[str, ...]]:
    """```` ```sh run=mutating ```` -> ("mutating", ()); unknown attributes are returned as bad.
    `ok=N` / `failed=N` (a step number to go to) are known attributes of a runnable block."""
    words = info.split()
    run: str | None = None
    bad: list[str] = []
    for word in words[1:]:
        key, _sep, value = word.partition("=")
        if word.startswith("run="):
            run = word[4:]
        elif key in JUMP_KEYS and value.isdigit():
            continue
        elif word != "manual":
            bad.append(word)
    return run, tuple(bad)


def display_path(path: Path) -> str:
    """Relative to the current folder when inside it (what a responder types), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse(text: str, *, name: str, path: Path) -> Runbook:
    where = display_path(path)
    problems: list[Problem] = []
    lines = text.splitlines()
    meta: dict[str, Any] = {}
    meta_lines: dict[str, int] = {}
    body_start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            problems.append(Problem(where, 1, "front matter opened with --- but never closed"))
        else:
            meta = _yaml(lines[1:end], where, problems)
            body_start = end + 1
            for i in range(1, end):
                key = re.match(r"^([A-Za-z_][\w-]*):", lines[i])
                if key:
                    meta_lines.setdefault(key.group(1), i + 1)
    else:
        problems.append(
            Problem(
                where, 1, "no front matter; start the file with --- and the fields " + ", ".join(REQUIRED)
            )
        )

    steps: list[Step] = []
    inline: list[tuple[int, str]] = []
    shown: list[tuple[int, str]] = []
    current: dict[str, Any] | None = None
    fence: tuple[str, int, str, list[str]] | None = None  # marker, line, info, lines

    def close_step() -> None:
        if current is not None:
            steps.append(
                Step(
                    current["number"],
                    current["title"],
                    current["line"],
                    "\n".join(current["body"]).strip("\n"),
                    tuple(current["blocks"]),
                )
            )

    for index in range(body_start, len(lines)):
        raw = lines[index]
        lineno = index + 1
        if fence is not None:
            marker, start, info, content = fence
            stripped = raw.strip()
            if stripped.startswith(marker[0] * len(marker)) and set(stripped) <= {marker[0]}:
                run, bad = parse_info(info)
                block = Block(start, info, "\n".join(content), run, bad)
                if current is not None:
                    current["blocks"].append(block)
                if block.run:
                    if current is None:
                        problems.append(
                            Problem(
                                where,
                                start,
                                "runnable block outside a numbered step; put it under a `## N. Title` heading",
                            )
                        )
                else:
                    shown.extend(
                        (ln, cmd) for ln, cmd in block.commands() if cmd.split()[0] in ("inv", "invoke")
                    )
                fence = None
            else:
                content.append(raw)
            if current is not None:
                current["body"].append(raw)
            continue
        opened = _FENCE.match(raw)
        if opened:
            fence = (opened.group(2), lineno, opened.group(3).strip(), [])
            if current is not None:
                current["body"].append(raw)
            continue
        step = _STEP.match(raw)
        if step:
            close_step()
            current = {
                "number": int(step.group(1)),
                "title": step.group(2),
                "line": lineno,
                "body": [],
                "blocks": [],
            }
            continue
        if _H2.match(raw):
            close_step()  # an unnumbered `##` section (notes, appendix) ends the step
            current = None
            continue
        inline.extend((lineno, m.group(1).strip()) for m in _INLINE_INV.finditer(raw))
        if current is not None:
            current["body"].append(raw)
    if fence is not None:
        problems.append(Problem(where, fence[1], "code block opened here is never closed"))
    close_step()
    return Runbook(
        name=name,
        path=path,
        meta=meta,
        steps=steps,
        body="\n".join(lines[body_start:]),
        body_line=body_start + 1,
        inline_commands=inline,
        shown_commands=shown,
        problems=problems,
        meta_lines=meta_lines,
    )


def _yaml(lines: list[str], where: str, problems: list[Problem]) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load("\n".join(lines)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1
        problems.append(
            Problem(where, line, f"front matter is not valid YAML: {getattr(exc, 'problem', exc)}")
        )
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(where, 2, "front matter must be a mapping of fields"))
        return {}
    return data


def load_file(path: Path) -> Runbook:
    return parse(path.read_text(encoding="utf-8"), name=path.stem, path=path)
