"""One screen: a line per reading, OK / WARN / FAILED / SKIPPED, the hint after it."""

from __future__ import annotations

from typing import Any

from .model import PartResult

STYLE = {"OK": "green", "WARN": "yellow", "FAILED": "bold red", "SKIPPED": "dim"}


def render(con: Any, results: list[PartResult], *, env: str, kind: str, at: str, took: float) -> None:
    if con.json_mode:
        return
    from rich.markup import escape

    out = con.out
    out.print(f"[bold]status of {escape(env)}[/bold] ({kind}) at {at[:19].replace('T', ' ')} UTC")
    counts = {"OK": 0, "WARN": 0, "FAILED": 0, "SKIPPED": 0}
    for result in results:
        for line in result.lines:
            counts[line.level] = counts.get(line.level, 0) + 1
            style = STYLE.get(line.level, "")
            hint = f"  [dim]({escape(line.hint)})[/dim]" if line.hint else ""
            out.print(f"[{style}]{line.level:<7}[/{style}] {line.part:<12} {escape(line.text)}{hint}")
    out.print(
        f"{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAILED']} FAILED, "
        f"{counts['SKIPPED']} skipped; read in {took:.2f} s"
    )
