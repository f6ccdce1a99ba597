"""Feast's Python API on a featurestore project: a script written for Feast 0.67 runs against the
demo with only its import line changed, and what it reads online is what the feature server
serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from conftest import FIXTURES
from featurestore import FeatureStore
from featurestore.server.serving import OnlineServer
from featurestore.requests import online_table

SCRIPT = FIXTURES / "feast_api_script.py"
FEATURES = ["customer_features:total_orders_30d", "customer_features:lifetime_value", "store_features:revenue_28d"]


@pytest.fixture(scope="module")
def feast_env(moto_server):
    return {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "feastapi_"}


def stamp_fresh(store: FeatureStore, view_name: str, key: str, value) -> dict:
    """Write a key's current warehouse row to the online store stamped now: the demo's data ends
    in 2024, past every TTL, and a Feast script cannot pass our `now`. (The script's full sync
    then keeps it: an older event never replaces a newer one.) Returns the row."""
    view = store.registry.view(view_name)
    with store.connect() as warehouse:
        row = warehouse.fetch_arrow(f"select * from {view.relation_name} where {key} = ? and valid_to is null",
                                    [value]).to_pylist()[0]
    moment = datetime.now(timezone.utc)
    table = online_table(store.registry, view)
    store.online.ensure_table(table)
    store.online.write(table, [{**{k: row[k] for k in table.join_keys}, **{f: row[f] for f in table.features},
                                "event_timestamp": moment, "created_timestamp": moment}])
    return row


def test_a_script_written_for_feast_runs_unchanged_but_for_the_import(demo_project, feast_env):
    lines = [line for line in SCRIPT.read_text().splitlines() if "featurestore" in line]
    assert lines == ["from featurestore import FeatureStore  # was: from feast import FeatureStore"]  # the only change
    store = FeatureStore(demo_project, env=feast_env)
    with store.connect() as warehouse:
        customer, store_id = warehouse.fetch_all("select customer_id, store_id from main.churn_labels order by 1, 2 limit 1")[0]
    lifetime_value = stamp_fresh(store, "customer_features", "customer_id", customer)["lifetime_value"]
    stamp_fresh(store, "store_features", "store_id", store_id)
    result = subprocess.run([sys.executable, str(SCRIPT), customer, store_id], cwd=demo_project, capture_output=True,
                            text=True, timeout=300, env={**os.environ, **feast_env})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    registry = store.registry
    assert set(report["feature_views"]) == set(registry.feature_views)
    customer_view = report["feature_views"]["customer_features"]
    assert customer_view["entities"] == ["customer"] and customer_view["ttl_seconds"] == 2 * 86400
    assert customer_view["schema"][0] == "customer_id" and ["lifetime_value", "decimal(18,2)"] in customer_view["features"]
    assert customer_view["online"] is True and customer_view["owner"] == registry.view("customer_features").owner
    assert report["entities"] == {"customer": "customer_id", "store": "store_id", "product_type": "product_type"}
    assert report["feature_services"] == ["churn_model", "checkout_model"] and report["customer_features_ttl"] == str(timedelta(days=2))
    assert report["projections"] == {
        "customer_features": ["total_orders_30d", "avg_order_value_30d", "days_since_last_order", "customer_segment",
                              "lifetime_value"],
        "store_features": ["orders_7d", "revenue_28d"]}
    assert report["training_rows"] == 2 and report["training_columns"][-3:] == [
        "total_orders_30d", "lifetime_value", "revenue_28d"]
    assert "orders_7d" in report["service_training_columns"]

    # what the script read online: plain JSON values (a decimal is a float), as the server serves them
    online = report["online_features"]
    assert online["customer_id"] == [customer] and online["store_id"] == [store_id]
    assert online["lifetime_value"] == [float(lifetime_value)] and isinstance(online["lifetime_value"][0], float)
    served, _ = OnlineServer(registry, store.online).get_online_features(
        {"features": FEATURES, "entities": {"customer_id": [customer], "store_id": [store_id]}})
    by_name = dict(zip(served["metadata"]["feature_names"], served["results"]))
    assert all(by_name[name]["statuses"] == ["PRESENT"] for name in ("total_orders_30d", "lifetime_value", "revenue_28d"))
    assert {name: online[name] for name in ("total_orders_30d", "lifetime_value", "revenue_28d")} == {
        name: by_name[name]["values"] for name in ("total_orders_30d", "lifetime_value", "revenue_28d")}
    assert set(report["service_online_features"]) == {"customer_id", "store_id", *report["projections"]["customer_features"],
                                                      *report["projections"]["store_features"]}


def test_materialize_maps_onto_the_sync(demo_project, feast_env):
    from featurestore.errors import FeatureStoreError

    store = FeatureStore(demo_project, env=feast_env)
    full = store.materialize(datetime(2020, 1, 1), datetime.now(), feature_views=["store_features"])
    assert [(r.view, r.mode) for r in full] == [("store_features", "full")]
    again = store.materialize_incremental(end_date=datetime.now(), feature_views=["store_features"])
    assert [(r.view, r.mode, r.rows_read) for r in again] == [("store_features", "incremental", 0)]
    with pytest.raises(FeatureStoreError, match="start_date .* is after end_date"):
        store.materialize(datetime.now(), datetime(2020, 1, 1))
    with pytest.raises(FeatureStoreError, match="project_dir or repo_path"):
        FeatureStore(demo_project, repo_path=demo_project)
    assert FeatureStore(repo_path=demo_project).repo_path == demo_project
    empty = store.get_online_features(["store_features:orders_7d"], entity_rows=[])
    assert empty.to_dict() == {"store_id": [], "orders_7d": []}
