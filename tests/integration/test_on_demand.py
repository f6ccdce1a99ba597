"""On-demand features: the value a training set computes in the warehouse equals the value the
online reader computes (DuckDB, the expression transpiled from the engine's SQL), row by row, over
randomized request fields — NULLs, zeros, huge, tiny and negative numbers, times in several
zones — and the demo's stored inputs (NULLs, zero days since the last order, values past their
TTL), on DuckDB, PostgreSQL and Spark. The online store is synced once, from the DuckDB demo; the
PostgreSQL and Spark demos hold the same rows (conftest), so their online reads share it.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore import FeatureStore
from featurestore.quality.audit import same_value

VIEW = "order_request_features"
ON_DEMAND = [f"{VIEW}:cart_value_ratio", f"{VIEW}:is_large_order", f"{VIEW}:value_per_day_since_last_order",
             f"{VIEW}:typical_order_share_of_cart", f"{VIEW}:order_hour"]
# an input also requested as itself (read twice: once shown, once as the expression's input)
FEATURES = ["customer_features:avg_order_value_30d", "customer_features:days_since_last_order", *ON_DEMAND]
ZONES = [timezone.utc, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5, minutes=-30)),
         timezone(timedelta(hours=13, minutes=45)), timezone(timedelta(hours=-12))]
# Doubles no engine overflows or underflows on when divided by the demo's values (PostgreSQL
# raises an error where DuckDB and Spark give infinity or 0; see the README's limits).
SPECIAL = [None, 0.0, -0.0, 1e300, -1e300, 1e-300, -1e-300, 1.0, -7.5, 123.456]
ROWS = 400


@pytest.fixture(scope="module")
def online_demo(copied_demo, moto_server):
    """The demo's current rows synced to moto (tables prefixed od_), and the moment to read them
    at: an hour after the newest feature time, so most values are within their TTL and some not."""
    project = copied_demo()
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "od_"}
    store = FeatureStore(project, env=env)
    store.sync(["customer_features"])
    with store.connect() as warehouse:
        keys = [row[0] for row in warehouse.fetch_all("select distinct customer_id from customer_features")]
        newest = warehouse.fetch_all("select max(feature_ts) from customer_features")[0][0]
    return project, env, sorted(keys), newest + timedelta(hours=1)


def randomized_requests(keys: list[str], seed: int) -> list[dict]:
    """ROWS entity rows: every key, random request fields (special values half of the time)."""
    rng = random.Random(seed)
    rows = []
    for index in range(ROWS):
        cart = rng.choice(SPECIAL) if rng.random() < 0.5 else rng.uniform(-1e6, 1e6)
        instant = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(10 * 365 * 86400),
                                                                         microseconds=rng.randrange(10**6))
        rows.append({"customer_id": keys[index % len(keys)], "cart_value": cart,
                     "ordered_at": instant.astimezone(rng.choice(ZONES))})
    return rows


def assert_offline_equals_online(store: FeatureStore, rows: list[dict], moment: datetime) -> dict:
    """Every on-demand value of the training set at `moment` equals the online reader's."""
    frame = pa.table({
        "customer_id": [row["customer_id"] for row in rows],
        "event_timestamp": pa.array([moment] * len(rows), pa.timestamp("us")),
        "cart_value": pa.array([row["cart_value"] for row in rows], pa.float64()),
        "ordered_at": pa.array([row["ordered_at"].astimezone(timezone.utc) for row in rows],
                               pa.timestamp("us", tz="UTC")),
    })
    offline = store.get_historical_features(frame, FEATURES).to_arrow().to_pydict()
    online = store.get_online_features(FEATURES, rows, now=moment).to_dict()
    # a one-entity read takes another path (the parameters in the expressions): some rows that way too
    for index in range(0, len(rows), 20):
        single = store.get_online_features(FEATURES, [rows[index]], now=moment).to_dict()
        assert {name: values[0] for name, values in single.items()} == {name: values[index] for name, values in online.items()}
    for reference in FEATURES:
        name = reference.partition(":")[2]
        differ = [(rows[i], online[name][i], offline[name][i]) for i in range(len(rows))
                  if not same_value(online[name][i], offline[name][i])]
        assert not differ, f"{reference}: {len(differ)} rows differ, e.g. {differ[:3]}"
    return offline


