"""invoke's own parse errors go through the boundary (spywatcher_ops/core/parse_errors.py).

The hook relies on invoke internals (checked against invoke 2.2.1): these tests fail loudly,
naming what changed, when an invoke upgrade moves them. The `inv` subprocess half is
tests/e2e/test_core_parse_errors_e2e.py."""

from __future__ import annotations

import inspect
import re

import invoke
import pytest
from invoke import Collection, Context, Program
from invoke.exceptions import ParseError
from invoke.parser import Parser, ParserContext

from spywatcher_ops.core import parse_errors
from spywatcher_ops.core.cli import ops_task


def tasks() -> Collection:
    """A fresh collection each time: invoke's Task.get_arguments consumes the task's help dict."""

    @ops_task(positional=["name"], help={"name": "a runbook name, e.g. db-down", "level": "how loud, e.g. 3"})
    def show(c: Context, name: str | None = None, level: str = "", verbose: bool = False) -> None:
        """Show one."""
        print(f"shown {name} {level} {verbose}")

    return Collection(show)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    program = Program(namespace=tasks(), name="t", binary="inv")
    with pytest.raises(SystemExit) as exited:
        program.run(["inv", *argv])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_the_program_methods_the_hook_wraps_are_still_called_by_run_after_loading() -> None:
    source = inspect.getsource(Program.run)
    order = [source.index(f"self.{m}()") for m in ("parse_collection", "parse_tasks", "parse_cleanup")]
    assert order == sorted(order), f"invoke {invoke.__version__}: Program.run's order changed"
    assert "except (UnexpectedExit, Exit, ParseError)" in source, (
        "Program.run no longer turns Exit into the code"
    )
    for name in ("parse_tasks", "parse_cleanup"):
        assert getattr(getattr(Program, name), "spywatcher_ops_parse_errors", False), (
            f"Program.{name} not wrapped"
        )
    assert "self.parser = " in inspect.getsource(Program.parse_tasks.__wrapped__)  # type: ignore[attr-defined]


def test_installing_twice_wraps_once() -> None:
    before = Program.parse_tasks
    parse_errors.install()
    assert Program.parse_tasks is before


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["show"], "_MISSING"),
        (["show", "x", "--nope"], "_UNKNOWN"),
        (["show", "x", "--level"], "_NO_VALUE"),
        (["nope"], "_UNKNOWN"),
    ],
)
def test_invoke_still_words_its_parse_errors_as_the_hook_reads_them(argv: list[str], pattern: str) -> None:
    contexts = tasks().to_contexts()
    with pytest.raises(ParseError) as raised:
        Parser(initial=ParserContext(), contexts=contexts).parse_argv(argv)
    assert re.match(getattr(parse_errors, pattern), str(raised.value)), (
        f"invoke {invoke.__version__} now says {raised.value!s}"
    )
    expected = None if argv == ["nope"] else "show"
    assert getattr(raised.value.context, "name", None) == expected  # ParseError.context: the task's


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["show"], "error: show: missing NAME (NAME: a runbook name, e.g. db-down); see inv --help show"),
        (
            ["show", "x", "--levl", "3"],
            "error: --levl: not an option of show; did you mean --level? its options: ",
        ),
        (["show", "x", "--level"], "error: --level: needs a value: how loud, e.g. 3; see inv --help show"),
        (["shwo"], "error: 'shwo': no task has that name; did you mean show? list the tasks with inv --list"),
        (
            ["--help", "shwo"],
            "error: 'shwo': no task has that name; did you mean show? list the tasks with inv --list",
        ),
        (["show", "x", "y"], "error: 'y': show takes no more values and no task has that name; "),
        (["--nope"], "error: --nope: not an option of inv; see inv --help"),
    ],
)
def test_a_parse_error_is_exit_2_with_one_error_line(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and err.startswith(line), err


def test_the_options_listed_are_the_tasks_own(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(["show", "x", "--nope"], capsys)
    assert "its options: --level, --verbose (details: inv --help show)" in err, err


def test_valid_commands_are_unaffected(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["show", "x", "--level", "3", "--verbose"], capsys)[:2] == (0, "shown x 3 True\n")
    code, out, _ = run(["--help", "show"], capsys)
    assert code == 0 and "Show one." in out and "--level" in out
    code, out, _ = run(["--list"], capsys)
    assert code == 0 and "show" in out
