"""DuckDB, the embedded default: the database file of the dbt-duckdb target.

Readers open the file read-only, so any number of them (exports, syncs, stats, audits) run at
once; a writer (dbt build) holds an exclusive lock, which readers wait for up to `lock_timeout`
seconds before failing with the holder's PID and command line. File access through the engine
(read_csv, COPY, ATTACH ...) is off unless allow_file_access, so a user's query cannot read or
write the host's files.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import duckdb
import pyarrow as pa

from ..errors import FeatureStoreError
from ..interrupts import interrupt_on_sigint
from ..processes import command_line
from . import (STREAM_BATCH_ROWS, UserQueryError, UserQueryTimeout, Warehouse, WarehouseError, WarehouseLockedError,
               allowlist)

log = logging.getLogger("featurestore")
_LOCK_HOLDER = re.compile(r"PID (\d+)")


def lock_holder(message: str) -> str:
    """`PID 123 (dbt build --select x)` from DuckDB's lock error, as much as can be told."""
    match = _LOCK_HOLDER.search(message)
    if not match:
        return "another process"
    pid = match.group(1)
    command = command_line(int(pid))
    return f"PID {pid}" + (f" ({command})" if command else "")


@contextmanager
def _engine_errors():
    try:
        yield
    except duckdb.InterruptException as exc:  # Ctrl-C stopped the query: an interrupt, not a failure
        raise KeyboardInterrupt from exc
    except duckdb.Error as exc:
        raise _refused(str(exc)) from exc
    except (OSError, pa.ArrowException) as exc:
        # a streamed result's later batches come through Arrow's C reader, which hands DuckDB's
        # error on as an OSError/ArrowException with DuckDB's message
        if "interrupt" in str(exc).lower():
            raise KeyboardInterrupt from exc
        raise _refused(str(exc)) from exc
    except RuntimeError as exc:
        if "interrupted" in str(exc).lower():  # what the Python client raises when SIGINT stops a query
            raise KeyboardInterrupt from exc
        raise


def _refused(message: str) -> WarehouseError:
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    if "max_temp_directory_size" in message:
        return WarehouseError(
            f"The query needed more temporary disk space than the warehouse may use ({first}): set "
            f"`max_temp_directory_size` under `settings:` of the dbt target (the default is {TEMP_SHARE:.0%} of "
            "the disk's free space), or ask for less.")
    return WarehouseError(f"DuckDB refused a query: {first}")


TEMP_SHARE = 0.5  # of the free disk space a query may spill to, unless the target's settings say otherwise