def test_on_demand_features_offline_equal_online_on_duckdb(online_demo):
    project, env, keys, moment = online_demo
    rows = randomized_requests(keys, seed=1)
    offline = assert_offline_equals_online(FeatureStore(project, env=env), rows, moment)
    # the cases the randomized rows were meant to reach are there
    ratio, per_day = offline["cart_value_ratio"], offline["value_per_day_since_last_order"]
    assert sum(value is None for value in ratio) > 20 and sum(value is not None for value in ratio) > 100
    assert any(value is not None and abs(value) > 1e290 for value in per_day)
    assert any(value is not None and 0 < abs(value) < 1e-290 for value in ratio)
    share = offline["typical_order_share_of_cart"]
    zero_carts = [value for value, row, average in zip(share, rows, offline["avg_order_value_30d"])
                  if row["cart_value"] == 0 and average is not None]
    assert zero_carts and set(zero_carts) == {None}  # a zero divisor (0.0 and -0.0 from the request): NULL
    assert len({hour for hour in offline["order_hour"]}) == 24
    assert {True, False, None} <= set(offline["is_large_order"])
    assert not any(isinstance(value, float) and math.isnan(value) for value in ratio)


def test_on_demand_features_offline_equal_online_on_postgres(online_demo, demo_on_postgres, postgres_server):
    _, env, keys, moment = online_demo
    project = online_demo[0]
    store = FeatureStore(project, "postgres", env={**env, **postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "demo"})
    assert store.registry.adapter_type == "postgres"  # the expressions are read (and transpiled) as PostgreSQL
    assert_offline_equals_online(store, randomized_requests(keys, seed=2), moment)


def test_on_demand_features_offline_equal_online_on_spark(online_demo, demo_on_spark):
    _, env, keys, moment = online_demo
    store = FeatureStore(demo_on_spark.project.project_dir, "spark", env={**demo_on_spark.project.env, **env})
    assert store.registry.adapter_type == "spark"
    assert_offline_equals_online(store, randomized_requests(keys, seed=3), moment)


def test_a_missing_request_column_names_the_field_and_the_feature(online_demo):
    project, env, keys, moment = online_demo
    store = FeatureStore(project, env=env)
    frame = pa.table({"customer_id": keys[:2], "event_timestamp": pa.array([moment] * 2, pa.timestamp("us")),
                      "cart_value": [1.0, 2.0]})
    with pytest.raises(Exception, match=r"has no column 'ordered_at', a request field of the on-demand feature\(s\) "
                                        r"order_request_features:order_hour"):
        store.get_historical_features(frame, [f"{VIEW}:order_hour", f"{VIEW}:cart_value_ratio"]).to_arrow()
    # a feature that does not use it needs no such column
    assert store.get_historical_features(frame, [f"{VIEW}:cart_value_ratio"]).to_arrow().num_rows == 2


def test_an_export_of_on_demand_features_writes_its_parquet_file(online_demo, tmp_path):
    """The export's fingerprint reads feature columns: an on-demand feature's inputs are not among
    them (they are dropped from the rows), and once stopped every export (a KeyError)."""
    import pyarrow.parquet as pq

    project, env, keys, moment = online_demo
    store = FeatureStore(project, env=env)
    frame = pa.table({"customer_id": keys[:2], "event_timestamp": pa.array([moment] * 2, pa.timestamp("us")),
                      "cart_value": [1.0, 2.0]})
    job = store.get_historical_features(frame, [f"{VIEW}:cart_value_ratio", "customer_features:total_orders_30d"])
    out = job.to_parquet(tmp_path / "train.parquet")
    table = pq.read_table(out)
    assert table.num_rows == 2 and "cart_value_ratio" in table.column_names
    assert not [name for name in table.column_names if name.startswith("_fs_")]


def test_served_on_demand_features_are_audited_with_their_logged_request_fields(online_demo):
    """The served-vector log records the request fields (answered after the keys, as Feast does),
    so `audit --served` recomputes on-demand features offline from them."""
    from featurestore.landing import ServedLog, landing_dir
    from featurestore.server.serving import OnlineServer

    project, env, keys, _ = online_demo
    store = FeatureStore(project, env=env)
    server = OnlineServer(store.registry, store.online)
    log = ServedLog(landing_dir(project, env))
    body = {"features": [f"{VIEW}:order_hour", f"{VIEW}:cart_value_ratio"],
            "entities": {"customer_id": keys[:3], "cart_value": [10, None, 2.5],
                         "ordered_at": ["2024-03-15T23:30:00+09:00", "2024-03-15T01:00:00Z", "2024-03-14T12:00:00-05:00"]}}
    response, served = server.get_online_features(body)
    assert response["metadata"]["feature_names"] == ["customer_id", "cart_value", "ordered_at", "order_hour",
                                                     "cart_value_ratio"]
    assert response["results"][3]["values"] == [14, 1, 17]
    log.record(served)
    log.flush()
    audit = store.audit_served()
    assert {reference: entry["match_rate"] for reference, entry in audit["features"].items()} == \
        {f"{VIEW}:order_hour": 1.0, f"{VIEW}:cart_value_ratio": 1.0}
    assert audit["features"][f"{VIEW}:order_hour"]["checked"] == 3


