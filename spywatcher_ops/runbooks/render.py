"""`runbook.show`: a runbook rendered for the terminal (rich, loaded on first use).

The Markdown is shown as written, with two additions so a reader sees what
`runbook.run` will do: each step heading says its kind (diagnostic, mutating,
manual), and each runnable block is preceded by a line saying whether it runs
by itself or asks first.
"""

from __future__ import annotations

import re
import sys

from .model import _FENCE, _STEP, Runbook, parse_info

LABELS = {
    "diagnostic": "> ▶ read-only: `runbook.run` runs this by itself and shows the output",
    "mutating": "> ⚠ changes the environment: `runbook.run` shows it and asks y / skip / abort",
}
KIND_NOTE = {
    "diagnostic": "runs by itself",
    "mutating": "asks before each change",
    "manual": "you do it, then confirm",
}


def header(runbook: Runbook) -> list[tuple[str, str]]:
    rows = [
        ("runbook", runbook.name),
        ("severity", runbook.severity),
        ("triggers", "\n".join(runbook.triggers)),
        ("owner", runbook.owner),
        ("last reviewed", str(runbook.meta.get("last_reviewed") or "")),
        ("summary", runbook.summary),
    ]
    for spec in runbook.inputs.values():
        rows.append(
            (f"input {{{spec.name}}}", spec.prompt + (f" (default {spec.default})" if spec.default else ""))
        )
    return rows


def annotated(runbook: Runbook) -> str:
    kinds = {s.number: s.kind for s in runbook.steps}
    out: list[str] = []
    in_fence = ""
    for line in runbook.body.splitlines():
        fence = _FENCE.match(line)
        if in_fence:
            out.append(line)
            if line.strip().startswith(in_fence) and set(line.strip()) <= {in_fence[0]}:
                in_fence = ""
            continue
        if fence:
            in_fence = fence.group(2)
            run, _ = parse_info(fence.group(3).strip())
            if run in LABELS:
                out += [LABELS[run], ""]
            out.append(line)
            continue
        step = _STEP.match(line)
        if step and int(step.group(1)) in kinds:
            kind = kinds[int(step.group(1))]
            line = f"{line}  ({kind}: {KIND_NOTE[kind]})"
        out.append(line)
    return "\n".join(out)


def render(runbook: Runbook, *, raw: bool = False) -> None:
    if raw:
        sys.stdout.write(runbook.path.read_text(encoding="utf-8"))
        return
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.table import Table
    from rich.text import Text

    out = Console(file=sys.stdout, highlight=False)
    table = Table(title=Text(runbook.title, style="bold"), show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in header(runbook):
        table.add_row(Text(key), Text(value))  # Text: no markup, `[x]` shows as written
    out.print(table)
    out.print(Markdown(re.sub(r"\n{3,}", "\n\n", annotated(runbook))))