def temp_space_limit(target: Mapping[str, Any], spill: str) -> str | None:
    """`max_temp_directory_size` for our connections: the dbt target's `settings:` value, else half
    the free space of the disk of the folder DuckDB spills to, `spill` (DuckDB's own default, 90%,
    leaves a full disk)."""
    configured = (target.get("settings") or {}).get("max_temp_directory_size")
    if configured:
        return str(configured)
    folder = Path(spill)
    while not folder.exists() and folder != folder.parent:  # a folder DuckDB has yet to create
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return f"{max(int(free * TEMP_SHARE) // 2**20, 1)}MiB"


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    placeholder = "?"

    @staticmethod
    def identity(target: Mapping[str, Any], base_dir: Path) -> str:
        raw = str(target.get("path", ":memory:"))
        return "duckdb:" + (raw if raw == ":memory:" else str((base_dir / Path(raw).expanduser()).resolve()))

    def __init__(self, target: Mapping[str, Any], base_dir: Path, *, read_only: bool = True,
                 allow_file_access: bool = False, lock_timeout: float = 60.0):
        raw = str(target.get("path", ":memory:"))
        self.path = raw if raw == ":memory:" else str((base_dir / Path(raw).expanduser()).resolve())
        if self.path != ":memory:" and not Path(self.path).exists():
            raise FeatureStoreError(
                f"The DuckDB database {self.path} (path '{raw}' of the dbt target) does not exist yet; "
                "run `dbt build` (or `featurestore build`) in the project first."
            )
        self.read_only = read_only and self.path != ":memory:"
        self.allow_file_access = allow_file_access
        self._checked_queries: set[str] = set()  # user queries this connection has checked (its settings fixed)
        config = {"enable_external_access": bool(allow_file_access)}
        settings = target.get("settings") or {}
        config.update({name: str(settings[name]) for name in ("memory_limit", "temp_directory") if settings.get(name)})
        # where DuckDB spills: temp_directory, else `<database>.tmp` beside the file (`.tmp` in the
        # working directory for an in-memory database)
        spill = config.get("temp_directory") or (f"{self.path}.tmp" if self.path != ":memory:" else ".tmp")
        limit = temp_space_limit(target, spill)
        if limit:
            config["max_temp_directory_size"] = limit
        deadline = time.monotonic() + lock_timeout
        waited = False
        while True:
            try:
                self.connection = duckdb.connect(self.path, read_only=self.read_only, config=config)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise FeatureStoreError(f"Cannot open the DuckDB database {self.path}: {exc}") from None
                holder = lock_holder(str(exc))
                if time.monotonic() >= deadline:
                    raise WarehouseLockedError(
                        f"The DuckDB database {self.path} is locked for writing by {holder}; waited "
                        f"{lock_timeout:.0f} s. Try again when it has finished, or wait longer with FEATURESTORE_LOCK_TIMEOUT=<seconds>."
                    ) from None
                if not waited:
                    log.warning(f"waiting up to {lock_timeout:.0f} s for the DuckDB lock on {self.path}, held by {holder}")
                    waited = True
                time.sleep(0.25)
            except duckdb.ConnectionException as exc:
                raise FeatureStoreError(
                    f"Cannot open the DuckDB database {self.path} {'read-only' if self.read_only else 'for writing'}: "
                    f"this process already has it open another way ({exc}). Close the other connection first."
                ) from None
            except duckdb.Error as exc:
                raise FeatureStoreError(f"Cannot open the DuckDB database {self.path}: {exc}") from None
        interrupt_on_sigint(self.connection)
        threads = target.get("threads")
        if threads:
            self.connection.execute(self.piece("set_threads", int(threads)))

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        with _engine_errors():
            self.connection.execute(sql, list(parameters))

    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
        with _engine_errors():
            relation = self.connection.sql(sql, params=list(parameters) or None)
            if relation is None:  # a statement without a result
                return pa.table({})
            # DuckDB 2.0 has to_arrow_table (fetch_arrow_table is gone); 1.x has both spellings
            reader = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
            return reader()

    def stream_arrow(self, sql: str, parameters: Sequence[Any] = (), types: Mapping[str, pa.DataType] | None = None
                     ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        # types are not needed: DuckDB's columns are typed (the caller casts to what it declared)
        with _engine_errors():
            relation = self.connection.sql(sql, params=list(parameters) or None)
            # DuckDB 2.0 has to_arrow_reader (fetch_record_batch is 1.x's spelling)
            reader = (getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch)(STREAM_BATCH_ROWS)

        def batches() -> Iterator[pa.RecordBatch]:
            stream = iter(reader)
            while True:
                with _engine_errors():
                    batch = next(stream, None)
                if batch is None:
                    return
                yield batch

        return reader.schema, batches()

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        with _engine_errors():
            return self.connection.execute(sql, list(parameters)).fetchall()

    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        view = "_fs_arrow_input"
        self.connection.register(view, data)
        try:
            self.connection.execute(self.piece("load_arrow", table, view, temporary))
        finally:
            self.connection.unregister(view)

    def check_user_query(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        if sql in self._checked_queries:  # describing and loading a query check it once
            return
        try:
            # the connection's parser: duckdb.extract_statements would first create the module's default database
            statements = self.connection.extract_statements(sql)
        except duckdb.Error as exc:
            raise UserQueryError(f"The entity query does not parse: {str(exc).splitlines()[0]}") from None
        kinds = [statement.type.name for statement in statements]
        if kinds != ["SELECT"]:
            raise UserQueryError(
                f"The entity query must be exactly one SELECT statement; DuckDB's parser found "
                f"{len(kinds)} statement(s): {', '.join(kinds) or 'none'}."
            )
        allowlist.check(sql, self.dialect, self.allow_file_access)
        self._check_parse_tree(sql)
        self._checked_queries.add(sql)

    def _check_parse_tree(self, sql: str) -> None:
        """The allow-list once more, on DuckDB's own parse tree (json_serialize_sql): what the
        engine will call and read, whatever sqlglot made of the text."""
        tree = json.loads(self.fetch_all(self.piece("parse_tree"), [sql])[0][0])
        if tree.get("error"):
            raise UserQueryError(f"The entity query does not parse: {tree.get('error_message')}")
        nodes = [tree]
        while nodes:
            node = nodes.pop()
            if isinstance(node, list):
                nodes.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            nodes.extend(node.values())
            if node.get("class") in ("FUNCTION", "WINDOW") and not node.get("is_operator"):
                qualifier = ".".join(part for part in (node.get("catalog"), node.get("schema")) if part) or None
                allowlist.check_function(node["function_name"], self.dialect, self.allow_file_access, qualifier)
            elif node.get("type") == "BASE_TABLE":
                allowlist.check_relation([part for part in (node.get("catalog_name"), node.get("schema_name"),
                                                            node.get("table_name")) if part], self.dialect)

    @contextmanager
    def running_user_query(self):
        """A user's query stopped after query_timeout seconds: a timer interrupts the connection
        (DuckDB has no statement timeout of its own); an interrupt after the query finished is
        never sent."""
        limit = self.query_timeout
        if not limit:
            yield
            return
        lock, state = threading.Lock(), {"running": True, "stopped": False}

        def stop() -> None:
            with lock:
                if state["running"]:
                    state["stopped"] = True
                    self.connection.interrupt()

        timer = threading.Timer(limit, stop)
        timer.daemon = True
        timer.start()
        try:
            yield
        except (KeyboardInterrupt, WarehouseError):
            if state["stopped"]:
                raise UserQueryTimeout(limit) from None
            raise
        finally:
            with lock:
                state["running"] = False
            timer.cancel()

    def user_query_load_statements(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str) -> list[str]:
        body = self.render("user_query", query=sql, columns=columns, limit_zero=False)
        return [self.piece("user_query_load", table, body)]

    def load_user_query(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str,
                        parameters: Sequence[Any] = ()) -> None:
        # A SELECT cannot write in DuckDB, and file access is off unless the user allowed it.
        self.check_user_query(sql, parameters)
        with self.running_user_query():
            for statement in self.user_query_load_statements(table, columns, sql):
                self.execute(statement, parameters)

    def close(self) -> None:
        self.connection.close()
