"""On-demand features online: each expression transpiled from the project's engine's SQL to
DuckDB's once (featurestore.ondemand.duckdb_cast), then evaluated by embedded DuckDB on the
feature vectors just read plus the request's fields — one query per request for every row and
feature, over a VALUES list of bind parameters: the request fields and the inputs (by bare
name), each cast to the DuckDB type of its declared type. (Bind parameters, measured: a third
of the time of registering an Arrow table per request.) One in-memory DuckDB per reader, a
cursor per thread.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping, Sequence

import pyarrow as pa

from .. import ondemand, types
from ..errors import RequestError
from ..requests import OnDemandRequest



class RequestFieldError(RequestError):
    """A request field that is missing, or whose values are not of its declared type."""


class OnDemandEvaluator:
    """Evaluates on-demand features on vectors. engine: the project's (manifest adapter_type)."""

    def __init__(self, engine: str):
        import duckdb

        self.engine = engine
        self._database = duckdb.connect(":memory:")
        self._database.execute("set threads = 1")  # one row: threads only add to its time
        self._local = threading.local()
        self._lock = threading.Lock()
        self._queries: dict[tuple, str] = {}

    def _cursor(self):
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            with self._lock:  # DuckDB's cursor() on one connection from several threads at once
                cursor = self._local.cursor = self._database.cursor()
                # a one-row query: planning is most of its time, and the optimizer (which changes
                # no result) only adds to it (measured: ~40% less). A connection's own setting.
                cursor.execute("pragma disable_optimizer")
                self._local.statements = {}
        return cursor

    def _statement(self, cursor, sql: str):
        """The query parsed once per thread: parsing is a third of a one-row query's time (measured)."""
        statement = self._local.statements.get(sql)
        if statement is None:
            if len(self._local.statements) > 64:  # a statement per request shape (row count): bounded per thread
                self._local.statements.clear()
            statement = self._local.statements[sql] = cursor.extract_statements(sql)[0]
        return statement

    def query(self, requests: Sequence[OnDemandRequest], scope: Sequence[tuple[str, str | None]], rows: int) -> str:
        """The DuckDB select of every requested on-demand feature, in order, over `rows` rows of
        bind parameters, one per scope column (name, declared type) and row (cached per shape)."""
        key = (tuple((request.view.name, request.features) for request in requests), tuple(scope), rows)
        sql = self._queries.get(key)
        if sql is None:
            types = dict(scope)
            items = []
            for request in requests:
                names_and_types = tuple((name, types.get(name)) for name in [*dict(request.request), *dict(request.inputs)])
                for name, _ in request.features:
                    feature = request.view.feature(name)
                    items.append(ondemand.duckdb_cast(ondemand.expression_of(request.view, feature), feature.dtype,
                                                      self.engine, names_and_types) + f" as _fs_o{len(items)}")
            if rows == 1:  # the one-entity read: the parameters in place of the columns, no relation to bind
                sql = "select " + ", ".join(_with_parameters(item, scope, self.engine) for item in items)
            else:
                width = len(scope)
                values = ", ".join(
                    "(" + ", ".join(_parameter(row * width + column + 1, dtype, self.engine)
                                    for column, (_, dtype) in enumerate(scope)) + ")" for row in range(rows))
                names = ", ".join('"' + name.replace('"', '""') + '"' for name, _ in scope)
                sql = f"select {', '.join(items)} from (values {values}) as {ondemand.SCOPE}({names})"
            if len(self._queries) > 256:
                self._queries.clear()
            self._queries[key] = sql
        return sql

    def evaluate(self, requests: Sequence[OnDemandRequest], request_fields: Mapping[str, list],
                 inputs: Mapping[str, tuple[str | None, list]], rows: int) -> list[list]:
        """One list of values per requested on-demand feature (in order), one value per row.

        request_fields: field -> values (already checked by `request_values`); inputs: bare name
        -> (declared type, values as the online store decoded them; None where there was none)."""
        import duckdb

        scope: dict[str, tuple[str | None, list]] = {}
        for request in requests:
            for name, dtype in request.request:
                scope.setdefault(name, (dtype, request_fields[name]))
        for bare, (dtype, values) in inputs.items():
            scope.setdefault(bare, (dtype, values))
        if rows == 0:
            return [[] for request in requests for _ in request.features]
        if not scope:
            scope = {"_fs_none": (None, [None] * rows)}
        columns = [(name, dtype) for name, (dtype, _) in scope.items()]
        parameters = [_plain(values[row]) for row in range(rows) for _, values in scope.values()]
        try:
            cursor = self._cursor()
            result = cursor.execute(self._statement(cursor, self.query(requests, columns, rows)), parameters).fetchall()
        except duckdb.Error as exc:
            features = ", ".join(f"{r.view.name}:{name}" for r in requests for name, _ in r.features)
            raise RequestError(f"The on-demand feature(s) {features} cannot be computed for these values: "
                               f"{str(exc).splitlines()[0]}") from None
        return [list(column) for column in zip(*result)]


