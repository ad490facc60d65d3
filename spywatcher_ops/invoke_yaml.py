"""Imported by the root tasks.py for its side effect: invoke reads its YAML config files
(invoke.yaml beside tasks.py, `inv -f FILE`) with libyaml.

invoke parses them with its vendored pure-Python YAML: about 8 ms of every `inv`
(invoke.yaml and a -f file; the first parse also compiles the scanner's patterns).
libyaml's safe loader, from the PyYAML that invoke's vendored copy already imports,
gives the same data in under 2 ms (tests/unit/test_startup_imports.py checks both agree).
Without libyaml, or with an invoke that no longer reads files this way, nothing changes.
"""

from __future__ import annotations

from typing import Any

import yaml
from invoke.config import Config


def load_yaml(self: Config, path: Any) -> Any:
    with open(path) as fd:
        return yaml.load(fd, Loader=yaml.CSafeLoader)  # the safe loader, in C


if getattr(yaml, "__with_libyaml__", False) and callable(getattr(Config, "_load_yaml", None)):
    Config._load_yaml = load_yaml  # type: ignore[method-assign]
    Config._load_yml = load_yaml  # type: ignore[method-assign]
