"""A point-in-time retrieval (lazy): `RetrievalJob` loads the entity rows into the warehouse,
chooses a join strategy per view, renders `sql/point_in_time.sql` (the macro dbt's training_set
also runs) and returns the result as Arrow, pandas, Parquet (featurestore.retrieval.parquet) or a
warehouse table. Semantics are in the README ("Training sets").
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from .. import sql as sqlgen
from ..entity_frame import (
    ROW_COLUMN,
    EntityFrameError,
    EntitySource,
    check_column_names,
    check_key_types,
    choose_timestamp_column,
    normalise_timestamp,
    output_timestamp_type,
    with_row_numbers,
)
from .. import ondemand
from ..errors import FeatureStoreError
from ..requests import OnDemandRequest, ViewRequest, ttl_seconds
from ..types import declared_arrow_type
from ..validate import built_type_problems
from ..warehouse import Warehouse, WarehouseError, engine_class
from .spine import check_spine_size

ENTITY_RELATION = "_fs_entities"
MATCH_PREFIX = "_fs_match_"
KNOWN_PREFIX = "_fs_known_"  # replay: the time each view's versions must have been known by
EVENT_PREFIX = "_fs_event_"  # event_times: the matched row's event time, output as <view>__event_timestamp
STRATEGIES = ("auto", "interval", "asof")
# DuckDB: entity rows x rows per key above this multiple of (entity rows + feature rows) and
# the ASOF join beats the interval join (see choose_strategy and benchmarks/bench_training.py).
ASOF_CROSSOVER = 150
# where an export's time goes (RetrievalJob.timings; benchmarks/bench_training.py prints them)
log = logging.getLogger("featurestore")
PHASES = ("entity load", "checks", "query", "summary", "order", "hash", "fingerprint", "write", "waited")
# (rows, rows per key) of a snapshot table, measured once per process (they change slowly)
_VIEW_STATS: dict[str, tuple[int, float]] = {}


@dataclass
class RetrievalPlan:
    """How a retrieval runs: see RetrievalJob.plan."""

    entity_load: list[str]  # statements (or, for frames and files, a comment) that create _fs_entities
    strategies: dict[str, dict]  # view -> {"strategy": interval | asof | knowledge, "reason": ...}
    sql: str  # the point-in-time statement over _fs_entities

    def as_text(self) -> str:
        lines = ["-- 1. the entity rows, as the temporary table _fs_entities"]
        lines += [statement.rstrip() + ("" if statement.startswith("--") else ";") for statement in self.entity_load]
        lines.append("-- 2. one join per feature view:")
        lines += [f"--    {view}: {choice['strategy']} ({choice['reason']})" for view, choice in self.strategies.items()]
        lines.append("-- 3. the point-in-time query")
        lines.append(self.sql.rstrip() + ";")
        return "\n".join(lines) + "\n"


@dataclass
class RetrievalSummary:
    rows: int = 0
    null_key_rows: int = 0
    null_time_rows: int = 0  # entity rows without a point in time (NULL/NaT): their features are NULL
    match_rate: dict[str, float] = field(default_factory=dict)  # view -> share of rows with a value
    null_rate: dict[str, float] = field(default_factory=dict)  # output column -> share of NULLs
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "null_key_rows": self.null_key_rows, "null_time_rows": self.null_time_rows,
                "match_rate": self.match_rate,
                "null_rate": self.null_rate, "seconds": round(self.seconds, 3)}


class _Summary:
    """Counts the summary (NULL join keys, matches per view, NULLs per feature) batch by batch
    with Arrow compute, and shapes each batch for the user: the matched flags dropped, the entity
    columns given back the entity frame's types (the warehouse may widen them: PostgreSQL has no
    8-bit integer, the timestamp went in as naive UTC) and each feature its declared type (a
    PostgreSQL numeric's precision would otherwise come from the values)."""

    def __init__(self, job: "RetrievalJob", schema: pa.Schema):
        self.requests = job.requests
        self.rows = self.null_key_rows = self.null_time_rows = 0
        self.matched = {request.alias: 0 for request in job.requests}
        self.nulls = {output: 0 for output in job.outputs}
        self.key_columns = sorted({entity_key for request in job.requests for entity_key, _ in request.keys})
        self.keep = [name for name in schema.names if not name.startswith((MATCH_PREFIX, KNOWN_PREFIX)) and name != ROW_COLUMN]
        self.timestamp = self.keep.index(job._timestamp)
        views = {EVENT_PREFIX + request.alias: request.view.name for request in job.requests}
        wanted = {**job.feature_types(schema), **job.entity_types}
        fields = [schema.field(name).with_name(f"{views[name]}__event_timestamp") if name in views
                  else schema.field(name).with_type(wanted.get(name, schema.field(name).type)) for name in self.keep]
        self.schema = pa.schema(fields)

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.rows += batch.num_rows
        null_keys = None
        for key in self.key_columns:
            mask = pc.is_null(batch.column(key))
            null_keys = mask if null_keys is None else pc.or_(null_keys, mask)
        if null_keys is not None:
            self.null_key_rows += int(pc.sum(null_keys).as_py() or 0)
        for alias in self.matched:
            self.matched[alias] += int(pc.sum(batch.column(MATCH_PREFIX + alias)).as_py() or 0)
        for output in self.nulls:
            self.nulls[output] += batch.column(output).null_count
        columns = [batch.column(name) for name in self.keep]
        moment = columns[self.timestamp]
        self.null_time_rows += moment.null_count
        # the warehouse's timestamp is UTC (naive, or tagged UTC): a zone added to it keeps the instants
        columns[self.timestamp] = pc.cast(moment, pa.timestamp("us"), safe=False)
        columns = [column if column.type == field_.type else pc.cast(column, field_.type)
                   for column, field_ in zip(columns, self.schema)]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def summary(self, seconds: float) -> RetrievalSummary:
        rows = self.rows
        return RetrievalSummary(
            rows=rows, null_key_rows=self.null_key_rows, null_time_rows=self.null_time_rows, seconds=seconds,
            match_rate={r.view.name: (self.matched[r.alias] / rows if rows else 0.0) for r in self.requests},
            null_rate={output: (nulls / rows if rows else 0.0) for output, nulls in self.nulls.items()})


class RetrievalJob:
    """A lazy point-in-time retrieval: nothing runs until `to_arrow`/`to_df`/`to_parquet`/`to_table`."""

    def __init__(self, connect: Callable[[], Warehouse], dialect: str, requests: list[ViewRequest],
                 entities: EntitySource, timestamp_column: str | None, knowledge_guard: bool = False,
                 strategy: str = "auto", known_at: dict[str, datetime] | None = None, *,
                 feature_service: str | None = None, provenance: dict | None = None, event_times: bool = False,
                 on_demand: tuple[OnDemandRequest, ...] = ()):
        """feature_service: the service the features came from (recorded in an export);
        provenance: what an export's manifest records of the project (featurestore.retrieval.manifest);
        event_times: also return each view's matched event time as <view>__event_timestamp;
        on_demand: request-time features computed over the point-in-time rows, their request
        fields taken from the entity columns of their names (featurestore.requests.plan_features)."""
        if strategy not in STRATEGIES:
            raise FeatureStoreError(f"strategy must be one of {', '.join(STRATEGIES)}, not '{strategy}'.")
        if knowledge_guard:
            for request in requests:
                if not request.view.created_timestamp:
                    raise FeatureStoreError(
                        f"Feature view '{request.view.name}' has no created_timestamp ({request.view.yaml_path}); "
                        "the knowledge-time guard needs one."
                    )
        self._connect = connect
        self.dialect = dialect
        self.requests = requests
        self.on_demand = tuple(on_demand)
        self.entities = entities
        self.knowledge_guard = knowledge_guard
        self.strategy = strategy
        self.summary: RetrievalSummary | None = None
        self.rows_written: int | None = None  # rows of the last export directory (Spark's to_parquet)
        self.feature_service = feature_service
        self._table: pa.Table | None = None
        self._positions: list[pa.Array] = []  # to_arrow: each row's entity row number, batch by batch
        self._timestamp_requested = timestamp_column
        self._plan: RetrievalPlan | None = None
        self._entity_load: list[str] = []
        self.known_at = dict(known_at or {})  # view name -> knowledge time (replay)
        self.provenance = dict(provenance or {})
        self.sql_as_run: str | None = None
        self.snapshot_state: dict[str, dict] = {}  # view -> {known_at, build_id}, read when the query runs
        self.timings: dict[str, float] = dict.fromkeys(PHASES, 0.0)  # seconds per phase of the last run
        self.content_sha256: str | None = None  # of the last file written by to_parquet
        self.event_times = event_times
        self.entity_types: dict[str, pa.DataType] = {}  # the entity columns' types, which the result keeps
        if entities.table is not None:
            self._timestamp = choose_timestamp_column(entities.table.schema, timestamp_column, entities.description)
            self.entity_types = self._entity_types_of(entities.table.schema)
            self._prepared = with_row_numbers(normalise_timestamp(self._request_timestamps(entities.table),
                                                                  self._timestamp, entities.description))
            for request in requests:
                if request.view.name in self.known_at:
                    moment = self.known_at[request.view.name].replace(tzinfo=None)
                    self._prepared = self._prepared.append_column(
                        KNOWN_PREFIX + request.alias, pa.array([moment] * self._prepared.num_rows, pa.timestamp("us")))
        else:
            if self.known_at:
                raise FeatureStoreError("A replay needs the entity rows as a table (they are read from the export).")
            self._timestamp, self._prepared = timestamp_column, None

    @property
    def request_fields(self) -> dict[str, str | None]:
        """The request fields the on-demand features need -> their declared types."""
        return {name: dtype for request in self.on_demand for name, dtype in request.request}

    @property
    def outputs(self) -> list[str]:
        """The feature columns of the answer: the views' (inputs read only for on-demand features
        left out), then the on-demand features."""
        return [output for request in self.requests for _, output in request.features if output not in request.hidden] \
            + [output for request in self.on_demand for _, output in request.features]

    def _request_timestamps(self, table: pa.Table) -> pa.Table:
        """Request fields declared as timestamps without a zone, as naive UTC (as the entity
        timestamp is, and as the online reader takes them); a field the table lacks is left to
        the output-name check, which names it."""
        for name, dtype in self.request_fields.items():
            kind = declared_arrow_type(dtype, self.dialect)
            if name in table.schema.names and name != self._timestamp and kind is not None \
                    and pa.types.is_timestamp(kind) and kind.tz is None:
                table = normalise_timestamp(table, name, self.entities.description)
        return table

    def _entity_types_of(self, schema: pa.Schema) -> dict[str, pa.DataType]:
        types = {field_.name: field_.type for field_ in schema}
        types[self._timestamp] = output_timestamp_type(types[self._timestamp])
        return types

    def feature_types(self, schema: pa.Schema) -> dict[str, pa.DataType]:
        """Output column -> its declared type (as featurestore.types reads the YAML), for the
        features whose declared type is known; a timestamp keeps the unit `schema` gives it."""
        wanted = {}
        for request in self.requests:
            for name, output in request.features:
                kind = declared_arrow_type(request.view.columns.get(name), self.dialect)
                if kind is not None and pa.types.is_timestamp(kind) and output in schema.names:
                    built = schema.field(output).type
                    kind = pa.timestamp(built.unit if pa.types.is_timestamp(built) else "us", kind.tz)
                if kind is not None:
                    wanted[output] = kind
        for request in self.on_demand:
            for name, output in request.features:
                kind = declared_arrow_type(request.view.feature(name).dtype, self.dialect)
                if kind is not None and not pa.types.is_timestamp(kind):
                    wanted[output] = kind
        return wanted

    def declared_types(self) -> dict[str, pa.DataType]:
        """The result's columns whose type is known before a row is read, for the warehouse's
        reader: each feature's declared type and the entity columns' (their timestamps and dates
        left to the engine, which holds them as naive UTC; _Summary gives them their zone)."""
        entity = {name: kind for name, kind in self.entity_types.items()
                  if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind))}
        return {**entity, **self.feature_types(pa.schema([]))}

    # -- the SQL -----------------------------------------------------------------------------
    def plan(self) -> RetrievalPlan:
        """How the retrieval runs, decided against the warehouse (the entity rows are loaded to
        count them and check their key types): the statements that load the entity rows as
        `_fs_entities`, the join strategy per view and why, and the point-in-time statement."""
        if self._plan is None:
            with self._connect(read_only=True) as warehouse:
                columns = self._load_entities(warehouse)
                self._check_output_names(columns)
                choices = self._check_and_choose(warehouse)
            self._plan = RetrievalPlan(
                entity_load=list(self._entity_load),
                strategies={r.view.name: {"strategy": choices[r.alias][0], "reason": choices[r.alias][1]}
                            for r in self.requests},
                sql=self._render(columns, {alias: choice[0] for alias, choice in choices.items()},
                                 match_columns=False, ordered=True))
        return self._plan

    @property
    def sql(self) -> str:
        """The point-in-time statement, runnable as printed once the entity rows are loaded as
        `_fs_entities` (`plan().entity_load`): every entity column and the features, in the entity
        rows' order. `to_table` runs exactly this; `to_arrow` runs it with a matched flag per view
        (for the summary) and restores the order in Python. Deciding the strategy reads the warehouse."""
        return self.plan().sql

    def _check_output_names(self, entity_columns: list[str]) -> None:
        check_column_names([c for c in entity_columns if c != ROW_COLUMN and not c.startswith(KNOWN_PREFIX)],
                           self.entities.description)
        taken = {column.lower(): column for column in entity_columns}
        for request in self.on_demand:
            for name, _ in request.request:
                if name not in entity_columns:
                    features = ", ".join(f"{request.view.name}:{feature}" for feature, _ in request.features)
                    raise EntityFrameError(
                        f"The entity {self.entities.description} has no column '{name}', a request field of the "
                        f"on-demand feature(s) {features}; add it (one value per row).")
        for request in [*self.requests, *self.on_demand]:
            for _, output in request.features:
                if output.lower() in taken:
                    raise EntityFrameError(
                        f"The entity {self.entities.description} has a column '{taken[output.lower()]}', the name of "
                        f"the requested feature '{request.view.name}:{output}'; rename the column or pass "
                        "full_feature_names=True (--full-feature-names).")

    def _render(self, entity_columns, strategies: dict[str, str], match_columns: bool, ordered: bool) -> str:
        views = [
            {
                "alias": request.alias,
                "relation": request.view.relation_name,
                "join_keys": request.keys,
                "features": request.features,
                "ttl_seconds": ttl_seconds(request.view),
                "strategy": "knowledge" if request.view.name in self.known_at else strategies[request.alias],
                "created": request.view.created_timestamp,
                "known_at": KNOWN_PREFIX + request.alias if request.view.name in self.known_at else None,
            }
            for request in self.requests
        ]
        shown = [c for c in (entity_columns or ["<entity columns>"]) if c != ROW_COLUMN and not c.startswith(KNOWN_PREFIX)]
        return sqlgen.render("point_in_time", dialect=self.dialect, entities=ENTITY_RELATION,
                             entity_columns=shown, timestamp=self._timestamp or "<timestamp>",
                             views=views, match_columns=match_columns, ordered=ordered,
                             event_columns=self.event_times,
                             on_demand=on_demand_spec(self.on_demand, self.dialect))

    # -- running -----------------------------------------------------------------------------
    def _load_entities(self, warehouse: Warehouse) -> list[str]:
        """Put the entity rows into the warehouse as `_fs_entities`; return its columns."""
        if self._prepared is not None:
            warehouse.load_arrow(ENTITY_RELATION, self._prepared, temporary=True)
            self._entity_load = [f"-- {ENTITY_RELATION}: the rows of the {self.entities.description} "
                                 f"({self._prepared.num_rows:,} rows), loaded through Arrow with the row number "
                                 f"{ROW_COLUMN}; columns: {', '.join(self._prepared.schema.names)}"]
            return self._prepared.schema.names
        if self.entities.spine:
            check_spine_size(warehouse, self.entities)
        parameters = self.entities.parameters
        query = self.entities.sql_for(warehouse)
        try:
            schema = warehouse.describe_user_query(query, parameters)
        except WarehouseError as exc:
            raise EntityFrameError(f"The entity {self.entities.description} cannot be read: {exc}") from None
        self._timestamp = choose_timestamp_column(schema, self._timestamp_requested, self.entities.description)
        self.entity_types = self._entity_types_of(schema)
        columns = []
        for field_ in schema:
            conversion = None
            if field_.name == ROW_COLUMN:
                raise EntityFrameError(f"The entity {self.entities.description} has a column named {ROW_COLUMN}, "
                                       "which featurestore uses itself.")
            if field_.name == self._timestamp:
                if pa.types.is_timestamp(field_.type) and field_.type.tz is not None:
                    conversion = "utc"
                elif pa.types.is_timestamp(field_.type) or pa.types.is_date(field_.type):
                    conversion = "timestamp"
                else:
                    raise EntityFrameError(
                        f"The timestamp column '{field_.name}' of the entity {self.entities.description} has type "
                        f"{field_.type}; cast it to a timestamp in the query."
                    )
            columns.append((field_.name, conversion))
        self._entity_load = warehouse.user_query_load_statements(ENTITY_RELATION, columns, query)
        if parameters:
            self._entity_load.insert(0, f"-- bind parameters, in order: {', '.join(map(str, parameters))}")
        try:
            warehouse.load_user_query(ENTITY_RELATION, columns, query, parameters)
        except WarehouseError as exc:
            raise EntityFrameError(f"The entity {self.entities.description} cannot be read: {exc}") from None
        return schema.names + [ROW_COLUMN]

    def _check_and_choose(self, warehouse: Warehouse) -> dict[str, tuple[str, str]]:
        entity_schema = warehouse.fetch_arrow(warehouse.render("relation_probe", probe="columns",
                                                               relation=ENTITY_RELATION)).schema
        entity_rows = self._prepared.num_rows if self._prepared is not None else \
            warehouse.fetch_all(warehouse.render("relation_probe", probe="count", relation=ENTITY_RELATION))[0][0]
        strategies = {}
        for request in self.requests:
            relation = request.view.relation_name
            try:
                view_schema = warehouse.fetch_arrow(warehouse.render("relation_probe", probe="columns",
                                                                     relation=relation)).schema
            except WarehouseError as exc:
                raise FeatureStoreError(f"Feature view '{request.view.name}' has no table {relation} in the warehouse "
                                        f"({exc}); run `dbt build` first.") from None
            missing = [f for f, _ in request.features if f not in view_schema.names]
            if missing:
                raise FeatureStoreError(
                    f"Feature view '{request.view.name}' ({request.view.yaml_path}) declares feature(s) "
                    f"{', '.join(missing)} that its table {relation} lacks; add them to the model's SQL "
                    "(or remove them from the YAML) and run `dbt build`.")
            check_key_types(entity_schema, request.view.name, view_schema, list(request.keys), self.entities.description)
            read = {view_key for _, view_key in request.keys} | {name for name, _ in request.features} \
                | {request.view.event_timestamp, request.view.created_timestamp}
            mismatches = [problem for problem in built_type_problems(request.view, view_schema, self.dialect)
                          if problem.column in read]
            if mismatches:
                raise FeatureStoreError("; ".join(
                    f"Feature view '{request.view.name}' ({request.view.yaml_path}): column '{problem.column}' "
                    f"{problem.message}" for problem in mismatches))
            strategies[request.alias] = self._strategy_for(warehouse, request, entity_rows)
        return strategies

    def _strategy_for(self, warehouse: Warehouse, request: ViewRequest, entity_rows: int) -> tuple[str, str]:
        """(strategy, why) for one view: see choose_strategy; the view's size is measured once per
        process, and only when the choice depends on it."""
        def view_size() -> tuple[int, float]:
            stats = _VIEW_STATS.get(request.view.relation_name)
            if stats is None:
                rows, keys_seen = warehouse.fetch_all(warehouse.render(
                    "relation_probe", probe="key_stats", relation=request.view.relation_name,
                    keys=[view_key for _, view_key in request.keys]))[0]
                stats = _VIEW_STATS[request.view.relation_name] = (rows, rows / keys_seen if keys_seen else 0.0)
            return stats

        return choose_strategy(self.dialect, self.strategy, self.knowledge_guard, entity_rows, view_size)

    def _run(self, sink: Callable[[Warehouse, str], Any], match_columns: bool, ordered: bool, read_only: bool = True):
        started = time.perf_counter()
        self.timings = dict.fromkeys(PHASES, 0.0)
        with self._connect(read_only=read_only) as warehouse:
            try:
                log.info(json.dumps({"event": "retrieval_phase", "phase": "entity load",
                                     "entities": self.entities.description}))
                columns = self._load_entities(warehouse)
                self.timings["entity load"] = time.perf_counter() - started
                self._check_output_names(columns)
                strategies = {alias: choice[0] for alias, choice in self._check_and_choose(warehouse).items()}
                self.snapshot_state = self._read_snapshot_state(warehouse)
                query = self._render(columns, strategies, match_columns, ordered)
                self.sql_as_run = query
                self.timings["checks"] = time.perf_counter() - started - self.timings["entity load"]
                log.info(json.dumps({"event": "retrieval_phase", "phase": "query"}))
                return sink(warehouse, query)
            finally:
                self._elapsed = time.perf_counter() - started

    def _export(self, consume: Callable[[pa.Schema, Iterator[pa.RecordBatch]], Any], ordered: bool = True) -> Any:
        """Run the point-in-time query and hand `consume` the output schema and the result's record
        batches as they arrive, shaped for the user (internal columns dropped, the timestamp as UTC);
        the summary is counted on the way. ordered: the rows come in the entity frame's order (the
        ORDER BY is in the SQL: what a stream written as it arrives needs); else in the engine's
        order, and `self._positions` collects each row's entity row number (_fs_row) for
        `restore_order`, which is cheaper than the engine's sort when the result is held whole
        (to_arrow). A result already fetched by to_arrow is handed over without running again."""
        if self._table is not None:
            return consume(self._table.schema, iter(self._table.to_batches()))
        self._positions = []

        def sink(warehouse: Warehouse, query: str):
            started = time.perf_counter()
            schema, reader = warehouse.stream_arrow(query, types=self.declared_types())
            self.timings["query"] += time.perf_counter() - started
            counter = _Summary(self, schema)
            timings = self.timings

            def batches() -> Iterator[pa.RecordBatch]:
                while True:
                    started = time.perf_counter()
                    batch = next(reader, None)
                    timings["query"] += time.perf_counter() - started
                    if batch is None:
                        self.summary = counter.summary(time.perf_counter() - self._started)
                        return
                    started = time.perf_counter()
                    shaped = counter.add(batch)
                    if not ordered:
                        self._positions.append(pc.cast(batch.column(ROW_COLUMN), pa.int64()))
                    timings["summary"] += time.perf_counter() - started
                    yield shaped

            return consume(counter.schema, batches())

        self._started = time.perf_counter()
        return self._run(sink, match_columns=True, ordered=ordered)

    def _read_snapshot_state(self, warehouse: Warehouse) -> dict[str, dict]:
        """Per view: the latest created timestamp it holds (what was known at this export) and the
        id of its last full build."""
        state = {}
        for request in self.requests:
            view = request.view
            known = None
            if view.created_timestamp:
                known = warehouse.fetch_all(warehouse.render("view_probe", probe="newest_created",
                                                             created=view.created_timestamp,
                                                             relation=view.relation_name))[0][0]
            state[view.name] = {"known_at": known.isoformat(timespec="microseconds") if known else None,
                                "build_id": warehouse.build_id(view.companion_relation("__build"))}
        return state

    def manifest(self, rows: int, digest: str) -> dict:
        """What produced this training set, so it can be replayed (featurestore replay)."""
        return {
            "format": 1, "references": [f"{r.view.name}:{name}" for r in [*self.requests, *self.on_demand]
                                        for name, output in r.features if output not in getattr(r, "hidden", ())],
            "outputs": self.outputs,
            "full_feature_names": any(output != name for r in [*self.requests, *self.on_demand]
                                      for name, output in r.features if output not in getattr(r, "hidden", ())),
            "timestamp_column": self._timestamp, "knowledge_guard": self.knowledge_guard,
            "entities": self.entities.description, "strategy": self.strategy, "sql": self.sql_as_run,
            "views": self.snapshot_state, "rows": rows, "content_sha256": digest,
            **self.provenance,
        }

    def to_arrow(self) -> pa.Table:
        """The training set: every entity column, then the features, in the entity frame's row order."""
        if self._table is None:
            table = self._export(lambda schema, batches: pa.Table.from_batches(list(batches), schema), ordered=False)
            started = time.perf_counter()
            positions = pa.chunked_array(self._positions, pa.int64()) if self._positions else pa.chunked_array([], pa.int64())
            self._table, self._positions = restore_order(table, positions), []
            self.timings["order"] = time.perf_counter() - started
            if self.summary is not None:
                self.summary.seconds = time.perf_counter() - self._started
        return self._table

    def to_df(self):
        """The training set as pandas with ML-ready dtypes (nullable Int64, decimals as float64;
        see featurestore.frames); `to_arrow()` keeps the warehouse's exact types."""
        from ..frames import ml_dataframe

        table = self.to_arrow()
        kept = dict(self.entities.pandas_dtypes or {})
        if self._timestamp in kept and not _is_datetime_dtype(kept[self._timestamp]):
            kept.pop(self._timestamp)  # ISO 8601 strings came back as timestamps, and stay timestamps
        return ml_dataframe(table, kept)

    def to_parquet(self, path: str | os.PathLike, save_stats: bool = True) -> Path:
        """Write the training set to Parquet atomically (a temporary file in the same folder, then
        one rename), streaming: each batch from the warehouse is written, hashed and counted as it
        arrives; only the feature columns are kept for the fingerprint. The fingerprint (what
        `featurestore drift --reference-stats` compares later data with) and the manifest (what
        `featurestore replay` reproduces it from) travel inside the file's metadata (keys
        `featurestore.stats` and `featurestore.manifest`), so file and stats can never disagree.
        On an engine whose executors write (Spark), a directory of Parquet files instead
        (featurestore.retrieval.parquet)."""
        from .parquet import write_directory, write_file

        if self.exports_directory and self._table is None:
            return write_directory(self, Path(path))
        return write_file(self, Path(path), save_stats)

    @property
    def exports_directory(self) -> bool:
        """Whether to_parquet writes a directory from the engine's executors (Spark) rather than
        one file through this process."""
        return engine_class(self.dialect).exports_parquet_directories

    def to_table(self, name: str) -> str:
        """Materialise the training set as a warehouse table `name` without a round trip through
        Python; an existing table of that name is replaced in one transaction (all or nothing)."""
        parts = name.split(".")
        if not all(part and part.replace("_", "").isalnum() for part in parts) or len(parts) > 3:
            raise FeatureStoreError(f"'{name}' is not a table name of the form [schema.]table.")
        relation = ".".join(sqlgen.quote_identifier(part, self.dialect) for part in parts)

        def create(warehouse: Warehouse, query: str) -> None:
            with warehouse.transaction():
                warehouse.execute(warehouse.render("replace_table", relation=relation, drop=True))
                warehouse.execute(warehouse.render("replace_table", relation=relation, query=query))

        self._run(create, match_columns=False, ordered=True, read_only=False)
        return relation


