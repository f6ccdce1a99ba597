"""All SQL the Python package generates, as jinja2 templates: one per query family, with
dialect variants as `{% if dialect == ... %}` blocks inside it. Rendered through a Warehouse
(`warehouse.render`), which supplies its dialect and bind-parameter marker.

A template that dbt runs too is a macro file, `<name>.sql`, holding a macro `<name>` (this
folder is one of the dbt package's macro-paths): the SDK calls that macro with the same
arguments dbt does, identifiers quoted by `quote`. One copy of the SQL, two callers.

Templates receive identifiers already checked and quote them with the `ident` filter; values
never enter the SQL text (they are bind parameters or loaded relations).
"""

from __future__ import annotations

from functools import lru_cache

import jinja2


def quote_identifier(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("featurestore", "sql"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["ident"] = quote_identifier
    return environment


class _Package:
    """`featurestore.<macro>` inside a shared macro file resolves here as it does in dbt."""

    def __init__(self):
        self.macros = {}

    def __getattr__(self, name):
        try:
            return self.__dict__["macros"][name]
        except KeyError:
            raise AttributeError(name) from None


@lru_cache(maxsize=None)
def _shared_module(template: str) -> _Package:
    """The macros of `sql/<template>.sql`, private ones (`_name`) included: jinja2's template
    module would hide those, and dbt calls them as featurestore._name."""
    package = _Package()
    source = _environment().get_template(f"{template}.sql")
    context = source.new_context({"featurestore": package})
    for _ in source.root_render_func(context):  # running the file defines its macros
        pass
    package.macros = dict(context.vars)
    return package


def render(template: str, **context) -> str:
    """Render `sql/<template>.sql.j2`, or call the macro of `sql/<template>.sql` (shared with dbt)
    with the arguments it declares."""
    environment = _environment()
    try:
        macro = getattr(_shared_module(template), template)
    except jinja2.TemplateNotFound:
        return environment.get_template(f"{template}.sql.j2").render(**context).strip() + "\n"
    arguments = {name: context[name] for name in macro.arguments if name in context}
    return str(macro(**{**arguments, "quote": quote_identifier})).strip() + "\n"
