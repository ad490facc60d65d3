"""The direction of imports, checked from the source (ast), so it holds without anyone remembering it:

    tasks -> domain (recovery, drills, cluster, runbooks, maintenance, infra, oncall, status) -> core <- backends

- core imports nothing of the package outside core (no backend: the table of
  backends is handed to core.environment.build);
- backends import core and backends only;
- domain packages import core and each other, never a backend nor a task module;
- task modules (`tasks.py`, `*_tasks.py`) reach the backends only through the
  composition root, `spywatcher_ops.backends.table` (environment(c, name)); the
  sandbox's own tasks (backends/sandbox/tasks.py, the sandbox.* namespace) live
  in the backend they drive and may import it;
- nothing imports a task module but the root tasks.py, which assembles them.

Every import counts: module level, inside functions, under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support.paths import ROOT

PACKAGE = ROOT / "spywatcher_ops"
DOMAIN = ("recovery", "drills", "cluster", "runbooks", "maintenance", "infra", "oncall", "status")
COMPOSITION_ROOT = "spywatcher_ops.backends.table"

# Imports that break the direction today and are known: each names what would remove it.
# The test fails on any other, and on an entry that no longer happens (so the list only shrinks).
# None today (oncall.alarms reads CloudWatch through the Monitoring port since issue 11).
KNOWN_DEBTS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` / `from pkg import mod`: the names may be modules themselves
            modules = [
                f"{target}.{alias.name}" for alias in node.names if _is_module(f"{target}.{alias.name}")
            ]
            found += [(node.lineno, m) for m in modules] or [(node.lineno, target)]
    return found


def _is_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def is_task_module(name: str) -> bool:
    last = name.rpartition(".")[2]
    return name == "tasks" or last == "tasks" or last.endswith("_tasks")


def layer(name: str) -> str | None:
    if is_task_module(name):
        return "tasks"
    parts = name.split(".")
    if parts[0] != "spywatcher_ops" or len(parts) < 2:
        return None
    if parts[1] == "core":
        return "core"
    if parts[1] == "backends":
        return "backends"
    if parts[1] in DOMAIN:
        return "domain"
    return None


def problem(source: str, target: str) -> str | None:
    """Why importing `target` from `source` breaks the direction, or None."""
    src, dst = layer(source), layer(target)
    if dst is None or source == target:
        return None
    if dst == "tasks" and source != "tasks":
        return "nothing imports a task module (the root tasks.py assembles them)"
    if src == "core" and dst != "core":
        return "core imports nothing outside core"
    if src == "backends" and dst not in ("core", "backends"):
        return "backends import core and backends only"
    if src == "domain" and dst == "backends":
        return "domain modules reach a backend through a port (core/ports.py), never by import"
    if src == "tasks" and dst == "backends":
        if target == COMPOSITION_ROOT or target.startswith(COMPOSITION_ROOT + "."):
            return None
        if source.startswith("spywatcher_ops.backends.sandbox.") and target.startswith(
            "spywatcher_ops.backends.sandbox"
        ):
            return None  # the sandbox.* tasks drive their own backend
        return f"task modules reach the backends through {COMPOSITION_ROOT} only"
    return None


def violations() -> dict[tuple[str, str], str]:
    found = {}
    files = [*PACKAGE.rglob("*.py"), ROOT / "tasks.py"]
    for path in files:
        source = module_name(path)
        for line, target in imports_of(path):
            why = problem(source, target)
            if why:
                found[(source, target)] = f"{path.relative_to(ROOT)}:{line}: imports {target}: {why}"
    return found


def test_imports_follow_tasks_domain_core_backends():
    found = violations()
    new = [why for key, why in sorted(found.items()) if key not in KNOWN_DEBTS]
    assert not new, "imports against the layers:\n" + "\n".join(new)


def test_known_debts_still_exist_so_the_list_only_shrinks():
    gone = [f"{a} -> {b}" for (a, b) in KNOWN_DEBTS if (a, b) not in violations()]
    assert not gone, f"no longer imported, remove from KNOWN_DEBTS: {gone}"


def test_core_imports_no_backend():
    """The import circle between core and the backends is gone (no known debt allowed here)."""
    for path in (PACKAGE / "core").rglob("*.py"):
        for line, target in imports_of(path):
            assert not target.startswith("spywatcher_ops.backends"), (
                f"{path.relative_to(ROOT)}:{line}: {target}"
            )


@pytest.mark.parametrize(
    "source, target, broken",
    [
        ("spywatcher_ops.core.environment", "spywatcher_ops.backends.sandbox.parts", True),
        ("spywatcher_ops.drills.scenarios.proofs", "spywatcher_ops.backends.sandbox.state", True),
        ("spywatcher_ops.backends.kube", "spywatcher_ops.cluster.objects", True),
        ("spywatcher_ops.recovery.restore", "spywatcher_ops.recovery.tasks", True),
        ("spywatcher_ops.drills.tasks", "spywatcher_ops.backends.sandbox.lifecycle", True),
        ("spywatcher_ops.drills.tasks", "spywatcher_ops.backends.table", False),
        ("spywatcher_ops.drills.scenarios.application", "spywatcher_ops.cluster.objects", False),
        ("spywatcher_ops.backends.aws.rds", "spywatcher_ops.core.ports", False),
        ("spywatcher_ops.backends.sandbox.tasks", "spywatcher_ops.backends.sandbox.lifecycle", False),
        ("tasks", "spywatcher_ops.drills.tasks", False),
    ],
)
def test_the_rule_itself(source, target, broken):
    assert (problem(source, target) is not None) is broken


def test_relative_imports_are_resolved(tmp_path):
    """`from ...backends.sandbox import state` three levels down is seen as the absolute module."""
    found = dict((t, n) for n, t in imports_of(PACKAGE / "drills" / "scenarios" / "proofs.py"))
    assert "spywatcher_ops.drills.scenarios.registry" in found
    assert "spywatcher_ops.core.errors" in found


# -- no reaching past the ports through Parts ---------------------------------------

# `environment.parts.clients` (the AWS backend's boto3 clients, behind a type: ignore) is a
# way around the ports that no import shows. Domain and task code uses the ports instead
# (Monitoring, Notifications, Permissions, Credentials, Scaling); no module may do it.
CLIENTS_DEBTS: set[str] = set()


def clients_line(source: str, filename: str = "<source>") -> int | None:
    """The first line where `source` reaches `<something>.parts.clients`, or None."""
    for node in ast.walk(ast.parse(source, filename)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "clients"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parts"
        ):
            return node.lineno
    return None


def reaching_past_parts() -> dict[str, int]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if layer(name) not in ("domain", "tasks"):
            continue
        line = clients_line(path.read_text(), str(path))
        if line is not None:
            found[name] = line
    return found


@pytest.mark.parametrize(
    "source, line",
    [
        ('cw = env.parts.clients.client("cloudwatch")', 1),
        ("x = 1\nreturn_it = environment.parts.clients  # type: ignore[attr-defined]", 2),
        ("alarms = env.monitoring.alarms(['ALARM'])", None),
        ("clients = self.clients", None),
    ],
)
def test_the_clients_rule_itself(source, line):
    assert clients_line(source) == line


def test_no_new_module_reaches_the_backend_clients_past_the_ports():
    found = reaching_past_parts()
    new = [f"{m} line {line}" for m, line in sorted(found.items()) if m not in CLIENTS_DEBTS]
    assert not new, f"environment.parts.clients outside the backends (add a port method instead): {new}"
    gone = sorted(CLIENTS_DEBTS - set(found))
    assert not gone, f"no longer reaching past the ports, remove from CLIENTS_DEBTS: {gone}"


# -- no Any at a port ------------------------------------------------------------

PARTS_FILES = [
    PACKAGE / "backends" / "sandbox" / "parts.py",
    PACKAGE / "backends" / "aws" / "parts.py",
    PACKAGE / "core" / "environment.py",
]


@pytest.mark.parametrize("path", PARTS_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_parts_return_ports_not_any(path):
    """mypy checks a backend against its port only if Parts say which port they return."""
    tree = ast.parse(path.read_text())
    parts_classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Parts")]
    assert parts_classes, f"no Parts class in {path.name}"
    for cls in parts_classes:
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and not fn.name.startswith("_") and fn.name != "identity":
                returns = ast.unparse(fn.returns) if fn.returns else "(none)"
                assert "Any" not in returns and returns != "(none)", f"{cls.name}.{fn.name} returns {returns}"


def test_ports_have_no_any_in_their_signatures_but_json_and_details():
    """The Protocols of core/ports.py: Any appears only inside JSON-shaped dicts (dict[str, Any])."""
    tree = ast.parse((PACKAGE / "core" / "ports.py").read_text())
    bad = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        if not any(ast.unparse(b) == "Protocol" for b in cls.bases):
            continue
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            annotations = [a.annotation for a in fn.args.args + fn.args.kwonlyargs if a.annotation] + [
                fn.returns
            ]
            for ann in annotations:
                text = ast.unparse(ann) if ann is not None else ""
                if "Any" in text.replace("dict[str, Any]", ""):
                    bad.append(f"{cls.name}.{fn.name}: {text}")
    assert not bad, bad
