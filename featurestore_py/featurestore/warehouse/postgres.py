"""PostgreSQL, through psycopg2, with the credentials of the dbt-postgres target.

SQL a user hands us is parsed with PostgreSQL's own parser (libpg_query, through pglast) and
must be exactly one SELECT with no INTO, no locking clause and no data-modifying WITH, whose
functions and relations pass the allow-list (warehouse/allowlist.py) on this parse tree and on
sqlglot's; it then runs only inside READ ONLY transactions (the temporary table it fills is
created by us first) with a statement_timeout, and as the entity role if one is configured.
"""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa

from ..errors import FeatureStoreError
from ..interrupts import interrupt_on_sigint
from . import STREAM_BATCH_ROWS, UserQueryError, UserQueryTimeout, Warehouse, WarehouseError, allowlist

# Arrow type -> PostgreSQL column type, for loading frames: the narrowest that holds every
# value, so a frame's column comes back as it went in (PostgreSQL has no 8-bit or unsigned integer).
_PG_TYPES = [
    (pa.types.is_boolean, "boolean"),
    (lambda kind: kind in (pa.int8(), pa.int16(), pa.uint8()), "smallint"),
    (lambda kind: kind in (pa.int32(), pa.uint16()), "integer"),
    (pa.types.is_integer, "bigint"),
    (pa.types.is_float32, "real"),
    (pa.types.is_floating, "double precision"),
    (lambda kind: pa.types.is_decimal(kind) and kind.precision <= 1000, lambda kind: f"numeric({kind.precision},{kind.scale})"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
]


# PostgreSQL type OID -> Arrow type, so that empty results keep their column types.
_ARROW_TYPES = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
    1700: "decimal", 25: pa.string(), 1043: pa.string(), 1042: pa.string(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"), 1082: pa.date32(), 2950: pa.string(),  # uuid (psycopg2 gives its text)
}
_CURSORS = count()  # a name per server-side cursor of this process


_WRITING_NODES = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}


# SQL-standard functions without parentheses that only say the time (not who or where the session is)
_TIME_VALUES = {"SVFOP_CURRENT_DATE", "SVFOP_CURRENT_TIME", "SVFOP_CURRENT_TIME_N", "SVFOP_CURRENT_TIMESTAMP",
                "SVFOP_CURRENT_TIMESTAMP_N", "SVFOP_LOCALTIME", "SVFOP_LOCALTIME_N", "SVFOP_LOCALTIMESTAMP",
                "SVFOP_LOCALTIMESTAMP_N"}
_SQL_SYNTAX = 3  # CoercionForm.COERCE_SQL_SYNTAX: a call written as syntax (EXTRACT(x FROM y)), named pg_catalog.f


