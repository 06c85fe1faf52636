"""Imports flow one way: graph -> agents, tools -> lapt; the domain never imports LLM or torch code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> import prefixes it must not use
FORBIDDEN = {
    "lapt": (
        "lapt.graph",
        "lapt.agents",
        "lapt.tools",
        "langgraph",
        "langchain",
        "langchain_core",
        "langchain_openai",
        "langsmith",
        "torch",
    ),
    "tools": ("lapt.graph", "lapt.agents", "langgraph", "langchain_openai"),
    "agents": ("lapt.graph", "lapt.tools", "torch"),
    "graph": ("torch",),
}
# The entry points (the CLI, the Python API, the package's lazy attributes) and the experiments protocol,
# which composes whole runs, may import any layer. Everything else in lapt/ is the domain.
COMPOSITION_ROOT = ("lapt/cli", "lapt/api.py", "lapt/experiments", "lapt/__init__.py")


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, at any level (inside functions and ``TYPE_CHECKING`` blocks too)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


@pytest.mark.parametrize("folder", list(FORBIDDEN))
def test_imports_flow_one_way(folder):
    bad = []
    for path in (ROOT / folder).rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(COMPOSITION_ROOT):
            continue
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[folder]):
                bad.append(f"{rel}: {name}")
    assert not bad, bad


def test_eval_does_not_import_torch():
    code = (
        "import sys; from lapt.cli import main; "
        "rc = main(['eval', 'nb201', '|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|', '--task', 'cifar10']); "
        "assert 'torch' not in sys.modules, 'torch imported'; print('ok', rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("ok 0")


def test_nothing_named_agents_graph_tools_is_installed_top_level(tmp_path):
    code = (
        "import importlib.util, lapt.tools, lapt.agents, lapt.graph; "
        "print([n for n in ('agents', 'graph', 'tools') if importlib.util.find_spec(n)])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


def test_the_check_sees_imports_inside_functions_and_type_checking_blocks(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lapt.graph.run import RunRequest\n"
        "def f():\n    import langsmith\n    from lapt.agents import llm\n"
    )
    assert set(_imports(module)) == {"typing", "lapt.graph.run", "langsmith", "lapt.agents"}


# --- no import circles -------------------------------------------------------------------------------------------

# source folder -> the package it is installed as (pyproject's package-dir)
PACKAGES = {"lapt": "lapt", "agents": "lapt.agents", "graph": "lapt.graph", "tools": "lapt.tools"}


def _module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every source file of the installed packages under ``root``."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in (root / folder).rglob("*.py"):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, at any level: ``from P import m`` names the module ``P.m``
    when that is a module, else the package ``P``; relative imports are resolved against ``name``."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def import_circles(root: Path) -> list[list[str]]:
    """Every set of project modules that import each other in a circle (strongly connected components of
    more than one module, Tarjan's algorithm), each sorted, function-level and ``TYPE_CHECKING`` imports
    included: a circle that only works because one side imports late is still a circle."""
    modules = _module_names(root)
    graph = {name: _edges(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles():
    assert import_circles(ROOT) == []


def test_the_circle_check_fails_on_a_circle_of_late_imports(tmp_path):
    for folder in PACKAGES:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "lapt" / "a.py").write_text("def f():\n    from lapt.b import g\n")
    (tmp_path / "lapt" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (tmp_path / "lapt" / "c.py").write_text("import lapt.a\n")
    (tmp_path / "graph" / "x.py").write_text("from lapt.graph import y\n")
    (tmp_path / "graph" / "y.py").write_text("from .x import *\n")
    assert sorted(import_circles(tmp_path)) == [["lapt.a", "lapt.b"], ["lapt.graph.x", "lapt.graph.y"]]


def test_the_package_root_holds_only_what_the_whole_package_shares():
    """lapt/'s root keeps the public API, the shared schemas and errors; everything else lives in a
    package named for its concern (runs, transfer, principles, llm, tables, spaces, ...)."""
    root_modules = sorted(p.name for p in (ROOT / "lapt").glob("*.py"))
    assert len(root_modules) <= 8, root_modules
