"""Facts, not dangling references: every repository file a code comment or docstring
names exists (measured floors and design facts live in docs/, not outside the repository).

Checked: comments and docstrings of every Python file (tokenize + ast, so strings the
code builds at run time are not mistaken for references) and comments of the YAML files
people edit. A name with a folder (`docs/measured.md`, `cluster/objects.py`) must resolve
from the repository root, the package, the tests, or the file's own folder and its
parents; a bare `*.md` must be at the root or beside the file (docs are cited with their folder); a bare `*.py`
must be a module somewhere in the repository (other bare names, like `ops.json`, are
files the code writes at run time). Patterns (`drills/<suite>.yaml`,
`maintenance/NAME.yaml`, `*.html`) and absolute paths are not references.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest
from support.paths import ROOT

REF = re.compile(
    r"(?<![\w./<{-])((?:[\w.-]+/)*[\w-][\w.-]*\.(?:md|py|yaml|yml|toml|json|html|tf))\b(?![/\w-])"
)
PATTERN = re.compile(r"[*<>{}$]|/[A-Z][A-Z_]+\.|\b[A-Z][A-Z_]+\.(?:ya?ml|json|md)\b")
PY_FILES = sorted(
    p
    for p in [
        *ROOT.glob("spywatcher_ops/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("bench/*.py"),
        ROOT / "tasks.py",
    ]
)
YAML_FILES = sorted(
    p
    for p in [
        *ROOT.glob("*.yaml"),
        *ROOT.glob("drills/*.yaml"),
        *ROOT.glob("maintenance/*.yaml"),
        *ROOT.glob("deploy/**/*.yaml"),
    ]
)
ALL_NAMES = {p.name for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts}


def commentary(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the comments and docstrings of a Python file; comments of a YAML file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        return [(i, line.split("#", 1)[1]) for i, line in enumerate(text.splitlines(), 1) if "#" in line]
    out = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.append((first.lineno, first.value.value))
    return out


def resolves(ref: str, source: Path) -> bool:
    if "/" not in ref:
        if ref.endswith(".md"):
            return any((d / ref).exists() for d in (ROOT, source.parent))  # docs are cited with their folder
        return not ref.endswith(".py") or ref in ALL_NAMES  # a bare ops.json is a runtime file
    bases = [ROOT, ROOT / "spywatcher_ops", ROOT / "tests", *source.parents]
    return any((base / ref).exists() for base in bases)


def references(path: Path) -> list[tuple[int, str]]:
    found = []
    for line, text in commentary(path):
        for m in REF.finditer(text):
            ref = m.group(1)
            context = text[max(0, m.start() - 1) : m.end() + 1]
            if PATTERN.search(context) or ref.startswith("."):
                continue
            found.append((line, ref))
    return found


@pytest.mark.parametrize("path", PY_FILES + YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_comment_names_exists(path):
    missing = [
        f"{path.relative_to(ROOT)}:{line}: {ref}" for line, ref in references(path) if not resolves(ref, path)
    ]
    assert not missing, "comments name files that are not in the repository:\n" + "\n".join(missing)


def test_the_check_finds_a_dangling_reference(tmp_path):
    """The check itself: a comment naming a file outside the repository is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Timings from measured.md; see cluster/drill_scenarios.py."""\n# and docs/design.md\n'
    )
    refs = dict((ref, line) for line, ref in references(sample))
    assert {"measured.md", "cluster/drill_scenarios.py", "docs/design.md"} <= set(refs)
    assert not resolves("measured.md", sample) and not resolves("cluster/drill_scenarios.py", sample)
    assert resolves("docs/design.md", sample) and resolves("cluster/objects.py", sample)


def test_the_measured_facts_are_in_the_repository():
    text = (ROOT / "docs" / "measured.md").read_text()
    for fact in ("wal_retrieve_retry_interval", "ephemeral range", "walreceiver", "redis-py"):
        assert fact in text


def test_package_data_matches_files():
    """pyproject.toml's package-data patterns each match a file (drills/*.html matched none)."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data.get("tool", {}).get("setuptools", {}).get("package-data", {})
    for package, globs in patterns.items():
        base = ROOT / package.replace(".", "/")
        for pattern in globs:
            assert list(base.glob(pattern)), f"package-data {package}: {pattern} matches nothing"
