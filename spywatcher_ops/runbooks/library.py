"""Where runbooks live: the shipped collection in `runbooks/` at the top of the
repository (next to `tasks.py`, where people browse them) plus any extra
folders (`ops.runbooks.paths` in config, `--path` on the command line)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..core.errors import BadInput
from .model import Runbook, load_file

SHIPPED = Path(__file__).resolve().parents[2] / "runbooks"
# Files in a runbook folder that are about runbooks, not runbooks.
NOT_RUNBOOKS = {"README.md", "FORMAT.md"}


def folders(extra: Iterable[str | Path] = ()) -> list[Path]:
    out = [SHIPPED]
    for folder in extra:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise BadInput(f"--path {folder}: not a folder of runbooks")
        if path not in out:
            out.append(path)
    return out


def discover(extra: Iterable[str | Path] = ()) -> dict[str, Path]:
    """Runbook name (file stem) -> file. The same name in two folders is an error."""
    found: dict[str, Path] = {}
    for folder in folders(extra):
        for path in sorted(folder.glob("*.md")):
            if path.name in NOT_RUNBOOKS:
                continue
            if path.stem in found:
                raise BadInput(
                    f"runbook {path.stem} is defined twice: {found[path.stem]} and {path}; rename one"
                )
            found[path.stem] = path
    return found


def load_all(extra: Iterable[str | Path] = ()) -> list[Runbook]:
    return [load_file(path) for path in discover(extra).values()]


def load(name: str, extra: Iterable[str | Path] = ()) -> Runbook:
    known = discover(extra)
    key = name[:-3] if name.endswith(".md") else name
    if key not in known:
        listing = ", ".join(sorted(known)) or "none"
        raise BadInput(f"runbook {name}: unknown; known runbooks: {listing} (see inv runbook.list)")
    return load_file(known[key])


def find(name: str, extra: Iterable[str | Path] = ()) -> Runbook:
    """A runbook by its name, or by an alarm name (or symptom) one of its triggers names,
    as the pager shows it: `inv runbook.run spywatcher-production-db-unavailable`."""
    known = discover(extra)
    key = name[:-3] if name.endswith(".md") else name
    if key in known:
        return load_file(known[key])
    wanted = name.strip().lower()
    hits = [
        rb
        for rb in (load_file(p) for p in known.values())
        if any(t.strip().lower() == wanted for t in rb.triggers)
    ]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise BadInput(
            f"{name}: the trigger of {len(hits)} runbooks: {', '.join(rb.name for rb in hits)}; "
            "give the runbook's name"
        )
    listing = ", ".join(sorted(known)) or "none"
    raise BadInput(
        f"runbook {name}: unknown; known runbooks: {listing} (and no runbook has {name} "
        "as a trigger; inv runbook.list shows them)"
    )
