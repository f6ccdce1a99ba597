"""Request-time (on-demand) features: the rules of their expressions, for the offline side, the
online reader and `validate` alike.

An on-demand feature is one SQL expression (its column's `meta: featurestore: expression`) in the
project's engine's SQL, over the request fields and the input features of its on-demand view, each
by its bare name. Offline the warehouse evaluates it as written, over the point-in-time rows
(`sql/point_in_time.sql`); online embedded DuckDB evaluates the same expression transpiled by
sqlglot from the engine's dialect (online/ondemand.py). Both cast the result to the declared
data_type and both see the request fields cast to their declared types.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from .errors import FeatureStoreError
from .registry import Feature, OnDemandView

# the engine's name (manifest adapter_type) -> sqlglot's dialect
SQLGLOT_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark", "databricks": "databricks"}
SCOPE = "_fs_inputs"  # the relation of the request fields and inputs an expression is evaluated over online


class ExpressionError(FeatureStoreError):
    """An on-demand feature's expression that cannot be parsed, or not transpiled to DuckDB."""


def bare_name(reference: str) -> str:
    """`customer_features:avg_order_value_30d` -> `avg_order_value_30d`: how an expression names an input."""
    return reference.partition(":")[2]


def scope(view: OnDemandView) -> dict[str, str]:
    """The names an expression of `view` may use -> what they are ('request field' or the input's reference)."""
    names = {name: "request field" for name in view.request}
    names.update({bare_name(reference): reference for reference in view.inputs})
    return names


def _dialect(engine: str) -> str:
    try:
        return SQLGLOT_DIALECTS[engine]
    except KeyError:
        raise ExpressionError(f"On-demand features are not supported on the '{engine}' engine "
                              f"(no SQL dialect for it in featurestore.ondemand.SQLGLOT_DIALECTS).") from None


@lru_cache(maxsize=1024)
def parse(expression: str, engine: str) -> exp.Expression:
    """The expression's syntax tree in the engine's dialect; ExpressionError if it is not one expression."""
    try:
        tree = sqlglot.parse_one(expression, read=_dialect(engine))
    except sqlglot.errors.ParseError as exc:
        raise ExpressionError(f"cannot be parsed as {engine} SQL: {str(exc).splitlines()[0]}") from None
    if isinstance(tree, (exp.Query, exp.Command)) or tree.find(exp.Query) is not None:
        raise ExpressionError("must be one SQL expression over the request fields and inputs, not a query")
    return tree


def referenced_names(expression: str, engine: str) -> list[str]:
    """The column names the expression reads (unqualified), in order of first use."""
    names: list[str] = []
    for column in parse(expression, engine).find_all(exp.Column):
        if column.table:
            raise ExpressionError(f"refers to '{column.sql()}'; name request fields and inputs without a table")
        if column.name not in names:
            names.append(column.name)
    return names


@lru_cache(maxsize=1024)
def duckdb_cast(expression: str, dtype: str, engine: str, scope_types: tuple[tuple[str, str | None], ...] = ()) -> str:
    """`cast((expression) as dtype)` transpiled from the engine's SQL to DuckDB's, for the online
    reader, over the relation `_fs_inputs` whose columns are scope_types ((name, declared type)).
    The types make the translation exact where the engines differ by operand type: PostgreSQL's
    integer / integer truncates, DuckDB's does not (sqlglot writes it as DuckDB's truncation)."""
    dialect = _dialect(engine)
    schema = {SCOPE: {name: _read_as(kind, engine) if kind else "unknown" for name, kind in scope_types}}
    source = f"select cast(({expression}) as {_read_as(dtype, engine)}) from {SCOPE}"
    try:
        tree = sqlglot.parse_one(source, read=dialect)
        if scope_types:
            tree = annotate_types(qualify(tree, schema=schema, dialect=dialect, quote_identifiers=False,
                                          validate_qualify_columns=False), schema=schema, dialect=dialect)
        return tree.selects[0].unalias().sql("duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        raise ExpressionError(f"cannot be evaluated online (DuckDB): {str(exc).splitlines()[0]}") from None


def check_in_duckdb(duckdb_sql: str, scope_types: tuple[tuple[str, str | None], ...]) -> None:
    """Bind a translated expression in an in-memory DuckDB over typed NULLs, as the online reader
    will run it: a function DuckDB does not have (a translation sqlglot passes through) is an
    ExpressionError now, not a failed read later. Scope types DuckDB cannot spell are not checked."""
    import duckdb

    columns = ", ".join(f'cast(null as {kind}) as "{name}"' for name, kind in scope_types if kind) or "1 as _fs_none"
    try:
        duckdb.connect().execute(f"select {duckdb_sql} from (select {columns}) as {SCOPE} limit 0")
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        if "Type with name" in str(exc):  # a declared type DuckDB does not spell: nothing to say about the expression
            return
        raise ExpressionError(f"cannot be evaluated online (DuckDB): {str(exc).splitlines()[0]}") from None
    except duckdb.Error:
        return


def _read_as(dtype: str, engine: str) -> str:
    """A declared type as the translation reads it: the engine's spelling, but Spark's `timestamp`
    (session-local) as `timestamp_ntz`: our Spark sessions run in UTC, where the two agree, and
    DuckDB's naive UTC timestamps are the latter."""
    spelled = column_type(dtype, engine)
    if engine in ("spark", "databricks") and spelled.strip().lower() in ("timestamp", "timestamp_ltz"):
        return "timestamp_ntz"
    return spelled


def scope_types(view: OnDemandView, input_types: dict[str, str | None]) -> tuple[tuple[str, str | None], ...]:
    """(name, declared type) of everything an expression of `view` may name: its request fields,
    then its inputs by bare name (input_types: reference -> the input feature's data_type)."""
    return tuple(view.request.items()) + tuple((bare_name(reference), input_types.get(reference))
                                               for reference in view.inputs)


def column_type(dtype: str, engine: str) -> str:
    """A YAML data_type as the engine spells it: the rule of the macro `featurestore.column_type`
    (macros/push.sql, macros/spark.sql), proven equal by tests/unit/test_registry_parity.py."""
    name = dtype.strip().lower()
    if engine == "postgres":
        return "double precision" if name == "double" else "text" if name == "string" else dtype
    if engine not in ("spark", "databricks"):
        return dtype
    if name == "double precision":
        return "double"
    if name == "text" or name.startswith("varchar") or name.startswith("character varying"):
        return "string"
    return dtype


def expression_of(view: OnDemandView, feature: Feature) -> str:
    expression = view.expression(feature)
    if not expression:
        raise ExpressionError(f"On-demand feature '{view.name}:{feature.name}' ({view.yaml_path}) has no expression.")
    return expression
