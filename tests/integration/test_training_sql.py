"""The SQL a training set runs is readable and runnable: `export --show-sql` prints the entity load,
the strategy per view with its reason, and the statement, which runs unchanged in DuckDB and gives
the exported rows. `to_df()` gives ML-ready dtypes, the same online and offline."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from conftest import duckdb_path
from featurestore import FeatureStore
from featurestore.cli import app

runner = CliRunner()
EXPORT = ["export", "-e", "main.churn_labels", "--timestamp-column", "label_ts", "--service", "churn_model"]


def test_show_sql_runs_unchanged_and_gives_the_exported_rows(demo_project, tmp_path):
    printed = runner.invoke(app, [*EXPORT, "-p", str(demo_project), "--show-sql"])
    assert printed.exit_code == 0, printed.output
    text = printed.stdout
    assert "create or replace temp table _fs_entities" in text and "order by _fs_entity._fs_row" in text
    assert "customer_features: interval (" in text or "customer_features: asof (" in text
    out = tmp_path / "churn.parquet"
    assert runner.invoke(app, [*EXPORT, "-p", str(demo_project), "--out", str(out)]).exit_code == 0
    with duckdb.connect(str(duckdb_path(demo_project)), read_only=True) as con:
        ran = con.sql(text).to_arrow_table()  # every statement as printed, in one go
    exported = pq.read_table(out)
    assert ran.column_names == exported.column_names
    assert ran.num_rows == exported.num_rows > 100
    # a relation's rows come in the order the warehouse reads them, which varies: compare as multisets
    want = [dict(row, label_ts=row["label_ts"].replace(tzinfo=None)) for row in exported.to_pylist()]
    assert sorted(map(repr, ran.to_pylist())) == sorted(map(repr, want))


def test_the_plan_names_each_strategy_and_why(demo_project):
    store = FeatureStore(demo_project)
    job = store.get_historical_features("main.churn_labels", feature_service="churn_model", timestamp_column="label_ts")
    plan = job.plan()
    assert set(plan.strategies) == {"customer_features", "store_features"}
    assert all("entity rows" in choice["reason"] for choice in plan.strategies.values())
    assert job.sql == plan.sql
    forced = store.get_historical_features("main.churn_labels", feature_service="churn_model",
                                           timestamp_column="label_ts", strategy="asof").plan()
    assert {c["strategy"] for c in forced.strategies.values()} == {"asof"}
    assert "asof left join" in forced.sql
    guarded = store.get_historical_features("main.churn_labels", feature_service="churn_model",
                                            timestamp_column="label_ts", knowledge_guard=True).plan()
    assert {c["strategy"] for c in guarded.strategies.values()} == {"knowledge"}
    frame = pd.DataFrame({"customer_id": ["x"], "store_id": ["y"], "event_timestamp": [datetime(2024, 1, 1)]})
    framed = store.get_historical_features(frame, feature_service="churn_model").plan()
    assert framed.entity_load[0].startswith("-- _fs_entities: the rows of the DataFrame (1 rows)")


def test_to_df_dtypes_are_ml_ready_and_the_same_online_and_offline(demo_project, moto_server):
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "dtypes_"}
    store = FeatureStore(demo_project, env=env)
    store.sync(["customer_features"])
    with store.connect() as warehouse:
        customer, at = warehouse.fetch_all("select customer_id, feature_ts from main.customer_features "
                                           "where valid_to is null order by feature_ts desc, customer_id limit 1")[0]
    references = [f"customer_features:{name}" for name in
                  ("total_orders_30d", "avg_order_value_30d", "days_since_last_order", "customer_segment", "lifetime_value")]
    frame = pd.DataFrame({"customer_id": [customer, "nobody"], "event_timestamp": [at, at]})
    offline = store.get_historical_features(frame, references).to_df()
    online = store.get_online_features(references, entity_rows=[{"customer_id": customer}, {"customer_id": "nobody"}],
                                       now=at).to_df()
    features = [r.split(":")[1] for r in references]
    assert {name: str(offline[name].dtype) for name in features} == {name: str(online[name].dtype) for name in features}
    assert str(offline["total_orders_30d"].dtype) == "Int64" and str(offline["days_since_last_order"].dtype) == "Int64"
    assert str(offline["lifetime_value"].dtype) == "float64"  # a decimal(18,2) in the warehouse
    assert pd.isna(offline["total_orders_30d"][1]) and pd.isna(online["total_orders_30d"][1])  # missing: <NA>, not NaN
    assert offline.loc[[0], features].equals(online.loc[[0], features])  # NaN (no orders in 30d) equals NaN
    # Arrow keeps the warehouse's exact types
    assert str(store.get_historical_features(frame, references).to_arrow().schema.field("lifetime_value").type) \
        == "decimal128(18, 2)"
