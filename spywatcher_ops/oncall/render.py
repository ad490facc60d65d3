"""Human output of `inv oncall`: one block per alarm, the command to run on its last line."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .triage import Triaged

STATE_STYLE = {"ALARM": "bold red", "INSUFFICIENT_DATA": "yellow", "OK": "green"}


def age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{int(seconds)} s ago"
    if seconds < 7200:
        return f"{int(seconds // 60)} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def render(con: Any, rows: list[Triaged], *, env: str, where: str, states: list[str], now: datetime) -> None:
    if con.json_mode:
        return
    from rich.markup import escape

    out = con.out
    if not rows:
        con.ok(f"no alarm in {' or '.join(states)} on {env} ({where})")
        return
    covered = sum(1 for r in rows if r.covered)
    out.print(
        f"[bold]{len(rows)} alarm(s) in {escape(' or '.join(states))} on {escape(env)}[/bold] ({escape(where)}), "
        f"newest first; {covered} with a runbook"
    )
    for r in rows:
        a = r.alarm
        data = r.to_dict(now)
        since = (data["since"] or "?")[:19].replace("T", " ")
        style = STATE_STYLE.get(a.state, "")
        out.print("")
        out.print(
            f"[{style}]{a.state}[/{style}]  {escape(a.name)}  [dim]since {since} UTC, {age(data['age_s'])}[/dim]"
        )
        if a.reason:
            out.print(f"    {escape(a.reason[:200])}", soft_wrap=False, overflow="ellipsis")
        if r.covered:
            also = f" [dim](also: {escape(', '.join(r.runbooks[1:]))})[/dim]" if len(r.runbooks) > 1 else ""
            out.print(f"    runbook [bold]{escape(r.runbooks[0])}[/bold]{also}:  {escape(r.command or '')}")
        else:
            near = ", ".join(r.nearest) or "none"
            out.print(
                f"    [bold red]NO RUNBOOK covers this alarm[/bold red]; nearest by trigger text: {escape(near)} "
                f"[dim](inv runbook.show NAME)[/dim]"
            )
