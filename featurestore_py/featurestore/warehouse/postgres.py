"""PostgreSQL, through psycopg2, with the credentials of the dbt-postgres target."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa

from ..errors import FeatureStoreError
from . import Warehouse

# Arrow type -> PostgreSQL column type, for loading frames.
_PG_TYPES = [
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "bigint"),
    (pa.types.is_floating, "double precision"),
    (pa.types.is_decimal, "numeric"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
]


# PostgreSQL type OID -> Arrow type, so that empty results keep their column types.
_ARROW_TYPES = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
    1700: "decimal", 25: pa.string(), 1043: pa.string(), 1042: pa.string(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"), 1082: pa.date32(),
}


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(self, target: Mapping[str, Any]):
        import psycopg2

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

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, tuple(parameters) or None)

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, tuple(parameters) or None)
            return cursor.fetchall()

    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, tuple(parameters) or None)
            description = cursor.description
            rows = cursor.fetchall()
        columns = list(zip(*rows)) if rows else [() for _ in description]
        arrays = {}
        for column, values in zip(description, columns):
            kind = _ARROW_TYPES.get(column.type_code)
            if kind is None or (kind == "decimal" and values):
                arrays[column.name] = pa.array(list(values))  # inferred (numeric: precision from values)
            else:
                arrays[column.name] = pa.array(list(values), type=pa.decimal128(38, 9) if kind == "decimal" else kind)
        return pa.table(arrays)

    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        columns = []
        for field in data.schema:
            pg_type = next((name for test, name in _PG_TYPES if test(field.type)), None)
            if pg_type is None:
                raise FeatureStoreError(f"Column '{field.name}' has type {field.type}, which cannot be loaded into PostgreSQL.")
            columns.append(f"{self.quote(field.name)} {pg_type}")
        kind = "temporary table" if temporary else "table"
        self.execute(f"drop table if exists {table}")
        self.execute(f"create {kind} {table} ({', '.join(columns)})")
        buffer = io.BytesIO()
        import pyarrow.csv as pacsv

        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        with self.connection.cursor() as cursor:
            cursor.copy_expert(f"copy {table} from stdin with (format csv, null '')", buffer)

    def load_csv(self, table: str, path: Path) -> None:
        import pyarrow.csv as pacsv

        self.load_arrow(table, pacsv.read_csv(path))

    def close(self) -> None:
        self.connection.close()
