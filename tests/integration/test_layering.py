"""The layering rules, read from the installed packages' sources (``ast``, no execution):

* no package has import cycles between its own modules (function-level imports count);
* a package imports only the gnn packages it depends on (CONTRIBUTING.md's table);
* gnn-kernels imports nothing of gnn.core, also at run time.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

#: package -> the gnn packages it may import (itself included)
ALLOWED = {
    "core": {"core", "nn"},
    "nn": {"core", "nn"},
    "aggr": {"core", "aggr"},
    "conv": {"core", "aggr", "conv"},
    "pool": {"core", "aggr", "conv", "pool"},
    "models": {"core", "aggr", "conv", "pool", "models"},
    "hetero": {"core", "conv", "hetero"},
    "kernels": {"kernels"},
}


def _modules(package: str) -> dict[str, Path]:
    spec = importlib.util.find_spec(f"gnn.{package}")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"gnn.{package} is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["gnn", package, *parts])] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module name ``name`` imports (relative imports resolved), at any nesting level."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_cycles_inside_a_package(package):
    modules = _modules(package)
    graph = {m: {t for t in _imports(m, p) if t in modules and t != m} for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if t.startswith(m + "."):  # a package importing its own submodule
                continue
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_the_packages_it_depends_on(package):
    bad = {}
    for name, path in _modules(package).items():
        used = {t.split(".")[1] for t in _imports(name, path) if t.startswith("gnn.") and t.count(".") >= 1}
        if used - ALLOWED[package]:
            bad[name] = sorted(used - ALLOWED[package])
    assert not bad


def test_gnn_kernels_loads_nothing_of_gnn_core():
    pytest.importorskip("gnn.kernels")
    code = (
        "import sys, gnn.kernels, gnn.kernels.backend, gnn.kernels._plugin\n"
        "gnn.kernels.load()\n"
        "print(sorted(m for m in sys.modules if m.startswith('gnn.') and not m.startswith('gnn.kernels')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