def test_featurestore_get_takes_request_fields_as_entities(online_demo):
    import json

    from typer.testing import CliRunner

    from featurestore.cli import app

    project, env, keys, _ = online_demo
    result = CliRunner(env=env).invoke(app, ["get", "-f", f"{VIEW}:order_hour", "-f", f"{VIEW}:cart_value_ratio",
                                             "-e", f"customer_id={keys[0]}",
                                             "-e", "cart_value=12.5", "-e", "ordered_at=2024-03-15T18:30:00+01:00",
                                             "--project-dir", str(project)])
    assert result.exit_code == 0, result.output
    vector = json.loads(result.output)
    assert vector["entity"] == {"customer_id": keys[0], "cart_value": 12.5, "ordered_at": "2024-03-15T17:30:00.000000Z"}
    assert vector["features"]["order_hour"] == {"value": 17, "status": "PRESENT", "event_timestamp": None}
    missing = CliRunner(env=env).invoke(app, ["get", "-f", f"{VIEW}:order_hour", "-e", f"customer_id={keys[0]}",
                                              "--project-dir", str(project)])
    assert missing.exit_code == 1 and "needs the field 'ordered_at' (timestamp)" in missing.output


@pytest.mark.dbt_compat
def test_the_training_set_macro_computes_them_as_the_sdk_does(copied_demo):
    """A service with on-demand features as a dbt model (`featurestore.training_set`): the SDK's
    export, row for row."""
    from conftest import duckdb_path, project_env
    from featurestore.digest import content_hash

    project = copied_demo()
    training = project / "models" / "training"
    (training / "order_requests.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "select customer_id, label_ts as requested_at,\n"
        "       cast((row_number() over (order by customer_id, label_ts) % 7) * 12.5 - 25 as double) as cart_value,\n"
        "       label_ts + interval 5 hour + interval 17 minute as ordered_at\n"
        "from {{ ref('churn_labels') }}\n")
    (training / "order_training_set.sql").write_text(
        "{{ config(materialized='table') }}\n-- depends_on: {{ ref('customer_features') }}\n"
        "{{ featurestore.training_set(ref('order_requests'), 'order_scoring', timestamp_column='requested_at') }}\n")
    (training / "_order_scoring.yml").write_text(
        "version: 2\nmodels:\n  - {name: order_requests, description: Orders being placed.}\n"
        "  - {name: order_training_set, description: Their features.}\n"
        "exposures:\n  - name: order_scoring\n    type: ml\n    owner: {name: ML, email: ml@jaffle.shop}\n"
        "    description: Scores orders.\n    depends_on: [ref('customer_features'), ref('order_request_features')]\n"
        "    config:\n      meta:\n        featurestore:\n          features: [customer_features:avg_order_value_30d, "
        f"{VIEW}:cart_value_ratio, {VIEW}:typical_order_share_of_cart, {VIEW}:order_hour]\n")
    project_env(project).run("run", "--select", "order_requests", "order_training_set", "--quiet")
    with duckdb.connect(str(duckdb_path(project)), read_only=True) as con:
        built = con.sql("select * from main.order_training_set").to_arrow_table()
    exported = FeatureStore(project).get_historical_features("main.order_requests", feature_service="order_scoring",
                                                             timestamp_column="requested_at").to_arrow()
    assert built.schema.names == exported.schema.names == [
        "customer_id", "requested_at", "cart_value", "ordered_at", "avg_order_value_30d", "cart_value_ratio",
        "typical_order_share_of_cart", "order_hour"]
    assert pc.sum(pc.is_valid(built.column("cart_value_ratio"))).as_py() > built.num_rows // 3
    assert pc.sum(pc.is_null(built.column("typical_order_share_of_cart"))).as_py() > 0  # zero carts

    def canonical(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("requested_at")
        table = table.set_column(index, "requested_at", pc.cast(table.column(index), pa.timestamp("us")))
        return table.sort_by([("customer_id", "ascending"), ("requested_at", "ascending")])

    assert content_hash(canonical(built)) == content_hash(canonical(exported))
