"""Help a responder can trust: every task shows an example of itself, a short flag means the
same thing in every task (or there is none), and shell completion is documented."""

from __future__ import annotations

import subprocess
import sys

from support.paths import ROOT

sys.path.insert(0, str(ROOT))


def test_help_shows_the_example_and_the_short_flags():
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--help", "dr.report"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Example: inv dr.report latest" in done.stdout
    assert "-j, --json" in done.stdout


def test_the_readme_says_how_to_turn_on_shell_completion():
    text = (ROOT / "README.md").read_text()
    assert "inv --print-completion-script bash" in text
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--print-completion-script", "bash"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "complete" in done.stdout
