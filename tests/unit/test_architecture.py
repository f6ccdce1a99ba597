"""The module map's arrows (docs/architecture.md), checked over the package's import graph: every
`import` and `from ... import` in the source — at the top of a module or inside a function — and
every `import_module("...")` of a literal name (the package root's lazy names included), except
those under `if TYPE_CHECKING:` (types only, never run). Python also runs a package's
`__init__` before any module in it; that is checked by importing the server in a fresh process."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "featurestore_py" / "featurestore"
# what the offline side is: the server must reach none of it, not even through another module
OFFLINE = ("featurestore.warehouse", "featurestore.retrieval", "featurestore.sync", "featurestore.dbt",
           "featurestore.profiles", "featurestore.sql", "featurestore.entity_frame", "featurestore.quality",
           "featurestore.validate", "featurestore.store", "featurestore.catalog", "featurestore.feast_import")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (child for branch in node.orelse for child in _imports_of(branch))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "import_module" \
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        name = node.args[0].value  # import_module(".x", __package__) is `from . import x`
        level = len(name) - len(name.lstrip("."))
        yield ast.ImportFrom(module=None, names=[ast.alias(name.lstrip("."))], level=level) if level else \
            ast.Import(names=[ast.alias(name)])
    yield from _imports(node)


def _lazy_names(tree: ast.AST):
    """The package root's `_LAZY = {name: ".module"}`: imported on first use of the name."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            for value in node.value.values:
                yield ast.ImportFrom(module=None, names=[ast.alias(value.value.lstrip("."))], level=1)


def imported(name: str) -> set[str]:
    """The package's modules that `name` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in [*_imports(tree), *_lazy_names(tree)]:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import pages` names a module; `from .registry import Registry` a name in one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imported(name) for name in MODULES}


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_graph_is_read():
    # a test over an empty graph could not fail
    assert len(MODULES) > 40
    assert "featurestore.requests" in GRAPH["featurestore.online.reader"]
    assert "featurestore.landing" in GRAPH["featurestore.push"]
    assert "featurestore.store" in GRAPH["featurestore"]  # a lazy name of the root is an edge too


def test_no_import_circles():
    circles = sorted({tuple(sorted(reachable(name) & {m for m in MODULES if name in reachable(m)} | {name}))
                      for name in MODULES if name in reachable(name)})
    assert not circles, "modules that import each other (directly or through others): " + "; ".join(
        " <-> ".join(circle) for circle in circles)


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.startswith("featurestore.server")))
def test_the_server_reaches_nothing_offline(module):
    offline = sorted(target for target in reachable(module) if target.startswith(OFFLINE))
    assert not offline, f"{module} reaches the offline side: {', '.join(offline)}"


def test_importing_the_server_loads_nothing_offline():
    """In a fresh process: the package root runs first, and must not pull the offline side in."""
    code = ("import sys, featurestore.server, featurestore.server.app, featurestore.server.serving; "
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('featurestore'))))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert "featurestore.server.app" in loaded
    assert not [name for name in loaded if name.startswith(OFFLINE) and name != "featurestore.validate"], loaded


def test_only_the_cli_imports_the_facade():
    importers = sorted(name for name, targets in GRAPH.items() if "featurestore.store" in targets)
    assert importers == ["featurestore", "featurestore.cli"]


def test_nothing_imports_the_cli():
    assert not [name for name, targets in GRAPH.items() if "featurestore.cli" in targets]


@pytest.mark.parametrize("module", ["featurestore.registry", "featurestore.requests", "featurestore.types",
                                    "featurestore.durations", "featurestore.online.reader"])
def test_the_rules_know_no_warehouse(module):
    assert not sorted(target for target in reachable(module) if target.startswith(OFFLINE))
