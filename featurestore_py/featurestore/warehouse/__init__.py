"""One interface to the warehouse a dbt target points at; one short implementation per engine.

The implementation owns its dialect: bind-parameter marker, identifier quoting, the template
variant its SQL is rendered with, how a temporary relation is made, and how SQL a user hands
us is checked and run read-only. Nothing outside this package asks "which engine?".
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa

from .. import sql as sqlgen
from ..errors import FeatureStoreError, RequestError

DEFAULT_QUERY_TIMEOUT = 300.0  # seconds a user's query may run (FEATURESTORE_QUERY_TIMEOUT; 0: no limit)


# rows per record batch of a streamed result (stream_arrow), on every engine that streams
STREAM_BATCH_ROWS = 131_072


class UserQueryError(RequestError):
    """SQL handed to us by a user is not exactly one query that only reads, with allowed
    functions and relations (the caller's mistake: HTTP 400)."""


class UserQueryTimeout(UserQueryError):
    """A user's query ran past the time limit and was stopped."""

    def __init__(self, limit: float):
        super().__init__(
            f"The entity query ran longer than the limit of {limit:g} s and was stopped. Make it cheaper, or lift "
            f"the limit with FEATURESTORE_QUERY_TIMEOUT=<seconds> (0: no limit) or FeatureStore(query_timeout=...).")
        self.limit = limit


class WarehouseError(FeatureStoreError):
    """The warehouse refused or failed a statement (the engine's own message, first line)."""


class WarehouseLockedError(FeatureStoreError):
    """Another process holds the warehouse's write lock longer than we wait."""


class Warehouse(ABC):
    """A connection to the warehouse. SQL is passed with bind parameters, never with values in it."""

    dialect: str  # the template variant: `{% if dialect == ... %}` blocks and sql/<dialect>/ overrides
    placeholder: str  # the driver's bind-parameter marker

    @abstractmethod
    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table: ...

    def stream_arrow(self, sql: str, parameters: Sequence[Any] = (), types: Mapping[str, pa.DataType] | None = None
                     ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result's schema and its record batches as the engine produces them (an engine
        without a streaming reader gives the whole result as batches). types: the Arrow type of
        columns the caller knows from their declaration; an engine whose driver hands over Python
        values (PostgreSQL) builds every batch with them, so that no batch's types depend on its
        values. An engine with typed columns of its own (DuckDB, Spark) may ignore them."""
        table = self.fetch_arrow(sql, parameters)
        return table.schema, iter(table.to_batches())

    # True: read_parts streams from the engine while the caller works (Spark: partition by
    # partition); False: read_parts gives the whole result at once, so the caller can close the
    # connection (and a DuckDB file's read lock) before slow work such as writing online.
    reads_in_parts = False
    # True: map_in_workers runs a function over the result's partitions in the engine's workers
    # (Spark's executors), so a sync writes online from there
    writes_from_workers = False
    # True: exports are written by the engine as a directory of Parquet files (write_parquet)
    exports_parquet_directories = False

    def read_parts(self, sql: str, parameters: Sequence[Any] = ()) -> Iterator[pa.Table]:
        """The result as a sequence of Arrow tables (see reads_in_parts)."""
        yield self.fetch_arrow(sql, parameters)

    @abstractmethod
    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]: ...

    @abstractmethod
    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        """Create (or replace) `table` with the rows of `data`."""

    # seconds a user's query may run (describe_user_query, load_user_query); 0: no limit
    query_timeout: float = DEFAULT_QUERY_TIMEOUT

    @abstractmethod
    def check_user_query(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        """Raise UserQueryError unless `sql` is exactly one SELECT statement that cannot write,
        parsed by the engine's own parser, and passes the allow-list (warehouse/allowlist.py).
        parameters: the values it will run with (its bind-parameter markers are then ours)."""

    @abstractmethod
    def load_user_query(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str,
                        parameters: Sequence[Any] = ()) -> None:
        """Create the temporary `table` from the user's SQL (see sql/user_query.sql.j2 for
        `columns`), running the user's SQL where it cannot modify anything."""

    @abstractmethod
    def user_query_load_statements(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str) -> list[str]:
        """The statements load_user_query runs, to show a user (bind parameters as markers)."""

    @abstractmethod
    def close(self) -> None: ...

    @staticmethod
    @abstractmethod
    def identity(target: Mapping[str, Any], base_dir: Path) -> str:
        """What tells this warehouse from another (see identity_of)."""

    def use_entity_role(self, role: str) -> None:
        """Run users' queries as `role` (PostgreSQL's SET ROLE; the other engines have no roles)."""

    @contextmanager
    def running_user_query(self):
        """Where a user's (checked) query runs: read-only, within query_timeout, as the entity
        role; each engine as it can."""
        yield

    def describe_user_query(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Schema:
        """The columns a (checked) user query returns, without reading its rows."""
        self.check_user_query(sql, parameters)
        with self.running_user_query():
            return self.fetch_arrow(self.render("user_query", query=sql, columns=None, limit_zero=True),
                                    parameters).schema

    def quote(self, identifier: str) -> str:
        return sqlgen.quote_identifier(identifier, self.dialect)

    def piece(self, name: str, *arguments) -> str:
        """One piece of this engine's SQL (sql/dialects/<dialect>.sql.j2)."""
        return sqlgen.piece(self.dialect, name, *arguments)

    def render(self, template: str, **context) -> str:
        """A template of `sql/` in this engine's dialect, with its bind-parameter marker as `param`."""
        return sqlgen.render(template, dialect=self.dialect, param=self.placeholder, **context)

    def build_id(self, build_relation: str) -> str:
        """The id a materialization recorded in its `<table>__build` table: what a full build made
        ("" when there is none, e.g. a table built before 0.2). Sync and exports both read it."""
        try:
            rows = self.fetch_all(self.render("view_probe", probe="build_id", relation=build_relation))
        except WarehouseError:
            return ""
        return str(rows[0][0]) if rows else ""

    @contextmanager
    def transaction(self, read_only: bool = False):
        """Statements inside run all-or-nothing: committed together or rolled back (also on Ctrl-C).
        read_only: the engine refuses writes inside (where it can tell; DuckDB readers are
        read-only connections already)."""
        self.execute(self.piece("begin", read_only))
        try:
            yield self
        except BaseException:
            try:
                self.execute(self.piece("rollback"))
            except Exception:  # a broken connection rolls back by itself
                pass
            raise
        self.execute(self.piece("commit"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# dbt adapter type -> (module, class, template dialect). A new engine is one module here plus
# its sql/dialects/<dialect>.sql.j2 (and `<adapter>__` dbt macros where the defaults do not work).
ENGINES = {
    "duckdb": ("duckdb", "DuckDBWarehouse", "duckdb"),
    "postgres": ("postgres", "PostgresWarehouse", "postgres"),
    "spark": ("spark", "SparkWarehouse", "spark"),
}


def _engine(target: Mapping[str, Any]) -> tuple[str, str, str]:
    kind = target.get("type")
    if kind not in ENGINES:
        raise FeatureStoreError(
            f"dbt target '{target.get('target_name')}' is of type '{kind}'; featurestore supports "
            f"{', '.join(ENGINES)}.")
    return ENGINES[kind]


def _load(engine: tuple[str, str, str]) -> type[Warehouse]:
    module, name, _ = engine
    return getattr(import_module(f".{module}", __package__), name)


def engine_class(dialect: str) -> type[Warehouse]:
    """The Warehouse class of a template dialect (for what an engine can do, without connecting)."""
    for engine in ENGINES.values():
        if engine[2] == dialect:
            return _load(engine)
    raise FeatureStoreError(f"featurestore has no engine for the dialect '{dialect}'.")


def dialect_of(target: Mapping[str, Any]) -> str:
    """The template dialect of a target's engine, without connecting."""
    return _engine(target)[2]


def identity_of(target: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> str:
    """What tells one warehouse from another (secrets left out): the DuckDB file, the server and
    database, or the Spark metastore. The sync state is kept per identity."""
    return _load(_engine(target)).identity(target, Path(base_dir or "."))


def connect(target: Mapping[str, Any], base_dir: str | os.PathLike | None = None, *, read_only: bool = True,
            allow_file_access: bool = False, lock_timeout: float = 60.0,
            query_timeout: float = DEFAULT_QUERY_TIMEOUT, entity_role: str | None = None) -> Warehouse:
    """A Warehouse for a rendered dbt target (see profiles.load_target).

    read_only: readers never lock out readers (DuckDB opens the file shared). allow_file_access:
    whether queries may read files through the engine (off: a user's query cannot read the host's
    files). query_timeout: seconds a user's query may run (0: no limit; PostgreSQL and DuckDB).
    entity_role: on PostgreSQL, the role a user's query runs as (SET LOCAL ROLE). Relative paths
    in the target resolve against base_dir (the dbt project).
    """
    engine = _load(_engine(target))
    warehouse = engine(target, Path(base_dir or "."), read_only=read_only, allow_file_access=allow_file_access,
                       lock_timeout=lock_timeout)
    warehouse.query_timeout = query_timeout
    if entity_role:
        warehouse.use_entity_role(entity_role)
    return warehouse
