"""The package's macro files rendered with plain jinja2, no dbt: enough of dbt's context
(`return`, `exceptions`, the `featurestore` namespace) to call pure macros like _parse_duration."""

from __future__ import annotations

from pathlib import Path

import jinja2

MACROS = Path(__file__).resolve().parents[2] / "macros"


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


class MacroNamespace:
    """`featurestore.<macro>(...)`: calls a macro and returns what it `return()`s (else its text)."""

    def __init__(self, *files: str):
        environment = jinja2.Environment(extensions=["jinja2.ext.do"])
        environment.globals.update({"return": _return, "exceptions": _Exceptions(), "featurestore": self})
        self._macros = {}
        for name in files:
            template = environment.from_string((MACROS / name).read_text())
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
