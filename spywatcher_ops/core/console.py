"""Terminal output. Results go to stdout (tables, or JSON with --json);
progress and warnings go to stderr, so `--json | jq` stays clean.
rich is imported on first use: `inv --list` must not pay for it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class Console:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._out: Any = None
        self._err: Any = None

    @property
    def out(self) -> Any:
        if self._out is None:
            from rich.console import Console as Rich

            self._out = Rich(file=sys.stdout, highlight=False, soft_wrap=True)
        return self._out

    @property
    def err(self) -> Any:
        if self._err is None:
            from rich.console import Console as Rich

            self._err = Rich(file=sys.stderr, highlight=False, soft_wrap=True)
        return self._err

    # results -------------------------------------------------------------
    def print(self, text: str = "") -> None:
        if not self.json_mode:
            self.out.print(text, markup=False)

    def ok(self, text: str) -> None:
        if not self.json_mode:
            self.out.print(f"[green]OK[/green] {_esc(text)}")

    def failed(self, text: str, hint: str | None = None) -> None:
        if not self.json_mode:
            extra = f" [dim]({_esc(hint)})[/dim]" if hint else ""
            self.out.print(f"[red]FAILED[/red] {_esc(text)}{extra}")

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
              *, whole: Sequence[str] = ()) -> None:
        """`whole`: columns never cut short (ids a user copies into the next command).
        Piped output with such columns gets the width the table needs, not 80."""
        if self.json_mode:
            return
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col, no_wrap=col in whole)
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        for row in cells:
            table.add_row(*row)
        if whole and not self.out.is_terminal:
            needed = sum(max([len(c)] + [len(r[i]) for r in cells]) + 3 for i, c in enumerate(columns)) + 1
            self.out.width = max(self.out.width, needed)
        self.out.print(table)

    def emit_json(self, data: Any) -> None:
        """The machine-readable result; printed only under --json."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

    # progress and warnings (stderr) ---------------------------------------
    def info(self, text: str) -> None:
        if not self.quiet:
            self.err.print(text, markup=False)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {_esc(text)}")

    @contextmanager
    def progress(self, what: str) -> Iterator[Any]:
        """A live status line: `what - status (elapsed)`; yields an update(status) callable."""
        start = time.monotonic()
        if self.quiet or not self.err.is_terminal:
            last = [""]

            def update_plain(status: str) -> None:
                if status != last[0]:
                    last[0] = status
                    self.info(f"{what}: {status} ({time.monotonic() - start:.1f} s)")

            yield update_plain
            return
        with self.err.status(f"{what}...") as live:

            def update(status: str) -> None:
                live.update(f"{_esc(what)}: {_esc(status)} ({time.monotonic() - start:.1f} s)")

            yield update


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)
