"""Read a Feast feature repository without Feast and without running its code.

Feast's `feast apply` imports every Python file of the repository and registers the module-level
objects it finds. This reader parses the same files with `ast` and evaluates only what a
definition is made of: literals, lists, dicts, module-level names (also those imported from
another file of the repository), `timedelta(...)`, `view[["feature", ...]]` and calls of
Feast's constructors (`Entity`, `FileSource`, `FeatureView`, ...), which become `Call`s. Anything
else becomes an `Unresolved` value that remembers its file and line, so the importer can say
exactly what it could not translate instead of guessing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import FeatureStoreError


@dataclass(frozen=True)
class Where:
    """A place in the Feast repository: file (relative to the repository) and line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(eq=False)
class Call:
    """A call of a Feast constructor (or of anything else): its last name, arguments and place."""

    name: str
    args: list
    kwargs: dict
    where: Where
    bound_to: str | None = None  # the first module-level name it was assigned to

    def get(self, key: str, position: int | None = None, default: Any = None) -> Any:
        if key in self.kwargs:
            return self.kwargs[key]
        if position is not None and position < len(self.args):
            return self.args[position]
        return default


@dataclass(frozen=True)
class Unresolved:
    """An expression the reader does not evaluate (a function call, arithmetic, a comprehension...)."""

    text: str
    where: Where
    why: str = "not a literal, a module-level name or a Feast definition"

    def __str__(self) -> str:
        return f"`{self.text}` at {self.where} ({self.why})"


@dataclass(frozen=True)
class Projection:
    """`view[["f1", "f2"]]`: some features of a view, as a feature service lists them."""

    view: Any
    features: tuple


@dataclass(frozen=True)
class Decorated:
    """A function defined with a decorator such as `@on_demand_feature_view(...)`."""

    name: str
    decorator: str
    where: Where
    call: Call | None


@dataclass
class Module:
    path: Path
    relative: str
    tree: ast.Module
    bindings: dict = field(default_factory=dict)  # name -> ast node (assignment value or FunctionDef)
    imported: dict = field(default_factory=dict)  # local name -> the imported name (`from feast import Entity`)


