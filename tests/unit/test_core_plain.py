"""core/plain.py writes what rich would write (a Console with plain=True, as infra.plan makes
it), byte for byte, and falls back to rich for anything it cannot reproduce."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.paths import ROOT

from spywatcher_ops.core.console import Console

COLS = ["resource type", "add", "change", "replace", "destroy"]
TABLES = [
    (COLS, [["terraform_data", 0, 300, 0, 0]], ["resource type"]),
    (COLS, [["aws_db_instance", 1, 0, 2, 0], ["aws_s3_bucket", 0, 0, 0, 11], ["x", None, "", 0, 0]], []),
    (["a"], [["b"]], []),
    (["id", "name"], [["", ""]], ["id"]),
    (["long"] * 3, [["w" * 40, "v" * 30, "u" * 20]], []),  # wider than 80: rich wraps, plain says no
    (["long"] * 3, [["w" * 40, "v" * 30, "u" * 20]], ["long"]),  # whole: the width grows, both agree
    (COLS, [["[red]x", 1, 2, 3, 4]], []),  # markup: rich's business
    (COLS, [[":smile: x", 1, 2, 3, 4]], []),  # an emoji code: rich's business
    (COLS, [["café", 1, 2, 3, 4]], []),  # not ASCII
    (COLS, [["two  spaces", 1, 2, 3, 4]], []),
]
LINES = [
    "saved plan: /tmp/x/plans/20261125T140300Z.tfplan",
    "apply it:   inv infra.apply --env staging --allow-destroy aws_db_instance.main",
    "terraform 1.11.4 in /srv/infra, workspace default, state s3://bucket/staging/terraform.tfstate",
    "no changes: the infrastructure matches the configuration",
    "changed outside Terraform: aws_s3_bucket.logs (update)",
    "at 14:03:00 and :smile: too",
    "a [bold]tag[/bold] and [brackets]",
    "",
    "tab\there",
    "naïve",
]


def _both(capsys: pytest.CaptureFixture[str], call: object) -> tuple[str, str, str, str]:
    got = []
    for plain in (True, False):
        out = Console()
        out.plain = plain
        call(out)  # type: ignore[operator]
        captured = capsys.readouterr()
        got += [captured.out, captured.err]
    return got[0], got[2], got[1], got[3]


@pytest.mark.parametrize("columns", ["", "40", "80", "200"])
@pytest.mark.parametrize("case", range(len(TABLES)))
def test_a_table_is_what_rich_writes(
    case: int, columns: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    cols, rows, whole = TABLES[case]
    ours, rich, _, _ = _both(capsys, lambda out: out.table(cols, rows, whole=whole))
    assert ours == rich


@pytest.mark.parametrize("text", LINES)
def test_a_line_is_what_rich_writes(text: str, capsys: pytest.CaptureFixture[str]):
    out_p, out_r, err_p, err_r = _both(capsys, lambda out: (out.print(text), out.info(text)))
    assert (out_p, err_p) == (out_r, err_r)
    hint = "apply refuses it unless --allow-destroy " + text
    out_p, out_r, _, _ = _both(capsys, lambda out: out.failed(f"STATEFUL DELETE: {text}", hint))
    assert out_p == out_r


def test_forced_colour_goes_to_rich(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    ours, rich, _, _ = _both(capsys, lambda out: (out.table(COLS, [["t", 1, 2, 3, 4]]), out.failed("x", "y")))
    assert ours == rich
    assert "\x1b[" in ours  # rich's colours, not the plain text


def test_plain_output_does_not_import_rich():
    code = (
        "import sys\n"
        "from spywatcher_ops.core.console import Console\n"
        "out = Console(); out.plain = True\n"
        "out.info('terraform 1.11.4 in /srv/infra'); out.table(['type', 'add'], [['terraform_data', 3]])\n"
        "out.print('saved plan: /tmp/p.tfplan'); out.failed('STATEFUL DELETE: aws_db_instance.main', 'hint')\n"
        "assert not [m for m in sys.modules if m.startswith('rich')], 'rich imported'\n"
        "out.print('and :smile: needs rich')\n"
        "assert 'rich.console' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "┃ type           ┃ add ┃" in done.stdout
    assert "FAILED STATEFUL DELETE: aws_db_instance.main (hint)" in done.stdout
