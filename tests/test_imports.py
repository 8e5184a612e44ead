"""The package's import structure: no cycles among module-level imports, and the closed-form
solver family importable without torch (it is numpy/scipy only by design)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bfly_cli"


def module_name(path: Path) -> str:
    """``bfly_cli/solvers/auto.py`` -> ``bfly_cli.solvers.auto``; a package's ``__init__`` -> the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): imports for annotations, never run."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: top level, and inside top-level ``try``/``if``
    blocks (but not ``if TYPE_CHECKING``); never those inside functions or classes."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """``module -> the package modules it imports at module level`` (``from pkg import sub`` counts
    as importing ``pkg.sub`` when that is a module, else ``pkg``)."""
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _absolute(name, path.name == "__init__.py", node)
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first repeated at the end), or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_sees_known_edges():
    """The parser must find real imports (a broken parser would find no cycle in anything)."""
    graph = import_graph()
    assert "bfly_cli.step_kinds" in graph["bfly_cli.factors"]
    assert "bfly_cli.kernel" in graph["bfly_cli.factors"]
    assert "bfly_cli.sweep_report" in graph["bfly_cli.sweep"]
    assert len(graph) > 40


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def _closed_form_modules() -> list[str]:
    return sorted(name for name in all_modules() if name.startswith("bfly_cli.solvers.closed_form"))


def test_closed_form_imports_without_torch():
    """The closed-form family is numpy/scipy only: every module imports with torch unavailable."""
    modules = _closed_form_modules()
    assert "bfly_cli.solvers.closed_form" in modules and len(modules) > 3
    script = textwrap.dedent(f"""
        import importlib, sys
        sys.modules["torch"] = None  # any "import torch" now raises ImportError
        for name in {modules!r}:
            importlib.import_module(name)
        assert sys.modules["torch"] is None
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("name", ["bfly_cli.factors", "bfly_cli.kernel", "bfly_cli.step_kinds", "bfly_cli.layout",
                                  "bfly_cli.h5format", "bfly_cli.metadata", "bfly_cli.export"])
def test_core_modules_import_without_torch(name):
    """The file format, the registries and the kernel wrapper never need torch (only the pt export does)."""
    script = f"import sys; sys.modules['torch'] = None; import {name}"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
