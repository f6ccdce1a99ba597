"""DuckDB, the embedded default: the database file of the dbt-duckdb target."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import duckdb
import pyarrow as pa

from ..errors import FeatureStoreError
from . import Warehouse


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(self, target: Mapping[str, Any]):
        self.path = str(target.get("path", ":memory:"))
        if self.path != ":memory:" and not Path(self.path).exists():
            raise FeatureStoreError(
                f"The DuckDB database {self.path} does not exist yet; run `featurestore build` (dbt build) first."
            )
        try:
            self.connection = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise FeatureStoreError(f"Cannot open the DuckDB database {self.path}: {exc}") from None
        threads = target.get("threads")
        if threads:
            self.connection.execute(f"set threads = {int(threads)}")

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        self.connection.execute(sql, list(parameters))

    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
        relation = self.connection.sql(sql, params=list(parameters) or None)
        # DuckDB 2.0 has to_arrow_table (fetch_arrow_table is gone); 1.x has both spellings
        reader = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        return reader()

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, list(parameters)).fetchall()

    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        view = "_fs_arrow_input"
        self.connection.register(view, data)
        try:
            kind = "temp table" if temporary else "table"
            self.connection.execute(f"create or replace {kind} {table} as select * from {view}")
        finally:
            self.connection.unregister(view)

    def load_csv(self, table: str, path: Path) -> None:
        self.connection.execute(f"create or replace table {table} as select * from read_csv(?, header = true)", [str(path)])

    def close(self) -> None:
        self.connection.close()
