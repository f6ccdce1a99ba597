"""Late and corrected source rows reach the features: the demo's orders carry a load time,
rolling_window turns it into each feature row's created timestamp, so appending late orders
and corrections re-emits exactly the rows they change — incremental build == full refresh,
the training set and the online store see the new values, and the audit is clean."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from conftest import duckdb_path, project_env
from featurestore import FeatureStore
from jaffle_data import JaffleSize, append_late_orders, late_and_corrected_orders

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

VIEWS = ("customer_features", "store_features", "customer_product_features")


def winning_rows(project, view):
    with duckdb.connect(str(duckdb_path(project)), read_only=True) as con:
        columns = [c[0] for c in con.execute(f"describe {view}").fetchall() if c[0] not in ("valid_to", "superseded_at")]
        return sorted(con.execute(f"select {', '.join(columns)} from {view} "
                                  "where valid_to is null or valid_to > valid_from").fetchall(), key=str)


def test_late_and_corrected_orders_reach_training_and_serving(built_demo, moto_server):
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "late_"}
    project = built_demo(JaffleSize(customers=80, stores=2, days=40), seed=5, **env)
    raw = project / "data" / "raw"
    dbt = project_env(project, **env)
    store = FeatureStore(project, env=env)
    store.sync()
    with store.connect() as warehouse:
        at = warehouse.fetch_all("select max(feature_ts) from main.customer_features")[0][0]
        customers = [row[0] for row in warehouse.fetch_all("select distinct customer_id from main.customer_features")]
    frame = pd.DataFrame({"customer_id": customers, "event_timestamp": [at] * len(customers)})
    before = store.get_historical_features(frame, ["customer_features:lifetime_value"]).to_arrow().to_pandas()

    late = late_and_corrected_orders(raw, count=3, seed=2)
    append_late_orders(raw, late, "late")
    changed = {order["customer"] for order in late}
    dbt.run("build", "--quiet")  # incremental: the tables are changed in place
    incremental = {view: winning_rows(project, view) for view in VIEWS}

    after = store.get_historical_features(frame, ["customer_features:lifetime_value"]).to_arrow().to_pandas()
    moved = {c for c, old, new in zip(customers, before.lifetime_value, after.lifetime_value) if old != new}
    assert moved and moved <= changed  # the late and corrected orders' customers, and only they

    results = {r.view: r for r in FeatureStore(project, env=env).sync()}
    assert results["customer_features"].mode == "incremental" and results["customer_features"].written > 0
    online = store.get_online_features(["customer_features:lifetime_value"],
                                       entity_rows=[{"customer_id": c} for c in sorted(moved)], now=at).to_dict()
    expected = after.set_index("customer_id").lifetime_value
    assert online["lifetime_value"] == [float(expected[c]) for c in sorted(moved)]  # a decimal(18,2), as a float
    report = FeatureStore(project, env=env).audit("customer_features", sample=len(customers), now=at)
    assert report["mismatches"] == []

    dbt.run("build", "--full-refresh", "--quiet")
    for view in VIEWS:
        assert winning_rows(project, view) == incremental[view], view  # incremental == full refresh
