"""Test runbooks written to a folder (the runbook value tests of the unit and e2e tiers), and one
runbook that breaks every lint rule (runbook.check's tests in both tiers)."""

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


# A runbook with the mistakes runbook.check names (file and line), shared by its unit and e2e tests.
BROKEN = """---
title: Broken
triggers: []
severity: urgent
owner: me
last_reviewed: 2099-01-01
---

Intro with `inv db.nope --x` inline.

## 1. First

```sh run=diagnostic
inv db.verify --env {env}
inv db.verify --env {env}
```

## 3. Skipped a number

```sh run=sometimes
inv db.verify --env {env}
```

```sh run=mutating colour=red
inv db.restore --env {env} --to {when}
```

```sh
inv db.restore --env {env} --bogus
```
"""
