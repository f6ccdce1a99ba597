"""All SQL the Python package generates, as jinja2 templates: one per query family. Where engines
spell something differently, the template calls a piece of the engine's dialect file,
`dialects/<dialect>.sql.j2`, as `d.<piece>(...)`; a dialect without that piece fails with an
error naming it, never with another engine's SQL. Rendered through a Warehouse
(`warehouse.render`), which supplies its dialect and bind-parameter marker.

A template that dbt runs too is a macro file, `<name>.sql`, holding a macro `<name>` (this
folder is one of the dbt package's macro-paths): the SDK calls that macro with the same
arguments dbt does, identifiers quoted by `quote`. One copy of the SQL, two callers.

Templates receive identifiers already checked and quote them with the `ident` filter (the
dialect's quote character); values never enter the SQL text (they are bind parameters or
loaded relations).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import jinja2


from ..errors import FeatureStoreError

# The identifier quote of each dialect (SQL standard: double quotes; Spark SQL: backticks).
_QUOTES = {"duckdb": '"', "postgres": '"', "spark": "`"}


class DialectError(FeatureStoreError):
    """The engine's dialect lacks a piece of SQL a template needs."""


def quote_identifier(name: str, dialect: str) -> str:
    """`name` as a quoted identifier of `dialect` (the quote character doubled inside)."""
    try:
        mark = _QUOTES[dialect]
    except KeyError:
        raise DialectError(f"No identifier quoting is defined for the '{dialect}' dialect (featurestore.sql._QUOTES).") from None
    return mark + str(name).replace(mark, mark * 2) + mark


class _Exceptions:
    """dbt's `exceptions.raise_compiler_error`, for the macro files the SDK renders too."""

    @staticmethod
    def raise_compiler_error(message: str):
        raise DialectError(message)


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """The templates compiled once per machine rather than once per process (point_in_time.sql
    alone takes tens of milliseconds to compile, a share of a small export): jinja2's bytecode
    cache in its own per-user folder of the temporary directory (jinja2 refuses one another user
    owns or may write). jinja2 keys an entry by the template's name and source checksum, its own
    cache format and Python's version; the file name adds what else shapes the compiled code
    (_shaping). A cache that cannot be read or written is no cache: the template is compiled as
    before."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged file (cut short: UnpicklingError, EOFError, ...) is a miss
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _shaping() -> tuple:
    """What shapes a template's compiled code besides its source: jinja2's version, this
    package's, the environment's options and its filters (whether a filter takes the context
    is decided when compiling)."""
    from importlib.metadata import version

    from ..version import __version__

    return (version("jinja2"), __version__, sorted(_OPTIONS.items(), key=str),
            sorted((name, repr(getattr(function, "jinja_pass_arg", None))) for name, function in _FILTERS.items()))


_OPTIONS = {"undefined": jinja2.StrictUndefined, "trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}


def _template_cache() -> jinja2.BytecodeCache | None:
    shaped_by = hashlib.sha256(repr(_shaping()).encode())
    try:
        return _TemplateCache(pattern=f"__featurestore-{shaped_by.hexdigest()[:16]}-%s.cache")
    except (OSError, RuntimeError):
        return None


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("featurestore", "sql"),
        bytecode_cache=_template_cache(),
        **_OPTIONS,
    )
    environment.filters.update(_FILTERS)
    return environment


_FILTERS = {"ident": jinja2.pass_context(lambda context, name: quote_identifier(name, context["dialect"]))}


@lru_cache(maxsize=None)
def _dialect(dialect: str):
    """The pieces of `dialects/<dialect>.sql.j2`, as `d` inside templates."""
    try:
        return _environment().get_template(f"dialects/{dialect}.sql.j2").module
    except jinja2.TemplateNotFound:
        raise DialectError(f"featurestore has no SQL dialect '{dialect}' (featurestore/sql/dialects/{dialect}.sql.j2).") from None


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
    context = source.new_context({"featurestore": package, "exceptions": _Exceptions})
    for _ in source.root_render_func(context):  # running the file defines its macros
        pass
    package.macros = dict(context.vars)
    return package


def render(template: str, dialect: str, **context) -> str:
    """Render `sql/<template>.sql.j2` in `dialect`, or call the macro of `sql/<template>.sql`
    (shared with dbt) with the arguments it declares."""
    environment = _environment()
    quote = lambda name: quote_identifier(name, dialect)  # noqa: E731
    context = {**context, "dialect": dialect}
    try:
        try:
            macro = getattr(_shared_module(template), template)
        except jinja2.TemplateNotFound:
            text = environment.get_template(f"{template}.sql.j2").render(d=_dialect(dialect), **context)
            return text.strip() + "\n"
        arguments = {name: context[name] for name in macro.arguments if name in context}
        return str(macro(**{**arguments, "quote": quote})).strip() + "\n"
    except jinja2.UndefinedError as exc:
        if "TemplateModule" not in (exc.message or ""):  # not a piece of `d`: a template's own mistake
            raise
        raise DialectError(f"The SQL template '{template}' needs a piece the '{dialect}' dialect does not define "
                           f"({exc.message}); add it to featurestore/sql/dialects/{dialect}.sql.j2.") from None


def piece(dialect: str, name: str, *arguments) -> str:
    """One piece of a dialect's SQL (e.g. how a warehouse loads rows), for the warehouse modules."""
    try:
        macro = getattr(_dialect(dialect), name)
    except AttributeError:
        raise DialectError(f"The '{dialect}' dialect has no SQL piece '{name}' "
                           f"(featurestore/sql/dialects/{dialect}.sql.j2).") from None
    return str(macro(*arguments)).strip()