def restore_order(table: pa.Table, positions: pa.ChunkedArray) -> pa.Table:
    """`table`'s rows in entity-frame order, `positions` being each row's entity row number
    (_fs_row). Each view joins at most one row to an entity row, so the positions are a
    permutation of 0..n-1 whose inverse is found in one pass (Arrow's inverse_permutation, from
    pyarrow 20); should they not be one (a snapshot whose intervals overlap would repeat a row),
    or on an older pyarrow, a stable sort by position, which keeps every row."""
    if table.num_rows == 0:
        return table
    inverse = None
    if hasattr(pc, "inverse_permutation"):
        try:
            inverse = pc.inverse_permutation(positions)
        except (pa.ArrowIndexError, pa.ArrowInvalid):  # a number past the row count: not a permutation
            pass
        if inverse is not None and inverse.null_count:  # a number twice, another missing
            inverse = None
    if inverse is None:
        inverse = pc.sort_indices(positions)
    return table.take(inverse)


def on_demand_spec(on_demand: tuple[OnDemandRequest, ...], dialect: str) -> dict | None:
    """What sql/point_in_time.sql needs to compute on-demand features (see _pit_on_demand): the
    request fields and the output types as the engine spells them, the hidden input columns by
    bare name, each expression. (The training_set macro builds the same: _plan_on_demand.)"""
    if not on_demand:
        return None
    spell = lambda dtype: ondemand.column_type(dtype, dialect)  # noqa: E731
    inputs = list(dict.fromkeys((column, bare) for request in on_demand for bare, column in request.inputs))
    return {
        "requests": list(dict.fromkeys((name, spell(dtype)) for request in on_demand for name, dtype in request.request)),
        "inputs": inputs,
        "features": [(output, ondemand.expression_of(request.view, request.view.feature(name)),
                      spell(request.view.feature(name).dtype))
                     for request in on_demand for name, output in request.features],
        "hidden": [column for column, _ in inputs],
    }


