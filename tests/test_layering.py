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
