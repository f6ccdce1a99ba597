"""One interface to the warehouse a dbt target points at; one short implementation per adapter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa

from ..errors import FeatureStoreError


class Warehouse(ABC):
    """A connection to the warehouse. SQL is passed with bind parameters, never with values in it."""

    dialect: str

    @abstractmethod
    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table: ...

    @abstractmethod
    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]: ...

    @abstractmethod
    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        """Create (or replace) `table` with the rows of `data`."""

    @abstractmethod
    def load_csv(self, table: str, path: Path) -> None:
        """Create (or replace) `table` from a CSV file with a header row."""

    @abstractmethod
    def close(self) -> None: ...

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(target: Mapping[str, Any]) -> Warehouse:
    """A Warehouse for a rendered dbt target (see profiles.load_target)."""
    kind = target.get("type")
    if kind == "duckdb":
        from .duckdb import DuckDBWarehouse

        return DuckDBWarehouse(target)
    if kind == "postgres":
        from .postgres import PostgresWarehouse

        return PostgresWarehouse(target)
    raise FeatureStoreError(
        f"dbt target '{target.get('target_name')}' is of type '{kind}'; featurestore supports duckdb and postgres."
    )
