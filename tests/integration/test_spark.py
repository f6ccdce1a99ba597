"""The same projects on Apache Spark (dbt-spark, `method: session`, local mode): the snapshot and
point-in-time oracles, the Python side (export, sync, stats, drift, audit), hostile entity
queries, and the demo's churn training set equal on DuckDB, PostgreSQL and Spark.

All Spark tests share one Spark session (one JVM, one warehouse directory and Derby metastore
per test run): dbt runs in this process, so dbt-spark and the SDK reuse the session the first
test starts. Each project uses its own schema.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pyarrow as pa
import pytest

import oracles
from featurestore import FeatureStore
from test_training import FEATURES, TYPES, assert_matches_oracle, build_training_project, entity_frame
from test_snapshots import EVENTS_DDL, SNAPSHOT_COLUMNS, check_rolling, make_props_project, run_snapshot_properties


class SparkTables:
    """Load and read a project's tables through the shared Spark session."""

    def __init__(self, dbt, schema: str):
        from featurestore.profiles import load_target
        from featurestore.warehouse import connect

        self.schema = schema
        self.warehouse = connect(load_target(dbt), dbt.project_dir)
        self.warehouse.execute(f"create schema if not exists {schema}")

    def load(self, ddl: str, table: str, rows):
        columns = ddl.split("(", 1)[1].rsplit(")", 1)[0].replace("varchar", "string")
        session = self.warehouse.session
        self.warehouse.execute(f"drop table if exists {self.schema}.{table}")
        frame = session.createDataFrame(rows, schema=columns) if rows else session.createDataFrame([], schema=columns)
        frame.write.format("parquet").saveAsTable(f"{self.schema}.{table}")

    def fetch(self, sql: str):
        table = self.warehouse.fetch_arrow(sql.format(schema=self.schema))
        return [tuple(row.values()) for row in table.to_pylist()]

    def table_id(self, table: str):
        """The id of the snapshot table's last full build (its `__build` record): an incremental
        run's insert overwrite keeps it, a rebuild replaces it."""
        rows = self.warehouse.fetch_all(f"select build_id from {self.schema}.{table}__build")
        assert len(rows) == 1, rows
        return rows[0][0]


# dbt in this process even when the run sets FEATURESTORE_DBT to a command: this process holds the
# Spark session, and dbt-spark's `session` method in a dbt child process would need the same
# embedded Derby metastore, which one process at a time can open (README, "Apache Spark").
IN_PROCESS = {"FEATURESTORE_DBT": "inprocess"}


def configure_events_view(dbt, **config):
    """Set model configs of the props project's feature view (in its schema.yml)."""
    schema = dbt.project_dir / "models" / "schema.yml"
    lines = "".join(f"\n      {name}: {value}" for name, value in config.items())
    text = "".join(line for line in schema.read_text().splitlines(keepends=True)
                   if line.strip().split(":")[0] not in config)  # an earlier setting goes
    assert text.count("materialized: feature_view\n") == 1
    schema.write_text(text.replace("materialized: feature_view\n", f"materialized: feature_view{lines}\n"))


@pytest.mark.dbt_compat
def test_snapshot_and_rolling_match_the_oracle_on_spark(tmp_path_factory, spark_dir):
    dbt = make_props_project(tmp_path_factory.mktemp("sparkprops") / "project", "spark",
                             FEATURESTORE_SPARK_SCHEMA="props", FEATURESTORE_SPARK_DIR=str(spark_dir), **IN_PROCESS)
    configure_events_view(dbt, snapshot_rebuild_share=1)  # every run incremental: that path is under test
    tables = SparkTables(dbt, "props")
    cases, loaded = run_snapshot_properties(dbt, tables, n_cases=40, seed=515)
    check_rolling(dbt, tables, cases, loaded)

    # a run stopped while it replaced buckets leaves its marker: the next run rebuilds from scratch
    tables.warehouse.execute("create table props.events_view__fs_swapping using parquet as select 1 as swapping")
    before = tables.table_id("events_view")
    dbt.run("run", "--select", "events_view", "--quiet")
    assert tables.table_id("events_view") != before
    assert not tables.warehouse.fetch_all("show tables in props like 'events_view__fs_swapping'")
    expected, _ = oracles.snapshot(loaded)
    got = tables.fetch(f"select {SNAPSHOT_COLUMNS} from {{schema}}.events_view")
    assert oracles.sort_rows(got) == oracles.sort_rows(expected)