def _with_parameters(item: str, scope: Sequence[tuple[str, str | None]], engine: str) -> str:
    """An item of the select over one row, each column of the scope replaced by its bind parameter
    (measured: a third less time than a one-row VALUES relation)."""
    import sqlglot
    from sqlglot import exp

    numbers = {name: index + 1 for index, (name, _) in enumerate(scope)}
    dtypes = dict(scope)

    def parameter(node):
        if isinstance(node, exp.Column) and node.table in (ondemand.SCOPE, "") and node.name in numbers:
            return sqlglot.parse_one(_parameter(numbers[node.name], dtypes[node.name], engine), read="duckdb")
        return node

    return sqlglot.parse_one(item, read="duckdb").transform(parameter).sql("duckdb")


def _parameter(number: int, dtype: str | None, engine: str) -> str:
    """A bind parameter of a scope column, cast to the DuckDB type of its declared type."""
    kind = types.declared_arrow_type(dtype, engine)
    return f"${number}" if kind is None else f"cast(${number} as {_duckdb_type(kind)})"


def _duckdb_type(kind: pa.DataType) -> str:
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision}, {kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamp"  # naive UTC, as the warehouse's (a zone is taken off on the way in)
    names = {pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
             pa.uint8(): "utinyint", pa.uint16(): "usmallint", pa.uint32(): "uinteger", pa.uint64(): "ubigint",
             pa.float32(): "float", pa.float64(): "double", pa.bool_(): "boolean", pa.string(): "varchar",
             pa.date32(): "date"}
    return names.get(kind, "varchar")


def _plain(value: Any) -> Any:
    """A value as DuckDB binds it: a timestamp with a zone as naive UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def request_values(requests: Sequence[OnDemandRequest], fields: Mapping[str, str | None],
                   entities: Mapping[str, Sequence[Any]], engine: str, from_text: bool = False) -> dict[str, list]:
    """The request fields' values from the entity columns, each checked against its declared
    type (RequestFieldError naming the field, the row and the type); a timestamp with a zone is
    taken as its UTC instant, one without as UTC, an ISO 8601 string as such. from_text: the
    values are text (a command line): numbers and booleans are read from it first."""
    values = {}
    for name, dtype in fields.items():
        if from_text and name in entities:
            entities = {**entities, name: [_from_text(text, dtype, engine) for text in entities[name]]}
        if name not in entities:
            features = ", ".join(f"{r.view.name}:{feature}" for r in requests for feature, _ in r.features
                                 if name in ondemand.referenced_names(ondemand.expression_of(r.view, r.view.feature(feature)), engine))
            raise RequestFieldError(f"The request needs the field '{name}' ({dtype}) for the on-demand feature(s) "
                                    f"{features}; send it with the entity rows.")
        kind = types.declared_arrow_type(dtype, engine)
        column = [_request_value(name, index, value, kind) for index, value in enumerate(entities[name])]
        try:
            pa.array(column, kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            raise RequestFieldError(f"Request field '{name}' must hold {dtype} values; got "
                                    f"{', '.join(repr(value) for value in entities[name][:3])}.") from None
        values[name] = column
    return values


def _from_text(text: Any, dtype: str | None, engine: str) -> Any:
    """A number or boolean typed on a command line as that value (text that is not one is left
    for the check to refuse, naming it)."""
    kind = types.declared_arrow_type(dtype, engine)
    family = types.family(kind) if kind is not None else None
    try:
        if family == types.INTEGER:
            return int(text)
        if family in (types.FLOAT, types.DECIMAL):
            return float(text) if family == types.FLOAT else Decimal(text)
    except (ValueError, ArithmeticError):
        return text
    if family == types.BOOLEAN and str(text).lower() in ("true", "false"):
        return str(text).lower() == "true"
    return text


def _request_value(name: str, index: int, value: Any, kind: pa.DataType | None) -> Any:
    if value is None or kind is None:
        return value
    family = types.family(kind)
    def wrong() -> RequestFieldError:  # built only when raised (a request's path)
        return RequestFieldError(f"Request field '{name}' row {index}: {value!r} is not a {types.describe(kind)}.")

    if isinstance(value, bool) and family != types.BOOLEAN:
        raise wrong()
    if family in (types.FLOAT, types.INTEGER, types.DECIMAL):
        if not isinstance(value, (int, float, Decimal)) or (
                family == types.INTEGER and isinstance(value, float) and not value.is_integer()):
            raise wrong()
        return Decimal(str(value)) if family == types.DECIMAL else value
    if family == types.BOOLEAN and not isinstance(value, bool):
        raise wrong()
    if family == types.STRING and not isinstance(value, str):
        raise wrong()
    if family == types.TIMESTAMP:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise wrong() from None
        if not isinstance(value, datetime):
            raise wrong()
        if value.tzinfo is not None:
            try:
                value = value.astimezone(timezone.utc)
            except OverflowError:
                raise wrong() from None
            return value if kind.tz else value.replace(tzinfo=None)
        return value.replace(tzinfo=timezone.utc) if kind.tz else value
    return value
