"""Terminal output. Results go to stdout (tables, or JSON with --json);
progress and warnings go to stderr, so `--json | jq` stays clean.
rich is imported on first use: `inv --list` must not pay for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .status import Status


class Console:
    def __init__(self, *, json_mode: bool = False, quiet: bool = False, log_path: Path | None = None) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.log_path = log_path  # long tasks append their timestamped status lines here
        # print/info/failed/table write what rich would write without importing it, where they
        # can (core/plain.py: no terminal, plain text); a task opts in (infra.plan)
        self.plain = False
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
        if not self.json_mode and not self._plain(sys.stdout, text, markup=False):
            self.out.print(text, markup=False)

    def ok(self, text: str) -> None:
        if not self.json_mode:
            self.out.print(f"[green]OK[/green] {_esc(text)}")

    def failed(self, text: str, hint: str | None = None) -> None:
        if not self.json_mode and not self._plain(
            sys.stdout, f"FAILED {text}" + (f" ({hint})" if hint else "")
        ):
            extra = f" [dim]({_esc(hint)})[/dim]" if hint else ""
            self.out.print(f"[red]FAILED[/red] {_esc(text)}{extra}")

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str | None = None,
        *,
        whole: Sequence[str] = (),
    ) -> None:
        """`whole`: columns never cut short (ids a user copies into the next command).
        Piped output with such columns gets the width the table needs, not 80."""
        if self.json_mode:
            return
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        if self.plain and title is None and self._out is None:
            from . import plain

            if plain.usable(sys.stdout):
                text = plain.table(columns, cells, whole=bool(whole))
                if text is not None:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                    return
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col, no_wrap=col in whole)
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
        if not self.quiet and not self._plain(sys.stderr, text, markup=False):
            self.err.print(text, markup=False)

    def _plain(self, file: Any, text: str, *, markup: bool = True) -> bool:
        """Written as rich would write it, without rich (self.plain and core/plain.py allow)?"""
        if not self.plain:
            return False
        from . import plain

        if not (plain.usable(file) and plain.safe(text, markup=markup)):
            return False
        file.write(text + "\n")
        file.flush()
        return True

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {_esc(text)}")

    @contextmanager
    def progress(self, what: str, status: Status | None = None) -> Iterator[Status]:
        """A long task's status (core/status.py), rendered while the block runs: one live line
        in a terminal; timestamped lines on a change (and a heartbeat) when stderr is not a
        terminal; the same lines appended to `log_path` if set; nothing on stderr when quiet.
        Yields the Status: call it with a text (a Progress callback), or set items and phases."""
        from .status import LogSink, Status, Ticker

        st = status or Status(what)
        # One sink writing to every destination: the file and stderr get identical lines.
        writers: list[Callable[[str], None]] = []
        if self.log_path is not None:
            writers.append(self._append_log)
        live = not self.quiet and self.err.is_terminal
        if not self.quiet and not live:
            writers.append(lambda line: self.err.print(line, markup=False, soft_wrap=True))

        def write_all(line: str) -> None:
            for write in writers:
                write(line)

        sink = LogSink(write_all) if writers else None
        ticker = None
        if sink is not None:
            st.watch(lambda snap: sink.tick(snap, st.now()))
            ticker = Ticker(lambda: sink.tick(st.snapshot(), st.now()), interval=0.25).start()
        try:
            if live:
                with self.err.status(_LiveLine(st)):
                    yield st
            else:
                yield st
        finally:
            if ticker is not None and sink is not None:
                ticker.stop()
                sink.flush(st.snapshot(), st.now())

    def _append_log(self, line: str) -> None:
        assert self.log_path is not None
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class _LiveLine:
    """Renders the status line afresh at each refresh, so the timers tick between changes."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def __rich__(self) -> Any:
        from rich.text import Text

        from .status import live_line

        return Text(live_line(self.status.snapshot(), self.status.now()), no_wrap=True, overflow="ellipsis")


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)
