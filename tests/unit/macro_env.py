"""The package's macro files rendered with plain jinja2, no dbt: enough of dbt's context
(`return`, `exceptions`, the `featurestore` namespace, `adapter.dispatch`) to call pure macros
like _parse_duration, and, given a `graph` (a manifest's dict, which is what dbt's graph is),
the macros that read the registry from it."""

from __future__ import annotations

from pathlib import Path

import jinja2

MACROS = Path(__file__).resolve().parents[2] / "macros"
_COMPILED = {}  # file name -> the compiled template code


class CompilerError(Exception):
    pass


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Exceptions:
    @staticmethod
    def raise_compiler_error(message):
        raise CompilerError(message)


def _return(value):
    raise _Return(value)


class Column:
    def __init__(self, name):
        self.name = name


class Adapter:
    """dbt's `adapter` as far as these macros use it: dispatch (`<type>__name`, then
    `default__name`, in this package), its type, and the columns of a relation."""

    def __init__(self, namespace: "MacroNamespace", adapter_type: str, relation_columns):
        self._namespace = namespace
        self._type = adapter_type
        self._relation_columns = relation_columns

    def dispatch(self, name, macro_namespace):
        assert macro_namespace == "featurestore", macro_namespace
        for prefix in (self._type, "default"):
            if f"{prefix}__{name}" in self._namespace._macros:
                return getattr(self._namespace, f"{prefix}__{name}")
        raise AttributeError(f"no macro {name} to dispatch")

    def type(self):
        return self._type

    def get_columns_in_relation(self, relation):
        return [Column(name) for name in self._relation_columns.get(relation, [])]


class MacroNamespace:
    """`featurestore.<macro>(...)`: calls a macro and returns what it `return()`s (else its text).

    dbt_context: more of dbt's context as globals (`graph`, `execute`, `model`, `ref`);
    relation_columns: {relation: [column, ...]} for adapter.get_columns_in_relation."""

    def __init__(self, *files: str, adapter_type: str = "duckdb", relation_columns=None, **dbt_context):
        environment = jinja2.Environment(extensions=["jinja2.ext.do"])
        environment.globals.update({"return": _return, "exceptions": _Exceptions(), "featurestore": self,
                                    "adapter": Adapter(self, adapter_type, relation_columns or {}), **dbt_context})
        self._macros = {}
        for name in files:
            if name not in _COMPILED:  # compiling is most of the time; the code is the same for every context
                _COMPILED[name] = environment.compile((MACROS / name).read_text(), name)
            template = environment.template_class.from_code(environment, _COMPILED[name],
                                                            environment.make_globals(None))
            context = template.new_context()
            list(template.root_render_func(context))  # defines the macros, private ones included
            self._macros.update(context.vars)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        for macro in [self._macros.get(name)]:
            if macro is not None:
                def call(*args, **kwargs):
                    try:
                        return str(macro(*args, **kwargs)).strip()
                    except _Return as returned:
                        return returned.value
                return call
        raise AttributeError(name)