class RepoReader:
    """Evaluate the module-level definitions of every Python file of a Feast repository."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.modules: list[Module] = []
        self._values: dict[tuple[str, str], Any] = {}
        self._evaluating: set[tuple[str, str]] = set()
        for path in sorted(repo.rglob("*.py")):
            if any(part.startswith(".") or part in ("__pycache__", "venv") for part in path.relative_to(repo).parts):
                continue
            self.modules.append(self._parse(path))

    def _parse(self, path: Path) -> Module:
        relative = str(path.relative_to(self.repo))
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        except SyntaxError as exc:
            raise FeatureStoreError(f"{relative}:{exc.lineno}: not valid Python ({exc.msg}); Feast could not "
                                    "import it either.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FeatureStoreError(f"Cannot read {relative}: {exc}") from None
        module = Module(path, relative, tree)
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        module.bindings[target.id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                module.bindings[node.target.id] = node.value
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
                module.bindings[node.name] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    module.imported[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[-1]
        return module

    def definitions(self) -> list[tuple[str, Any]]:
        """Every module-level (name, value), in file and line order — what `feast apply` registers."""
        found = []
        for module in self.modules:
            for name in module.bindings:
                found.append((name, self.value(module, name)))
        return found

    def value(self, module: Module, name: str) -> Any:
        key = (module.relative, name)
        if key in self._values:
            return self._values[key]
        if key in self._evaluating:  # a cycle: leave it to the report
            node = module.bindings[name]
            return Unresolved(name, Where(module.relative, node.lineno), "defined in terms of itself")
        self._evaluating.add(key)
        node = module.bindings[name]
        value = self._decorated(module, node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
            else self._eval(module, node)
        if isinstance(value, Call) and value.bound_to is None:
            value.bound_to = name
        self._evaluating.discard(key)
        self._values[key] = value
        return value

    def _lookup(self, module: Module, name: str, node: ast.AST) -> Any:
        if name in module.bindings:
            return self.value(module, name)
        original = module.imported.get(name)
        if original is not None:
            # imported from another file of the repository (`from definitions import driver`) ...
            for other in self.modules:
                if other is not module and original in other.bindings:
                    return self.value(other, original)
            return Symbol(original)  # ... or from a library (`from feast.types import Float32`)
        return Unresolved(name, self._where(module, node), "a name not defined at module level in the repository")

    def _where(self, module: Module, node: ast.AST) -> Where:
        return Where(module.relative, getattr(node, "lineno", 0))

    def _decorated(self, module: Module, node: ast.FunctionDef) -> Decorated:
        decorator = node.decorator_list[0]
        call = self._eval(module, decorator) if isinstance(decorator, ast.Call) else None
        name = _callee(decorator.func if isinstance(decorator, ast.Call) else decorator)
        return Decorated(node.name, name, self._where(module, node), call if isinstance(call, Call) else None)

    def _eval(self, module: Module, node: ast.AST) -> Any:
        where = self._where(module, node)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(module, item) for item in node.elts]
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                return Unresolved(ast.unparse(node), where, "a `**` inside a dict")
            return {self._eval(module, k): self._eval(module, v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Name):
            return self._lookup(module, node.id, node)
        if isinstance(node, ast.Attribute):
            # `types.Float32`, `ValueType.INT64`: a library's name, known by its last part
            if isinstance(node.value, ast.Name) and node.value.id in module.bindings:
                return Unresolved(ast.unparse(node), where, "an attribute of a repository object")
            return Symbol(node.attr)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self._eval(module, node.left), self._eval(module, node.right)
            if isinstance(left, str) and isinstance(right, str):
                return left + right
            return Unresolved(ast.unparse(node), where, "arithmetic other than joining two strings")
        if isinstance(node, ast.Subscript):
            return self._subscript(module, node, where)
        if isinstance(node, ast.Call):
            return self._call(module, node, where)
        return Unresolved(ast.unparse(node), where)

    def _subscript(self, module: Module, node: ast.Subscript, where: Where) -> Any:
        base = self._eval(module, node.value)
        index = self._eval(module, node.slice)
        if isinstance(base, Call) and isinstance(index, list) and all(isinstance(i, str) for i in index):
            return Projection(base, tuple(index))
        return Unresolved(ast.unparse(node), where, "a subscript other than view[[\"feature\", ...]]")

    def _call(self, module: Module, node: ast.Call, where: Where) -> Any:
        name = _callee(node.func)
        if name is None:
            return Unresolved(ast.unparse(node), where, "a call of something that is not a plain name")
        if any(isinstance(arg, ast.Starred) for arg in node.args) or any(kw.arg is None for kw in node.keywords):
            return Unresolved(ast.unparse(node), where, "a call with *args or **kwargs")
        args = [self._eval(module, arg) for arg in node.args]
        kwargs = {kw.arg: self._eval(module, kw.value) for kw in node.keywords}
        if name == "timedelta":
            return _timedelta(args, kwargs, ast.unparse(node), where)
        if name[:1].isupper():  # a class: Feast's constructors and types (Field, Array(String) ...)
            return Call(name, args, kwargs, where)
        return Unresolved(ast.unparse(node), where, "a call of a function (only Feast classes are read)")


@dataclass(frozen=True)
class Symbol:
    """A dotted name's last part that is not a repository object (`Float32`, `ValueType.INT64`)."""

    name: str


def _callee(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _timedelta(args: list, kwargs: dict, text: str, where: Where) -> Any:
    names = ("days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks")
    values = dict(zip(names, args))
    values.update(kwargs)
    if set(values) - set(names) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           for v in values.values()):
        return Unresolved(text, where, "timedelta with arguments that are not numbers")
    return timedelta(**values)