@pytest.mark.dbt_compat
def test_a_batch_touching_most_buckets_rebuilds_on_spark(tmp_path_factory, spark_dir):
    """Past snapshot_rebuild_share of the buckets an incremental run rebuilds (a full build: new
    build record, the same rows as the oracle, rejected rows right) and says so; a batch on few
    buckets stays incremental; a bad share is refused, naming the model, before anything is written."""
    dbt = make_props_project(tmp_path_factory.mktemp("sparkrebuild") / "project", "spark",
                             FEATURESTORE_SPARK_SCHEMA="rebuild", FEATURESTORE_SPARK_DIR=str(spark_dir), **IN_PROCESS)
    configure_events_view(dbt, snapshot_buckets=4, snapshot_rebuild_share=0.5)
    tables = SparkTables(dbt, "rebuild")
    log = dbt.project_dir / "logs" / "dbt.log"

    def run_and_check(loaded):
        tables.load(EVENTS_DDL, "events", loaded)
        log.unlink(missing_ok=True)
        dbt.run("run", "--select", "events_view", "--quiet")
        expected, expected_rejected = oracles.snapshot(loaded)
        assert oracles.sort_rows(tables.fetch(f"select {SNAPSHOT_COLUMNS} from {{schema}}.events_view")) \
            == oracles.sort_rows(expected)
        rejected = tables.fetch(f"select {', '.join(oracles.EVENT_COLUMNS)} from {{schema}}.events_view__rejected")
        assert oracles.sort_rows(rejected) == oracles.sort_rows(expected_rejected)
        return log.read_text()

    cases = oracles.generate_cases(12, seed=2424, max_batches=2)
    loaded = list(cases.batches[0])
    run_and_check(loaded)
    # the second batch: rows of many keys, over more than half of the 4 buckets
    first = tables.table_id("events_view")
    loaded += cases.batches[1]
    text = run_and_check(loaded)
    touched = len({row[:2] for row in cases.batches[1]})
    assert touched > 4, touched
    assert re.search(r"featurestore: events_view: the new rows touch [34] of 4 buckets \(\d+%\); "
                     r"above 50% a rebuild is cheaper: rebuilding", text), text[-3000:]
    rebuilt = tables.table_id("events_view")
    assert rebuilt != first  # recorded as a full build
    assert not tables.warehouse.fetch_all("show tables in rebuild like 'events_view__fs_*'")
    # the rebuild is a --full-refresh's, value for value (the table and its rejected rows)
    snapshot_sql = f"select {SNAPSHOT_COLUMNS}, _fs_bucket from {{schema}}.events_view"
    rejected_sql = "select * from {schema}.events_view__rejected"
    by_fallback = (tables.fetch(snapshot_sql), tables.fetch(rejected_sql))
    dbt.run("run", "--select", "events_view", "--full-refresh", "--quiet")
    assert (oracles.sort_rows(tables.fetch(snapshot_sql)), oracles.sort_rows(tables.fetch(rejected_sql))) \
        == (oracles.sort_rows(by_fallback[0]), oracles.sort_rows(by_fallback[1]))
    rebuilt = tables.table_id("events_view")
    # a later row of one key: one bucket, incremental
    key_row = next(row for row in loaded if None not in row[:4])
    late = max(row[3] for row in loaded if row[3] is not None) + timedelta(minutes=5)
    loaded.append((key_row[0], key_row[1], key_row[2] + timedelta(minutes=1), late, 7, "late"))
    text = run_and_check(loaded)
    assert "the new rows touch 1 of 4 buckets (25%); rewriting those (a rebuild above 50%)" in text, text[-3000:]
    assert tables.table_id("events_view") == rebuilt

    configure_events_view(dbt, snapshot_rebuild_share=1.5)
    loaded.append((key_row[0], key_row[1], key_row[2] + timedelta(minutes=2), late + timedelta(minutes=1), 8, "bad"))
    tables.load(EVENTS_DDL, "events", loaded)
    before = tables.fetch(f"select {SNAPSHOT_COLUMNS} from {{schema}}.events_view")
    result = dbt.run("run", "--select", "events_view", "--quiet", raise_on_failure=False)
    assert not result.success
    message = result.describe_failure()
    assert "model 'events_view' sets snapshot_rebuild_share: 1.5" in message and "from 0 to 1" in message, message
    assert tables.fetch(f"select {SNAPSHOT_COLUMNS} from {{schema}}.events_view") == before
    assert tables.table_id("events_view") == rebuilt


