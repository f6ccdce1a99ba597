"""The same project on PostgreSQL: the demo's snapshot tables equal DuckDB's, and the snapshot
materialization agrees with the oracle there too (a smaller set of cases)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import PostgresTables, duckdb_path
from test_snapshots import check_future_rows, check_rolling, make_props_project, run_snapshot_properties

COMPARED = {
    "customer_features": "customer_id, feature_ts",
    "store_features": "store_id, feature_ts",
    "customer_product_features": "customer_id, product_type, feature_ts",
    "churn_labels": "customer_id, label_ts",
    "churn_training_set": "customer_id, label_ts",  # built by featurestore.training_set
}


@pytest.mark.parametrize("table", sorted(COMPARED))
@pytest.mark.dbt_compat
def test_demo_tables_identical_on_duckdb_and_postgres(demo_project, demo_on_postgres, table):
    with duckdb.connect(str(duckdb_path(demo_project)), read_only=True) as con:
        columns = [row[0] for row in con.execute(f"describe {table}").fetchall()]
        on_duckdb = con.execute(f"select * from {table} order by {COMPARED[table]}, valid_from, superseded_at nulls first"
                                if "valid_from" in columns else
                                f"select * from {table} order by {COMPARED[table]}").fetchall()
    order = (f"{COMPARED[table]}, valid_from, superseded_at nulls first" if "valid_from" in columns
             else COMPARED[table])
    on_postgres = demo_on_postgres.fetch(f"select {', '.join(columns)} from {{schema}}.{table} order by {order}")
    assert len(on_duckdb) > 100
    assert on_postgres == on_duckdb


def test_the_registry_tables_on_postgres_agree_with_the_registry(demo_project, demo_on_postgres):
    """The demo's registry tables, built by its `dbt build` on PostgreSQL, hold what the Python
    registry reads (relations aside: they name PostgreSQL's schema)."""
    from featurestore.registry import load_manifest, registry_from_manifest
    from test_adoption import registry_as_tables, registry_tables

    expected = registry_as_tables(registry_from_manifest(load_manifest(demo_project / "target" / "manifest.json")))
    tables = registry_tables(lambda sql: demo_on_postgres.fetch(sql.replace("{schema}", "{schema}.")))
    relations = {name: view.pop("relation") for name, view in tables["feature_views"].items()}
    for view in expected["feature_views"].values():
        del view["relation"]
    assert tables == expected
    assert len(tables["features"]) > 10 and tables["services"]
    assert all(relation.endswith(f'"demo"."{name}"') for name, relation in relations.items())


@pytest.mark.dbt_compat
def test_snapshot_and_rolling_match_the_oracle_on_postgres(tmp_path_factory, postgres_server):
    env = {**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "props"}
    dbt = make_props_project(tmp_path_factory.mktemp("pgprops") / "project", "postgres", **env)
    tables = PostgresTables(postgres_server, "props")
    cases, loaded = run_snapshot_properties(dbt, tables, n_cases=60, seed=99)
    check_rolling(dbt, tables, cases, loaded)
    check_future_rows(dbt, tables)


def test_point_in_time_matches_the_oracle_on_postgres(tmp_path_factory, postgres_server):
    from test_training import FEATURES, TYPES, assert_matches_oracle, build_training_project, entity_frame

    import oracles

    cases = oracles.generate_pit_cases(60, seed=777)
    tables = PostgresTables(postgres_server, "training")
    env = {**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "training"}

    def load(table, columns, rows):
        ddl = f"create or replace table {{schema}}.{table} ({', '.join(f'{c} {TYPES[c]}' for c in columns)})"
        tables.load(ddl, table, rows)

    store = build_training_project(tmp_path_factory.mktemp("pgtraining") / "project", cases, load, "postgres", **env)
    frame = entity_frame(cases)
    for guard in (False, True):
        job = store.get_historical_features(frame, FEATURES, full_feature_names=True, knowledge_guard=guard)
        assert_matches_oracle(job.to_arrow(), oracles.point_in_time(cases, knowledge_guard=guard))
    with pytest.raises(Exception, match="Join key 'place_id'.*string"):
        store.get_historical_features(frame.assign(place_id=frame.place_id.astype(str)), ["place_features:size"]).to_arrow()


@pytest.mark.parametrize("rows", ["all", "none", "before any feature"])
def test_exported_types_follow_the_declaration_on_postgres(demo_project, demo_on_postgres, postgres_server, tmp_path,
                                                           rows):
    """The churn training set exported as Parquet on PostgreSQL is DuckDB's: the same values and
    the same schema. Decimals keep their declared precision (not the values'), the entity frame's
    int32 label and naive timestamp stay as they were; also when no row comes back (an empty
    first batch) and when every feature is NULL (entity times before any feature row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurestore import FeatureStore
    from test_types import churn_entities

    duck = FeatureStore(demo_project)
    entities = churn_entities(duck)
    if rows == "none":
        entities = entities.head(0)
    elif rows == "before any feature":
        entities["label_ts"] = entities["label_ts"] - pd.Timedelta(days=3650)
    pg = FeatureStore(demo_project, "postgres", env={**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "demo"})
    assert [problem for problem in pg.validate() if problem.rule == "type-mismatch"] == []
    exported = []
    for store, name in ((duck, "duckdb"), (pg, "postgres")):
        path = store.get_historical_features(entities, feature_service="churn_model", timestamp_column="label_ts") \
            .to_parquet(tmp_path / f"{name}.parquet")
        exported.append(pq.read_table(path))
    on_duckdb, on_postgres = exported
    assert on_postgres.schema.remove_metadata() == on_duckdb.schema.remove_metadata()
    assert on_postgres.to_pylist() == on_duckdb.to_pylist()
    assert on_postgres.num_rows == len(entities)
    features = [name for name in on_postgres.schema.names if name not in entities.columns]
    if rows == "before any feature":
        assert len(features) > 3 and all(on_postgres.column(name).null_count == len(entities) for name in features)
    assert on_postgres.schema.field("lifetime_value").type == pa.decimal128(18, 2)
    assert on_postgres.schema.field("churned_30d").type == pa.int32()
    assert on_postgres.schema.field("label_ts").type == pa.timestamp("us")


def test_the_postgres_reader_streams_batches_typed_before_any_row(postgres_server):
    """The PostgreSQL reader gives batches of STREAM_BATCH_ROWS rows from a server-side cursor,
    every one of the schema fixed before the first row: a declared type where the caller gives
    one, else the column's PostgreSQL type (an unconstrained numeric as a double), never the
    values' (the first batch here is all NULL, the last has 5 rows); an empty result has the
    same schema. The connection works as before afterwards."""
    from decimal import Decimal

    import pyarrow as pa

    from featurestore.warehouse import STREAM_BATCH_ROWS, connect

    target = {"type": "postgres", "host": postgres_server.host, "port": postgres_server.port,
              "user": postgres_server.user, "dbname": postgres_server.database}
    query = ("select g as n, case when g > %s then round(g / 3.0, 6) end as ratio, "
             "case when g > %s then round(g / 7.0, 2) end as undeclared, null::text as note, "
             "cast(case when g > %s then g end as numeric(12, 1)) as tenths "
             "from generate_series(1, %s) g order by g")
    declared = {"ratio": pa.decimal128(18, 6)}
    expected = pa.schema([("n", pa.int32()), ("ratio", pa.decimal128(18, 6)), ("undeclared", pa.float64()),
                          ("note", pa.string()), ("tenths", pa.decimal128(12, 1))])
    total = 2 * STREAM_BATCH_ROWS + 5
    with connect(target) as warehouse:
        for rows in (total, 0):
            schema, batches = warehouse.stream_arrow(query, (STREAM_BATCH_ROWS,) * 3 + (rows,), types=declared)
            batches = list(batches)
            assert schema == expected
            assert all(batch.schema == expected for batch in batches)
            assert [batch.num_rows for batch in batches] == ([STREAM_BATCH_ROWS, STREAM_BATCH_ROWS, 5] if rows else [])
        table = pa.Table.from_batches(list(warehouse.stream_arrow(query, (STREAM_BATCH_ROWS,) * 3 + (total,),
                                                                  types=declared)[1]))
        assert table.column("ratio").null_count == STREAM_BATCH_ROWS
        assert table.column("ratio")[total - 1].as_py() == round(Decimal(total) / 3, 6)
        assert table.column("undeclared")[total - 1].as_py() == pytest.approx(total / 7, abs=0.005)
        # the cursor's transaction is over: the connection is back in autocommit
        warehouse.execute("create temporary table after_stream as select 1 as k")
        assert warehouse.fetch_all("select count(*) from after_stream") == [(1,)]
        with pytest.raises(Exception, match="PostgreSQL"):
            warehouse.stream_arrow("select 1 / 0 as broken")
        assert warehouse.fetch_all("select 2") == [(2,)]


BIG_EXPORT_ROWS = 3_000_000
LIMITED_EXPORT = Path(__file__).resolve().parent.parent / "limited_export.py"


def _export_in_a_process(arguments: dict, memory_limit: int | None = None) -> subprocess.CompletedProcess:
    """tests/limited_export.py with `arguments`, its address space limited to memory_limit bytes.
    The address space then measures the memory in use: Arrow allocates with malloc (mimalloc,
    its default, reserves a GiB up front) and malloc keeps one arena (glibc's per-thread
    arenas reserve address space by the 64 MiB, as many as the threads happened to need)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([sys.executable, str(LIMITED_EXPORT), json.dumps(arguments)], capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "MALLOC_ARENA_MAX": "1", "ARROW_DEFAULT_MEMORY_POOL": "system"},
                          preexec_fn=limit if memory_limit else None)


