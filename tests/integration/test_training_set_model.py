"""A training set built by dbt (`featurestore.training_set`) is the SDK's export, row for row;
dbt knows its lineage (features and labels -> training set -> the ml exposure); a model that
names a missing service, timestamp or feature view fails with a message naming it."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import duckdb_path, project_env
from featurestore import FeatureStore
from featurestore.digest import content_hash
from jaffle_data import JaffleSize

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

def canonical(table: pa.Table) -> pa.Table:
    """Rows sorted by the label keys, the timestamp naive (a dbt table has no row order and
    keeps the label's type; the SDK returns UTC)."""
    index = table.schema.get_field_index("label_ts")
    table = table.set_column(index, "label_ts", pc.cast(table.column(index), pa.timestamp("us")))
    return table.sort_by([("customer_id", "ascending"), ("label_ts", "ascending")])


def test_dbt_training_set_equals_the_sdk_export(demo_project):
    with duckdb.connect(str(duckdb_path(demo_project)), read_only=True) as con:
        built = con.sql("select * from main.churn_training_set").to_arrow_table()
    exported = FeatureStore(demo_project).get_historical_features(
        "main.churn_labels", feature_service="churn_model", timestamp_column="label_ts").to_arrow()
    assert built.num_rows == exported.num_rows > 100
    assert built.schema.names == exported.schema.names
    # the features are not all NULL: the comparison can fail
    assert pc.sum(pc.is_valid(built.column("total_orders_30d"))).as_py() > built.num_rows // 2
    assert content_hash(canonical(built)) == content_hash(canonical(exported))


def test_dbt_lineage_runs_from_features_and_labels_to_the_exposure(demo_project):
    manifest = json.loads((demo_project / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.jaffle_shop.churn_training_set"]
    assert set(node["depends_on"]["nodes"]) == {
        "model.jaffle_shop.churn_labels", "model.jaffle_shop.customer_features", "model.jaffle_shop.store_features"}
    assert "macro.featurestore.training_set" in node["depends_on"]["macros"]
    exposure = manifest["exposures"]["exposure.jaffle_shop.churn_model"]
    assert "model.jaffle_shop.churn_training_set" in exposure["depends_on"]["nodes"]


@pytest.fixture(scope="module")
def small_demo(built_demo):
    return built_demo(JaffleSize(customers=30, stores=2, days=50), seed=5, name="ts")


@pytest.mark.parametrize("change, message", [
    (("'churn_model'", "'no_such_service'"), "no feature service (exposure of type ml) named 'no_such_service'"),
    (("timestamp_column='label_ts'", "timestamp_column='label_at'"), "has no timestamp column 'label_at'"),
    (("-- depends_on: {{ ref('store_features') }}\n", ""), "store_features"),
])
def test_a_wrong_training_set_model_fails_naming_the_problem(small_demo, change, message):
    model = small_demo / "models" / "training" / "churn_training_set.sql"
    original = model.read_text()
    old, new = change
    assert old in original
    model.write_text(original.replace(old, new))
    try:
        result = project_env(small_demo).run("run", "--select", "churn_training_set", "--quiet", raise_on_failure=False)
    finally:
        model.write_text(original)
    assert not result.success
    said = str(result.exception or "") + " ".join(str(r.message) for r in result.results)
    assert message in said, said