def build_spark_training_project(root, cases, env) -> tuple[FeatureStore, SparkTables]:
    """The point-in-time fixture project on Spark (schema `training`), the cases' rows loaded
    through the session: its store, and its tables."""
    from featurestore.dbt import DbtProject

    tables = []

    def load(table, columns, rows):
        if not tables:
            tables.append(SparkTables(DbtProject.at(root, "spark", env), "training"))
        ddl = f"create or replace table {{schema}}.{table} ({', '.join(f'{c} {TYPES[c]}' for c in columns)})"
        tables[0].load(ddl, table, rows)

    store = build_training_project(root, cases, load, "spark", **env)
    return store, tables[0]


def test_point_in_time_matches_the_oracle_on_spark(tmp_path_factory, spark_dir):
    """Interval join and knowledge guard in Spark, the entity rows loaded through Arrow and as a
    query; ties, TTL edges, unknown and NULL keys, duplicate entity rows."""
    cases = oracles.generate_pit_cases(40, seed=9090)
    env = {"FEATURESTORE_SPARK_SCHEMA": "training", "FEATURESTORE_SPARK_DIR": str(spark_dir), **IN_PROCESS}
    store, tables = build_spark_training_project(tmp_path_factory.mktemp("sparktraining") / "project", cases, env)
    frame = entity_frame(cases)
    for guard in (False, True):
        job = store.get_historical_features(frame, FEATURES, full_feature_names=True, knowledge_guard=guard)
        assert_matches_oracle(job.to_arrow(), oracles.point_in_time(cases, knowledge_guard=guard))
    # the same rows as a query the user hands us (run read-only by Spark's parser's rules)
    tables.warehouse.load_arrow("training.entity_rows", pa.Table.from_pandas(frame))
    job = store.get_historical_features("select * from training.entity_rows", FEATURES, full_feature_names=True)
    rows = [dict(row, event_timestamp=row["event_timestamp"].replace(tzinfo=None)) for row in job.to_arrow().to_pylist()]
    assert sorted(map(repr, rows)) == sorted(map(repr, oracles.point_in_time(cases, knowledge_guard=False)))


