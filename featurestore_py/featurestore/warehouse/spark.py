"""Apache Spark, through the dbt-spark target's own settings.

`method: session` (local mode, or any master set in `server_side_parameters`) runs Spark in this
process, with the same `server_side_parameters` dbt-spark builds its session from, so the SDK
sees the warehouse directory and metastore dbt wrote. A process that already holds a Spark
session (dbt run in-process, a notebook) shares it. `method: connect` (Spark Connect, `host`
as `sc://host:port`) reaches a cluster through the same DataFrame API, so every statement here
runs the same way on both. (dbt-spark's thrift/http/odbc methods are for dbt; point the SDK at
the same cluster's Spark Connect endpoint.)

Spark has no multi-statement transactions: `transaction()` runs its statements one by one.
SQL a user hands us must parse, with Spark's own parser, to one query (no command, no insert),
and runs with `spark.sql.runSQLOnFiles` off unless file access is allowed, so it cannot read
the host's files through `parquet.\\`/path\\``. Its functions and relations must pass the
allow-list (warehouse/allowlist.py, on sqlglot's Spark parse tree).
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pyarrow as pa

from ..errors import FeatureStoreError
from . import UserQueryError, Warehouse, WarehouseError, allowlist

# Root nodes of a parsed statement that only reads (Spark SQL writes only at a statement's root).
_QUERY_ROOTS = {"Project", "Aggregate", "Filter", "Sort", "GlobalLimit", "LocalLimit", "Distinct", "Union",
                "Intersect", "Except", "Join", "SubqueryAlias", "UnresolvedRelation", "UnresolvedWith", "WithCTE",
                "Window", "Generate", "OneRowRelation", "UnresolvedInlineTable", "Offset", "Tail", "Sample",
                "Repartition", "RepartitionByExpression", "Deduplicate", "Pivot", "Unpivot", "LateralJoin",
                "UnresolvedTableValuedFunction", "Range", "LocalRelation"}


def _resolve(value: str, base_dir: Path) -> str:
    """A relative path inside a Spark setting (warehouse dir, Derby URL), made absolute against
    the dbt project, as it is when dbt runs from the project directory."""
    if value.startswith("jdbc:derby:"):
        head, _, rest = value.partition("databaseName=")
        if rest:
            name, sep, tail = rest.partition(";")
            return head + "databaseName=" + _resolve(name, base_dir) + sep + tail
        return value
    if "://" in value or os.path.isabs(value):
        return value
    return str((base_dir / value).resolve())


def session_settings(target: Mapping[str, Any], base_dir: Path) -> dict[str, str]:
    """The Spark settings of a dbt-spark target, relative paths resolved."""
    settings = {str(k): str(v) for k, v in (target.get("server_side_parameters") or {}).items()}
    for key in ("spark.sql.warehouse.dir", "spark.hadoop.javax.jdo.option.ConnectionURL"):
        if key in settings:
            settings[key] = _resolve(settings[key], base_dir)
    return settings


def spark_session(target: Mapping[str, Any], base_dir: Path):
    """The Spark session of a dbt-spark target: this process's, or one built from the target."""
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")  # pandas 3: what we call works
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise FeatureStoreError("The dbt target is of type 'spark'; install pyspark: pip install 'featurestore[spark]'.") from None
    from pyspark import SparkContext
    from pyspark.sql.utils import is_remote

    method = target.get("method", "session")
    if method not in ("session", "connect"):
        raise FeatureStoreError(
            f"dbt target '{target.get('target_name')}' connects to Spark with method '{method}'; the featurestore SDK "
            "runs Spark in-process (method: session) or reaches a cluster through Spark Connect (method: connect, "
            "host: sc://host:15002). Add a target of one of those kinds for the same cluster.")
    # pyspark holds one kind of session per process: a classic one (a SparkContext) or Spark
    # Connect ones, whose mode then sends every pyspark call to the server
    remote, classic = is_remote(), SparkContext._active_spark_context is not None
    if (method == "connect" and classic) or (method == "session" and remote):
        raise FeatureStoreError(
            f"This process already runs Spark {'through Spark Connect' if remote else 'in-process'}; pyspark cannot "
            f"also run dbt target '{target.get('target_name')}' (method: {method}) in it: use that target from "
            "another process.")
    if method == "connect":
        session = SparkSession.builder.remote(str(target.get("host"))).getOrCreate()
        # our SQL reads naive timestamps as UTC, as the session method's profile sets it; a
        # Connect server's sessions start in its JVM's zone
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return session
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python tasks (a sync's writes from the executors) run this interpreter unless told otherwise:
    # the one that has featurestore and boto3 (a cluster's executors need them installed too)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # pyspark logs every refused query with the JVM's stack trace as JSON on stderr; the error
    # we raise names the problem in one line (the CLI shows tracebacks with --debug)
    logging.getLogger("SQLQueryContextLogger").disabled = True
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_settings(target, base_dir).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return session


@contextmanager
def _engine_errors():
    from pyspark.errors import PySparkException

    try:
        yield
    except PySparkException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WarehouseError(f"Spark refused a query: {first}") from exc


def _naive_utc(table: pa.Table) -> pa.Table:
    """Spark's timestamps arrive tagged UTC (the session's zone); the other engines give naive UTC."""
    fields = [pa.field(f.name, pa.timestamp(f.type.unit), f.nullable) if pa.types.is_timestamp(f.type) and f.type.tz
              else f for f in table.schema]
    return table if fields == list(table.schema) else table.cast(pa.schema(fields, table.schema.metadata))


class SparkWarehouse(Warehouse):
    dialect = "spark"
    placeholder = "?"

    @staticmethod
    def identity(target: Mapping[str, Any], base_dir: Path) -> str:
        settings = session_settings(target, base_dir)
        where = settings.get("spark.hadoop.javax.jdo.option.ConnectionURL") or settings.get("spark.sql.warehouse.dir")
        return f"spark:{target.get('method', 'session')}:{target.get('host') if target.get('method') == 'connect' else where}"

    def __init__(self, target: Mapping[str, Any], base_dir: Path, *, read_only: bool = True,
                 allow_file_access: bool = False, lock_timeout: float = 60.0):
        self.session = spark_session(target, base_dir)
        self.remote = target.get("method") == "connect"
        self.allow_file_access = allow_file_access
        self._cached: list[str] = []

    def _sql(self, sql: str, parameters: Sequence[Any]):
        with _engine_errors():
            return self.session.sql(sql, args=list(parameters) or None)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        with _engine_errors():
            self._sql(sql, parameters).collect()

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        """Rows through Arrow: Python rows from Spark would carry timestamps in this host's zone."""
        table = self.fetch_arrow(sql, parameters)
        return list(zip(*(column.to_pylist() for column in table.columns)))

    def fetch_arrow(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Table:
        with _engine_errors():
            return _naive_utc(self._sql(sql, parameters).toArrow())

    # stream_arrow is the base class's: the result on the driver, for results that fit;
    # write_parquet writes large ones from the executors
    reads_in_parts = True
    exports_parquet_directories = True
    PART_ROWS = 65_536

    def read_parts(self, sql: str, parameters: Sequence[Any] = ()) -> Iterator[pa.Table]:
        """The result a Spark partition at a time (toLocalIterator), in Arrow tables of at most
        PART_ROWS rows: the driver never holds more than one partition of it."""
        from pyspark.sql import functions

        with _engine_errors():
            frame = self._sql(sql, parameters)
            schema = _naive_utc(frame.limit(0).toArrow()).schema
            # timestamps as UTC microseconds: Python rows would carry them in this host's zone
            frame = frame.select([
                functions.unix_micros(functions.col(self.quote(field.name)).cast("timestamp")).alias(field.name)
                if pa.types.is_timestamp(field.type) else functions.col(self.quote(field.name))
                for field in schema])
            rows = frame.toLocalIterator(prefetchPartitions=False)
        while True:
            with _engine_errors():
                chunk = [tuple(row) for _, row in zip(range(self.PART_ROWS), rows)]
            if not chunk:
                return
            yield pa.Table.from_arrays(
                [pa.array(column, type=pa.int64()).cast(field.type) if pa.types.is_timestamp(field.type)
                 else pa.array(column, type=field.type) for column, field in zip(zip(*chunk), schema)],
                schema=schema)

    @property
    def writes_from_workers(self) -> bool:
        """Yes, unless speculative execution is on: a task's second attempt could still be
        writing after the sync merged and switched."""
        with _engine_errors():
            return str(self.session.conf.get("spark.speculation", "false")).lower() != "true"

    def map_in_workers(self, sql: str, parameters: Sequence[Any], function: Callable, schema: str) -> list[dict]:
        """Run function in the executors over the result's partitions (Spark's mapInArrow: an
        iterator of Arrow record batches in, small record batches out, nothing of the result on
        the driver); the rows it yields, collected. A task that fails is retried by Spark; the
        call fails if one fails for good."""
        with _engine_errors():
            return [row.asDict() for row in self._sql(sql, parameters).mapInArrow(function, schema).collect()]

    def write_parquet(self, sql: str, directory: str, parameters: Sequence[Any] = ()) -> None:
        """The result written as a directory of Parquet files by the executors, never collected."""
        conf = self.session.conf
        before = conf.get("spark.sql.parquet.outputTimestampType", "INT96")
        conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # not INT96: UTC microseconds, as our files
        try:
            with _engine_errors():
                self._sql(sql, parameters).write.mode("error").parquet(directory)
        finally:
            conf.set("spark.sql.parquet.outputTimestampType", before)

    def load_arrow(self, table: str, data: pa.Table, *, temporary: bool = False) -> None:
        with _engine_errors():
            frame = self.session.createDataFrame(data)
            if temporary:
                frame.createOrReplaceTempView(table)
                self._cache(table)
            else:
                frame.write.mode("overwrite").format("parquet").saveAsTable(table)

    def _cache(self, view: str) -> None:
        """Compute a temporary view once (views are otherwise recomputed at every use)."""
        self.execute(self.piece("cache", view))
        self._cached.append(view)

    def check_user_query(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        # the allow-list first: nothing is sent to the engine, not even to be parsed, before it passed
        allowlist.check(sql, self.dialect, self.allow_file_access)
        if self.remote:
            self._check_user_query_remotely(sql)
        else:
            self._check_user_query_locally(sql)

    def _check_user_query_locally(self, sql: str) -> None:
        with _engine_errors():
            try:
                plan = self.session._jsparkSession.sessionState().sqlParser().parsePlan(sql)
            except Exception as exc:  # py4j wraps the ParseException
                message = str(exc).strip().splitlines()
                detail = next((line for line in message if "PARSE_SYNTAX_ERROR" in line or "Exception" in line), message[0] if message else "")
                raise UserQueryError(f"The entity query does not parse as one Spark SQL statement: {detail.strip()}") from None
        root = plan.nodeName()
        while root in ("UnresolvedWith", "WithCTE"):  # a WITH clause: look at the statement it introduces
            plan = plan.children().apply(plan.children().size() - 1) if root == "WithCTE" else plan.child()
            root = plan.nodeName()
        if root not in _QUERY_ROOTS:
            raise UserQueryError(f"The entity query must be exactly one SELECT statement; Spark's parser found a {root}.")

    def _check_user_query_remotely(self, sql: str) -> None:
        """Through Spark Connect (no JVM in this process to ask for a parse), the server parses the
        query only as the subquery it will run in: a command, an insert or a second statement does
        not parse there. The user's SQL is never sent alone: Spark Connect runs a command as soon
        as it has parsed it."""
        from pyspark.errors import ParseException

        try:
            with self._files():
                self.session.sql(self.render("user_query", query=sql, columns=None, limit_zero=True))
        except ParseException as exc:
            detail = next((line for line in str(exc).strip().splitlines() if line.strip()), type(exc).__name__)
            raise UserQueryError(f"The entity query must be exactly one SELECT statement; Spark's parser refused "
                                 f"it as a subquery: {detail.strip()}") from None
        except Exception:  # e.g. a table it names does not exist: reported when the query runs
            pass

    def user_query_load_statements(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str) -> list[str]:
        body = self.render("user_query", query=sql, columns=columns, limit_zero=False)
        return [self.piece("user_query_view", table, body), self.piece("cache", table)]

    @contextmanager
    def _files(self):
        """Spark's `format.\\`path\\`` file reads off, unless file access is allowed."""
        if self.allow_file_access:
            yield
            return
        conf = self.session.conf
        before = conf.get("spark.sql.runSQLOnFiles", "true")
        conf.set("spark.sql.runSQLOnFiles", "false")
        try:
            yield
        finally:
            conf.set("spark.sql.runSQLOnFiles", before)

    def describe_user_query(self, sql: str, parameters: Sequence[Any] = ()) -> pa.Schema:
        with self._files():
            return super().describe_user_query(sql, parameters)

    def load_user_query(self, table: str, columns: Sequence[tuple[str, str | None]], sql: str,
                        parameters: Sequence[Any] = ()) -> None:
        """The user's query as a cached temporary view (a view's text cannot hold bind parameters,
        so the query is bound as a DataFrame and registered under the name)."""
        self.check_user_query(sql, parameters)
        with self._files(), _engine_errors():
            self._sql(self.render("user_query", query=sql, columns=columns, limit_zero=False), parameters) \
                .createOrReplaceTempView(table)
            self._cache(table)  # the user's query runs here, once, with file reads off

    @contextmanager
    def transaction(self, read_only: bool = False):
        """Spark has no multi-statement transactions: the statements run one by one."""
        yield self

    def close(self) -> None:
        """Drop what this connection cached; the session stays (dbt and others may share it)."""
        for view in self._cached:
            try:
                self.execute(self.piece("uncache", view))
            except WarehouseError:
                pass
        self._cached.clear()
