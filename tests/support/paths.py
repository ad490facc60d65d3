"""ROOT: the repository root (where tasks.py and invoke.yaml are)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