def test_the_python_side_runs_in_spark(demo_on_spark, moto_server, tmp_path):
    """Export from the executors, sync partition by partition, stats, drift and the training/
    serving audit, all on the Spark demo."""
    import pyarrow.dataset as ds

    from featurestore import FeatureStore

    store = FeatureStore(demo_on_spark.project.project_dir, "spark",
                         env={**demo_on_spark.project.env, "FEATURESTORE_DYNAMODB_ENDPOINT": moto_server,
                              "FEATURESTORE_TABLE_PREFIX": "spark_"})
    with store.connect() as warehouse:
        labels = warehouse.fetch_arrow("select * from demo.churn_labels order by customer_id, label_ts")
    job = store.get_historical_features(labels, feature_service="churn_model", timestamp_column="label_ts")
    out = job.to_parquet(tmp_path / "churn")
    parts = sorted(path.name for path in out.glob("part-*.parquet"))
    assert parts and (out / "_featurestore_manifest.json").exists()
    written = ds.dataset(out, format="parquet").to_table()
    again = store.get_historical_features(labels, feature_service="churn_model", timestamp_column="label_ts").to_arrow()
    assert written.num_rows == again.num_rows == labels.num_rows
    # the entity frame's order, across the files (whose timestamps Spark writes UTC-adjusted)
    assert written.to_pylist() == again.cast(written.schema).to_pylist()
    job.to_parquet(tmp_path / "churn")  # an existing export directory is replaced whole
    assert not set(parts) & {path.name for path in out.glob("part-*.parquet")}
    assert ds.dataset(out, format="parquet").to_table().to_pylist() == written.to_pylist()

    # sync's partition-by-partition read gives what a collect gives, whatever this host's zone
    import os
    import time

    import pyarrow as pa

    zone = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        with store.connect() as warehouse:
            query = "select customer_id, feature_ts, loaded_at from demo.customer_features order by customer_id, feature_ts"
            streamed = pa.concat_tables(list(warehouse.read_parts(query)))
            assert streamed.num_rows > 1000 and streamed.to_pylist() == warehouse.fetch_arrow(query).to_pylist()
    finally:
        os.environ.pop("TZ") if zone is None else os.environ.__setitem__("TZ", zone)
        time.tzset()

    # (the push view is empty here: Spark's pushed_rows does not read the landing files)
    # the first sync is a bulk load written by the executors (mapInArrow), then merged and switched
    results = {r.view: r for r in store.sync() if r.view != "customer_live_features"}
    assert results and all(r.rows_read > 0 and r.written == r.rows_read for r in results.values()), results
    assert {r.path for r in results.values()} == {"bulk, from the engine's workers"}
    assert all(r.watermark_after for r in results.values())
    assert all(r.mode == "incremental" and r.rows_read == 0 for r in store.sync(list(results)))
    stats = store.stats(feature_service="churn_model", save=True)
    assert all(entry["rows"] > 0 for entry in stats)
    audit = store.audit("customer_features", sample=20)
    assert audit["keys"] == 20 and audit["mismatches"] == []
    with store.connect() as warehouse:
        first, last = warehouse.fetch_all("select min(feature_ts), max(feature_ts) from demo.customer_features")[0]
    middle = first + (last - first) / 2
    drift = store.drift("customer_features", reference=(first, middle), current=(middle, last))
    assert drift and not any(result.no_data for result in drift)


@pytest.mark.parametrize("query", [
    "select 1 as k; drop table demo.customer_features",
    "insert into demo.churn_labels select * from demo.churn_labels",
    "create table demo.x as select 1 as k",
    "drop table demo.customer_features",
    "with x as (select 1 as k) insert into demo.churn_labels select * from x",
    "select * from parquet.`/etc`",
    "set spark.sql.ansi.enabled = false",
    "",
])
def test_an_entity_query_that_is_not_one_read_only_select_is_refused_on_spark(demo_on_spark, query):
    from featurestore.errors import FeatureStoreError

    with pytest.raises(FeatureStoreError) as caught:
        demo_on_spark.get_historical_features(query, feature_service="churn_model").to_arrow()
    assert "entity" in str(caught.value).lower()
    with demo_on_spark.connect() as warehouse:  # nothing was written or dropped
        assert warehouse.fetch_all("select count(*) from demo.customer_features")[0][0] > 0
        assert not warehouse.fetch_all("show tables in demo like 'x'")