def check_query(sql: str, allow_file_access: bool = False, bound: bool = False) -> None:
    """Raise UserQueryError unless `sql` is exactly one SELECT that only reads, by PostgreSQL's
    parser, and calls and reads only what the allow-list allows (on this tree and sqlglot's).
    bound: the SQL runs with bind parameters, so psycopg2's `%s` markers are parameters (`$n` to
    PostgreSQL's parser) and `%%` a `%`."""
    try:
        import pglast
        from pglast.visitors import Visitor
    except ImportError:
        raise UserQueryError("Entity queries on PostgreSQL need pglast (PostgreSQL's parser): "
                             "pip install 'featurestore[postgres]'.") from None
    numbers = iter(range(1, len(sql)))
    parsed = re.sub(r"%%|%s", lambda m: "%" if m.group() == "%%" else f"${next(numbers)}", sql) if bound else sql
    try:
        statements = pglast.parse_sql(parsed)
    except pglast.parser.ParseError as exc:
        raise UserQueryError(f"The entity query does not parse: {exc}") from None
    kinds = [type(statement.stmt).__name__ for statement in statements]
    if kinds != ["SelectStmt"]:
        raise UserQueryError(
            f"The entity query must be exactly one SELECT statement; PostgreSQL's parser found "
            f"{len(kinds)} statement(s): {', '.join(k.removesuffix('Stmt').upper() for k in kinds) or 'none'}.")
    problems: list[str] = []

    class Check(Visitor):
        def visit(self, ancestors, node):
            kind = type(node).__name__
            if kind in _WRITING_NODES:
                problems.append(f"a data-modifying {kind.removesuffix('Stmt').upper()}")
            elif kind == "SelectStmt" and (node.intoClause is not None or node.lockingClause):
                problems.append("SELECT ... INTO" if node.intoClause is not None else "a locking clause (FOR UPDATE/SHARE)")
            elif kind == "FuncCall":
                *qualifier, name = [part.sval for part in node.funcname]
                syntax = qualifier == ["pg_catalog"] and node.funcformat == _SQL_SYNTAX
                allowlist.check_function(name, "postgres", allow_file_access,
                                         ".".join(qualifier) if qualifier and not syntax else None)
            elif kind == "SQLValueFunction" and node.op.name not in _TIME_VALUES:
                allowlist.check_function(node.op.name.removeprefix("SVFOP_").lower(), "postgres")
            elif kind == "RangeVar":
                allowlist.check_relation([part for part in (node.catalogname, node.schemaname, node.relname) if part],
                                         "postgres")

    Check()(statements)
    if problems:
        raise UserQueryError(f"The entity query must only read; it contains {', '.join(sorted(set(problems)))}.")
    allowlist.check(sql, "postgres", allow_file_access)


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    placeholder = "%s"

    @staticmethod
    def identity(target: Mapping[str, Any], base_dir: Path) -> str:
        return f"postgres://{target.get('host')}:{target.get('port', 5432)}/{target.get('dbname') or target.get('database')}"

    def __init__(self, target: Mapping[str, Any], base_dir: Path | None = None, *, read_only: bool = True,
                 allow_file_access: bool = False, lock_timeout: float = 60.0):
        import psycopg2

        self.allow_file_access = allow_file_access
        self.entity_role: str | None = None

        try:
            self.connection = psycopg2.connect(
                host=target.get("host"), port=int(target.get("port", 5432)), user=target.get("user"),
                password=target.get("password") or None, dbname=target.get("dbname") or target.get("database"),
                connect_timeout=10,
            )
        except psycopg2.Error as exc:
            raise FeatureStoreError(
                f"Cannot connect to PostgreSQL at {target.get('host')}:{target.get('port')}: {exc}".strip()
            ) from None
        self.connection.autocommit = True
        interrupt_on_sigint(self.connection, "cancel")  # Ctrl-C cancels a running statement on the server

    def _run(self, sql: str, parameters: Sequence[Any], fetch: bool):
        import psycopg2

        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, tuple(parameters) or None)
                return (cursor.description, cursor.fetchall()) if fetch else None
        except psycopg2.Error as exc:
            raise WarehouseError(f"PostgreSQL refused a query: {str(exc).strip().splitlines()[0]}") from exc

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        self._run(sql, parameters, fetch=False)

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        return self._run(sql, parameters, fetch=True)[1]

    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
        description, rows = self._run(sql, parameters, fetch=True)
        columns = list(zip(*rows)) if rows else [() for _ in description]
        arrays = {}
        for column, values in zip(description, columns):
            kind = _ARROW_TYPES.get(column.type_code)
            if kind == "decimal":
                # numeric(p,s) is decimal(p,s); an unconstrained numeric has no Arrow type: its values decide
                kind = pa.decimal128(column.precision, column.scale or 0) if column.precision and column.precision <= 38 \
                    else None if values else pa.decimal128(38, 9)
            arrays[column.name] = pa.array(list(values), type=kind)
        return pa.table(arrays)

    def stream_arrow(self, sql: str, parameters: Sequence[Any] = (), types: Mapping[str, pa.DataType] | None = None
                     ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result through a server-side cursor, STREAM_BATCH_ROWS rows per fetch, so only one
        batch of rows is in this process at a time. Every batch has the one schema fixed before
        any row is read: the caller's (declared) type of a column, else its PostgreSQL type's, so an
        empty result or an all-NULL batch has the same types as any other."""
        import psycopg2

        # a server-side cursor lives in a transaction (no WITH HOLD: that would first copy the
        # whole result on the server); it only reads, and is rolled back when the rows are read
        self.connection.autocommit = False
        cursor = None

        def finish() -> None:
            try:
                if cursor is not None and not cursor.closed:
                    cursor.close()
                self.connection.rollback()
            except psycopg2.Error:  # a broken connection has no transaction left to end
                pass
            finally:
                if not self.connection.closed:
                    self.connection.autocommit = True

        try:
            cursor = self.connection.cursor(name=f"featurestore_stream_{next(_CURSORS)}")
            cursor.execute(sql, tuple(parameters) or None)
            rows = cursor.fetchmany(STREAM_BATCH_ROWS)  # a named cursor's description comes with its first fetch
            schema = pa.schema([pa.field(column.name, self._column_type(column, types or {}))
                                for column in cursor.description])
        except psycopg2.Error as exc:
            finish()
            raise WarehouseError(f"PostgreSQL refused a query: {str(exc).strip().splitlines()[0]}") from exc
        except BaseException:
            finish()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            try:
                while rows:
                    yield _record_batch(rows, schema)
                    if len(rows) < STREAM_BATCH_ROWS:
                        return
                    rows = None  # the rows of one batch at a time: let them go before fetching the next
                    try:
                        rows = cursor.fetchmany(STREAM_BATCH_ROWS)
                    except psycopg2.Error as exc:
                        raise WarehouseError(f"PostgreSQL failed reading a result: {str(exc).strip().splitlines()[0]}") from exc
            finally:
                finish()

        return schema, batches()

    def _column_type(self, column, types: Mapping[str, pa.DataType]) -> pa.DataType:
        """The Arrow type of a result column: as the caller declared it, else by its PostgreSQL type;
        never from its values."""
        if column.name in types and not pa.types.is_null(types[column.name]):
            return types[column.name]
        kind = _ARROW_TYPES.get(column.type_code)
        if kind == "decimal":
            # numeric(p,s) is decimal(p,s); an unconstrained numeric (avg(), sum() of bigints)
            # has no exact Arrow type: it is read as a double, as DuckDB's avg() is
            precision = column.precision if column.precision and column.precision < 0xFFFF else None
            return pa.decimal128(precision, column.scale or 0) if precision and precision <= 38 \
                else pa.decimal256(precision, column.scale or 0) if precision and precision <= 76 else pa.float64()
        if kind is None:
            name = self.fetch_all("select format_type(%s, null)", (column.type_code,))[0][0]
            raise WarehouseError(
                f"The result column '{column.name}' has PostgreSQL type {name}, which has no Arrow type "
                "here; cast it in the model's SQL (e.g. to text) or declare its data_type.")
        return kind

    def _column_definitions(self, schema: pa.Schema) -> list[tuple[str, str]]:
        """(quoted name, PostgreSQL type) per column of an Arrow schema."""
        columns = []
        for field in schema:
            pg_type = next((name for test, name in _PG_TYPES if test(field.type)), None)
            pg_type = pg_type(field.type) if callable(pg_type) else pg_type
            if pg_type is None:
                raise FeatureStoreError(f"Column '{field.name}' has type {field.type}, which cannot be loaded into PostgreSQL.")
            columns.append((self.quote(field.name), pg_type))
        return columns

    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        self.execute(self.piece("drop_table", table))
        self.execute(self.piece("create_columns", table, self._column_definitions(data.schema), temporary))
        buffer = io.BytesIO()
        import pyarrow.csv as pacsv

        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        with self.connection.cursor() as cursor:
            cursor.copy_expert(self.piece("copy_csv", table), buffer)

    def check_user_query(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        check_query(sql, self.allow_file_access, bound=bool(parameters))

    def use_entity_role(self, role: str) -> None:
        self.entity_role = role

    @contextmanager
    def running_user_query(self):
        """A READ ONLY transaction with a statement_timeout (set_config(..., true): for this
        transaction only), as the entity role if one is configured."""
        import psycopg2.errors

        try:
            with self.transaction(read_only=True):
                if self.query_timeout:
                    self.execute(self.piece("set_local"), ["statement_timeout", f"{round(self.query_timeout * 1000)}ms"])
                if self.entity_role:
                    try:
                        self.execute(self.piece("set_local"), ["role", self.entity_role])
                    except WarehouseError as exc:
                        raise FeatureStoreError(
                            f"Entity queries are to run as the role '{self.entity_role}' (FEATURESTORE_PG_ENTITY_ROLE), "
                            f"but PostgreSQL refused it: {str(exc.__cause__).strip()}. Create it as the README's "
                            "\"Entity queries on PostgreSQL\" shows, grant it to this user, or unset the variable.") from None
                yield
        except WarehouseError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg2.errors.QueryCanceled) and "statement timeout" in str(cause):
                raise UserQueryTimeout(self.query_timeout) from None
            raise

    def user_query_load_statements(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str,
                                   schema: pa.Schema | None = None) -> list[str]:
        body = self.render("user_query", query=sql, columns=columns, limit_zero=False)
        definitions = self._column_definitions(schema) if schema is not None else [("<the query's columns>", "")]
        return [self.piece("drop_table", table), self.piece("create_columns", table, definitions, True),
                self.piece("begin", True), self.piece("insert_query", table, body), self.piece("commit")]

    def load_user_query(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str,
                        parameters: Sequence[Any] = ()) -> None:
        self.check_user_query(sql, parameters)
        with self.running_user_query():
            schema = self.fetch_arrow(self.render("user_query", query=sql, columns=columns, limit_zero=True),
                                      parameters).schema
        drop, create, _, insert, _ = self.user_query_load_statements(table, columns, sql, schema)
        self.execute(drop)
        self.execute(create)
        if self.entity_role:  # the role fills the table we own
            self.execute(self.piece("grant_insert", table, self.quote(self.entity_role)))
        # a READ ONLY transaction may still insert into a temporary table
        with self.running_user_query():
            self.execute(insert, parameters)

    def close(self) -> None:
        self.connection.close()


def _record_batch(rows: list[tuple], schema: pa.Schema) -> pa.RecordBatch:
    """Rows from psycopg2 as one record batch of `schema` (a double read from an unconstrained
    numeric comes as a Decimal)."""
    arrays = []
    for index, field in enumerate(schema):
        values = [row[index] for row in rows]
        try:
            arrays.append(pa.array(values, type=field.type))
        except pa.ArrowInvalid:
            if not pa.types.is_floating(field.type):
                raise
            arrays.append(pa.array([None if value is None else float(value) for value in values], type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
