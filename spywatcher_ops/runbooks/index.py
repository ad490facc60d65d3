"""The runbook list in `runbooks/README.md`, generated from each runbook's front matter.

The list sits between two markers; `inv runbook.check` fails when it differs from
what the runbooks say (a runbook added, renamed, a trigger changed), and
`inv runbook.check --write-readme` rewrites it. Everything outside the markers is
hand-written and left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .model import Problem, Runbook, display_path

BEGIN = (
    "<!-- runbook list: generated from the runbooks' front matter by `inv runbook.check --write-readme`;"
    " `inv runbook.check` fails when it is out of date -->"
)
END = "<!-- end of runbook list -->"
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _trigger(text: str) -> str:
    # alarm names (one word with hyphens) in code, so they can be copied; symptoms as prose
    return f"`{text}`" if " " not in text.strip() else _cell(text)


def render(runbooks: Sequence[Runbook]) -> str:
    """The table, most severe first, then by name."""
    rows = sorted(runbooks, key=lambda rb: (SEVERITY_ORDER.get(rb.severity, 9), rb.name))
    lines = [
        BEGIN,
        "",
        "| runbook | severity | triggers (CloudWatch alarms, symptoms) | summary |",
        "|---|---|---|---|",
    ]
    for rb in rows:
        triggers = "<br>".join(_trigger(t) for t in rb.triggers)
        lines.append(f"| [{rb.name}]({rb.name}.md) | {rb.severity} | {triggers} | {_cell(rb.summary)} |")
    lines += ["", END]
    return "\n".join(lines)


def _split(text: str) -> tuple[str, str, str] | None:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[:start], text[start : end + len(END)], text[end + len(END) :]


def check(readme: Path, runbooks: Sequence[Runbook]) -> list[Problem]:
    where = display_path(readme)
    if not readme.exists():
        return [Problem(where, 0, "missing; create it with `inv runbook.check --write-readme`")]
    text = readme.read_text()
    parts = _split(text)
    if parts is None:
        return [
            Problem(where, 0, "has no generated runbook list; add it with `inv runbook.check --write-readme`")
        ]
    if parts[1] == render(runbooks):
        return []
    line = parts[0].count("\n") + 1
    listed = {n for n in _names(parts[1])}
    names = {rb.name for rb in runbooks}
    detail = []
    if names - listed:
        detail.append(f"missing {', '.join(sorted(names - listed))}")
    if listed - names:
        detail.append(f"lists {', '.join(sorted(listed - names))}, which do not exist")
    if not detail:
        detail.append("a trigger, severity or summary changed")
    return [
        Problem(
            where,
            line,
            f"the runbook list is out of date ({'; '.join(detail)}); run `inv runbook.check --write-readme`",
        )
    ]


def write(readme: Path, runbooks: Sequence[Runbook]) -> bool:
    """Put the generated list in place (after the first paragraph group the first time); True if changed."""
    text = readme.read_text() if readme.exists() else "# Runbooks\n\n"
    parts = _split(text)
    if parts is not None:
        new = parts[0] + render(runbooks) + parts[2]
    else:
        head, sep, tail = text.partition("\n## ")
        new = head.rstrip("\n") + "\n\n" + render(runbooks) + "\n" + (sep + tail if sep else "")
    if new == text:
        return False
    readme.write_text(new)
    return True


def _names(block: str) -> list[str]:
    import re

    return re.findall(r"^\| \[([a-z0-9-]+)\]\(\1\.md\) \|", block, flags=re.M)