@pytest.mark.parametrize("power,culprit", [
    ("java_method('java.lang.System', 'getProperty', 'user.home')", "java_method()"),
    ("reflect('java.lang.Thread', 'sleep', 1L)", "reflect()"),
    ("current_user()", "current_user()"),
])
def test_an_entity_query_calling_a_function_off_the_allow_list_is_refused_on_spark(demo_on_spark, power, culprit):
    """Java's methods and the session's user are not pure functions: refused, naming the function."""
    from featurestore.warehouse import UserQueryError

    query = f"select *, {power} as power from demo.churn_labels"
    with pytest.raises(UserQueryError) as caught:
        demo_on_spark.get_historical_features(query, feature_service="churn_model", timestamp_column="label_ts").to_arrow()
    assert culprit in str(caught.value)
    # a legitimate query with dates, casts and a window still runs
    legit = ("select customer_id, store_id, cast(label_ts as timestamp) as event_timestamp, "
             "date_add(label_ts, 1) as next_day, "
             "row_number() over (partition by customer_id order by label_ts) as n from demo.churn_labels")
    assert demo_on_spark.get_historical_features(legit, feature_service="churn_model").to_arrow().num_rows > 0


def test_churn_training_set_identical_on_duckdb_postgres_and_spark(demo_project, demo_on_postgres, postgres_server,
                                                                  demo_on_spark):
    """The demo's churn training set (the same raw rows built on each engine) is the same rows,
    values and types on DuckDB, PostgreSQL and Spark."""
    duck = FeatureStore(demo_project)
    with duck.connect() as warehouse:
        labels = warehouse.fetch_arrow("select * from main.churn_labels order by customer_id, label_ts").to_pandas()
    on_duckdb = duck.get_historical_features(labels, feature_service="churn_model", timestamp_column="label_ts").to_arrow()
    pg = FeatureStore(demo_project, "postgres", env={**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "demo"})
    on_postgres = pg.get_historical_features(labels, feature_service="churn_model", timestamp_column="label_ts").to_arrow()
    on_spark = demo_on_spark.get_historical_features(labels, feature_service="churn_model",
                                                     timestamp_column="label_ts").to_arrow()
    assert on_duckdb.num_rows > 100
    assert on_postgres.to_pylist() == on_duckdb.to_pylist()
    assert on_spark.to_pylist() == on_duckdb.to_pylist()
    assert on_spark.schema == on_duckdb.schema == on_postgres.schema  # as declared, the label's int32 kept
    assert on_spark.schema.field("lifetime_value").type == pa.decimal128(18, 2)


def test_the_registry_tables_on_spark_agree_with_the_registry(tmp_path, spark_dir):
    """The shop's registry tables on Spark, whose string literals read backslash escapes: what
    the Python registry reads, the description with quotes, a newline and a backslash kept."""
    import shutil

    from conftest import FIXTURES, PROFILES, REPO, project_env
    from featurestore.registry import load_manifest, registry_from_manifest
    from test_adoption import registry_as_tables, registry_tables

    shop = tmp_path / "shop"
    shutil.copytree(FIXTURES / "shop_project", shop)
    shutil.copy(PROFILES, shop / "profiles.yml")
    config = shop / "dbt_project.yml"
    config.write_text(config.read_text().replace("profile: shop", "profile: featurestore"))
    (shop / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    dbt = project_env(shop, "spark", FEATURESTORE_SPARK_SCHEMA="registry", FEATURESTORE_SPARK_DIR=str(spark_dir),
                      **IN_PROCESS)
    dbt.run("run", "--select", "package:featurestore", "--quiet")
    tables = SparkTables(dbt, "registry")
    got = registry_tables(lambda sql: tables.fetch(sql.replace("{schema}", "{schema}.")))
    assert got == registry_as_tables(registry_from_manifest(load_manifest(shop / "target" / "manifest.json")))
    assert "('7d' window" in got["features"]["customer_features:orders_7d"]["description"]
    assert "\\n is no newline" in got["features"]["customer_features:orders_7d"]["description"]