def test_a_postgres_export_larger_than_the_memory_limit_streams(demo_project, demo_on_postgres, postgres_server,
                                                                 tmp_path):
    """A PostgreSQL export whose whole result (as Arrow, the most compact form in memory) is
    larger than what the process may map beyond its baseline succeeds: the rows come through a
    server-side cursor batch by batch and are written as they arrive. The baseline is the peak of
    the same export of a few rows; the limit is that plus 75 % of the full result's Arrow size.
    What the export holds is one batch, at most WRITE_BUFFER_BYTES unwritten and the feature
    columns for the fingerprint (which needs every row): here a fifth of a row's bytes."""
    import pyarrow.parquet as pq

    tables = PostgresTables(postgres_server, "bigexport")
    labels = demo_on_postgres.fetch("select count(*) from {schema}.churn_labels")[0][0]
    copies = -(-BIG_EXPORT_ROWS // labels)
    # wide rows (a 192-character column) so the result is large in any form
    tables.load(f"create or replace table {{schema}}.{{table}} as select l.customer_id, l.store_id, l.label_ts, "
                f"l.churned_30d, g as copy, "
                f"repeat(md5(g::text || l.customer_id), 6) as padding from demo.churn_labels l "
                f"cross join generate_series(1, {copies}) g", "entities", None)
    rows = labels * copies
    arguments = {"project": str(demo_project), "target": "postgres",
                 "env": {**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "demo"},
                 "feature_service": "churn_model", "timestamp_column": "label_ts"}
    query = "select customer_id, store_id, label_ts, churned_30d, copy, padding from bigexport.entities"

    few = _export_in_a_process({**arguments, "entity_query": query + " where copy <= 2", "out": str(tmp_path / "few.parquet")})
    assert few.returncode == 0, few.stderr[-3000:]
    baseline = json.loads(few.stdout.splitlines()[-1])
    sample = pq.read_table(tmp_path / "few.parquet")
    full_arrow = sample.nbytes * rows // sample.num_rows
    memory_limit = baseline["VmPeak"] + full_arrow * 3 // 4
    print(f"\n{rows:,} rows; baseline (export of {sample.num_rows:,} rows): VmPeak {baseline['VmPeak'] / 2**20:.0f} MiB, "
          f"VmHWM {baseline['VmHWM'] / 2**20:.0f} MiB; the full result as Arrow: {full_arrow / 2**20:.0f} MiB; "
          f"limit (RLIMIT_AS): {memory_limit / 2**20:.0f} MiB")

    big = _export_in_a_process({**arguments, "entity_query": query, "out": str(tmp_path / "all.parquet")}, memory_limit)
    assert big.returncode == 0, big.stderr[-3000:]
    peak = json.loads(big.stdout.splitlines()[-1])
    print(f"under the limit: VmPeak {peak['VmPeak'] / 2**20:.0f} MiB, VmHWM {peak['VmHWM'] / 2**20:.0f} MiB")
    assert peak["rows"] == rows and pq.read_metadata(tmp_path / "all.parquet").num_rows == rows
    assert pq.read_schema(tmp_path / "all.parquet").remove_metadata() == sample.schema.remove_metadata()
