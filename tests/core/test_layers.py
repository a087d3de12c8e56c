"""The rings, held against the code: imports flow one way and never in a circle.

- **core** (``deployfw/`` but its ``cli``, ``sandbox`` and ``testing`` packages) imports neither
  the CLI, nor the sandbox (the product never depends on its stand-ins), nor any plugin
  (backends are reached through the registry);
- **plugins** (``plugins/*``) import the core only: never the CLI (they contribute commands
  through a hook), the sandbox, or each other (shared code belongs to the core);
- the **sandbox** imports the core only (backends say what to seed through a hook);
- no module imports itself back through others.

Every import counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (read by the type checker, never run). Read from the source with
:mod:`ast`, so a lazy import cannot hide a wrong arrow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PACKAGES = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file())


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base, top in ((ROOT, "deployfw"), *((ROOT / "plugins", name) for name in PLUGIN_PACKAGES)):
        for path in sorted((base / top).rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> Iterator[str]:
    """The project modules ``name`` imports (outside ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            for alias in node.names:  # a submodule by name, else a name the module itself defines
                yield f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    for target in visit(tree):
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            yield target


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def ring(module: str) -> str:
    top = module.split(".")[0]
    if top in PLUGIN_PACKAGES:
        return f"plugin:{top}"
    if module == "deployfw.__main__":
        return "cli"
    for sub in ("cli", "sandbox", "testing"):
        if module == f"deployfw.{sub}" or module.startswith(f"deployfw.{sub}."):
            return sub
    return "core"


def _allowed(source: str, target: str) -> bool:
    src, dst = ring(source), ring(target)
    if src == dst or dst == "core":
        return True
    return {"cli": dst == "sandbox", "testing": dst in ("cli", "sandbox")}.get(src, False)


def test_the_graph_is_read() -> None:
    assert "deployfw.pipeline" in GRAPH and "deployfw_aws.bluegreen" in GRAPH
    assert "deployfw.aws.clients" in GRAPH["deployfw_aws.bluegreen"]


@pytest.mark.parametrize("source", sorted(GRAPH))
def test_imports_flow_one_way(source: str) -> None:
    wrong = [target for target in GRAPH[source] if not _allowed(source, target)]
    assert not wrong, f"{source} ({ring(source)}) imports {', '.join(f'{t} ({ring(t)})' for t in wrong)}"


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, []):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(GRAPH):
        if node not in index:
            connect(node)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_the_pipeline_loads_neither_click_nor_boto3() -> None:
    code = "import sys, deployfw.pipeline; print(sorted(m for m in ('click', 'boto3', 'botocore') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
