"""Test runbooks written to a folder (the runbook value tests of the unit and e2e tiers)."""

from __future__ import annotations

from pathlib import Path

HEADER = """---
title: {title}
summary: a test runbook
triggers: [test-alarm]
severity: low
owner: tests
last_reviewed: 2026-11-01
inputs:
  which:
    prompt: a runbook name
  to:
    prompt: a time
    kind: time
---

"""


def write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(HEADER.format(title=name) + body)
    return path