def choose_strategy(dialect: str, strategy: str, knowledge_guard: bool, entity_rows: int,
                    view_size: Callable[[], tuple[int, float]]) -> tuple[str, str]:
    """(strategy, why). The knowledge guard ranks versions; other engines join on the validity
    intervals. DuckDB: the interval join's work grows with entity rows x rows per key (the hash
    join fans out), the ASOF join's with entity rows + view rows (it sorts both); measured
    crossover (benchmarks/bench_training.py): ASOF wins once the first is ~150x the second.
    view_size() -> (view rows, rows per key) is asked only for that last comparison."""
    if knowledge_guard:
        return "knowledge", "the knowledge guard ranks the versions known at each entity time"
    if dialect != "duckdb":
        return "interval", f"{dialect} joins on the validity intervals"
    if strategy != "auto":
        return strategy, f"strategy='{strategy}' was requested"
    view_rows, rows_per_key = view_size()
    fan_out = entity_rows * rows_per_key
    budget = ASOF_CROSSOVER * (entity_rows + view_rows)
    why = (f"{entity_rows:,} entity rows x {rows_per_key:,.1f} rows per key = {fan_out:,.0f} "
           f"{'>' if fan_out > budget else '<='} {ASOF_CROSSOVER} x ({entity_rows:,} entity rows + {view_rows:,} view rows)")
    return ("asof", why) if fan_out > budget else ("interval", why)


def _is_datetime_dtype(dtype) -> bool:
    import pandas as pd

    return pd.api.types.is_datetime64_any_dtype(dtype)
