"""All SQL the Python package generates, as jinja2 templates: one per query family, with
dialect variants as `{% if dialect == ... %}` blocks inside it. Rendered through a Warehouse
(`warehouse.render`), which supplies its dialect and bind-parameter marker.

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


def render(template: str, **context) -> str:
    """Render `sql/<template>.sql.j2`."""
    return _environment().get_template(f"{template}.sql.j2").render(**context).strip() + "\n"
