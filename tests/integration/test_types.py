"""Types exactly as declared: a built column that lacks its YAML data_type is an error naming the
model, column, declared and built type (after `featurestore build`, in `validate`, at export,
before anything is written); a training set keeps the entity frame's dtypes."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import app
from featurestore.errors import FeatureStoreError

from conftest import FIXTURES, copy_project, duckdb_path

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

runner = CliRunner()

# sum() of an integer column is DuckDB's HUGEINT (not bigint); `float` is single precision (not double)
MISTYPED_SQL = """
select user_id, event_ts, sum(clicks) as clicks_7d, cast(0.5 as float) as score, 'gold' as tier
from (select 'u1' as user_id, timestamp '2024-01-01 00:00:00' as event_ts, 3 as clicks) as events
group by user_id, event_ts
"""
SCORE_YAML = """      - name: score
        description: A score.
        data_type: double
      - name: tier"""


@pytest.fixture(scope="module")
def mistyped(tmp_path_factory):
    """The mini project with two columns built as other types than declared, built by
    `FeatureStore.build` (dbt build, then the check): (store, the build's error)."""
    project = copy_project(FIXTURES / "mini_project", tmp_path_factory.mktemp("types") / "mini")
    (project / "models" / "user_features.sql").write_text(MISTYPED_SQL)
    schema = (project / "models" / "schema.yml").read_text()
    schema = schema.replace("data_type: integer", "data_type: bigint").replace("      - name: tier", SCORE_YAML, 1)
    (project / "models" / "schema.yml").write_text(schema)
    store = FeatureStore(project, env={"FEATURESTORE_DUCKDB_PATH": str(duckdb_path(project))})
    with pytest.raises(FeatureStoreError) as failure:
        store.build("--quiet")
    return store, str(failure.value)


def _names_both_mismatches(text: str) -> None:
    assert "model 'user_features', column 'clicks_7d'" in text and "`data_type: bigint`" in text
    assert "decimal(38,0) (e.g. DuckDB's HUGEINT" in text
    assert "column 'score'" in text and "`data_type: double`" in text and "float (single precision)" in text


def test_build_reports_each_column_built_with_another_type(mistyped):
    _, message = mistyped
    assert message.startswith("`dbt build` made columns of other types than the YAML declares")
    _names_both_mismatches(message)
    assert "column 'tier'" not in message and "column 'event_ts'" not in message  # varchar, timestamp: as declared


def test_a_selected_build_checks_only_what_it_built(mistyped):
    """`build --select users` makes no feature view: user_features' old mismatch is its own build's."""
    store, _ = mistyped
    result = store.build("--select", "users", "--quiet")
    assert {node.name for node in result.results} == {"users"}


def test_validate_reports_them_from_the_built_tables(mistyped):
    store, _ = mistyped
    result = runner.invoke(app, ["validate", "-p", str(store.project.project_dir)],
                           env={"FEATURESTORE_DUCKDB_PATH": str(duckdb_path(store.project.project_dir))})
    assert result.exit_code == 1, result.output
    _names_both_mismatches(result.output)
    assert "[type-mismatch]" in result.output and "2 error(s)" in result.output


def test_export_refuses_them_before_writing(mistyped, tmp_path):
    store, _ = mistyped
    entities = pd.DataFrame({"user_id": ["u1"], "event_timestamp": [pd.Timestamp("2024-01-02")]})
    out = tmp_path / "train.parquet"
    with pytest.raises(FeatureStoreError) as failure:
        store.get_historical_features(entities, ["user_features:clicks_7d"]).to_parquet(out)
    message = str(failure.value)
    assert "Feature view 'user_features' (models/schema.yml): column 'clicks_7d' declared `data_type: bigint`" in message
    assert "score" not in message  # not exported, so not in the way
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_demo_is_built_as_declared(demo_project):
    assert [p for p in FeatureStore(demo_project).validate() if p.rule == "type-mismatch"] == []


def churn_entities(store: FeatureStore) -> pd.DataFrame:
    """The demo's labels as a user's frame: a naive datetime64[us] timestamp and an int32 label."""
    with store.connect() as warehouse:
        labels = warehouse.fetch_arrow("select * from main.churn_labels order by customer_id, label_ts").to_pandas()
    labels["label_ts"] = labels["label_ts"].astype("datetime64[us]")
    labels["churned_30d"] = labels["churned_30d"].astype("int32")
    return labels.head(500)


def test_the_training_set_keeps_the_entity_frames_dtypes(demo_project):
    store = FeatureStore(demo_project)
    entities = churn_entities(store)
    job = store.get_historical_features(entities, feature_service="churn_model", timestamp_column="label_ts")
    frame = job.to_df()
    assert str(frame["label_ts"].dtype) == "datetime64[us]" and str(frame["churned_30d"].dtype) == "int32"
    assert frame[list(entities.columns)].equals(entities)
    schema = job.to_arrow().schema
    assert schema.field("label_ts").type == pa.timestamp("us") and schema.field("churned_30d").type == pa.int32()
    assert schema.field("lifetime_value").type == pa.decimal128(18, 2)  # as declared
    assert str(frame["lifetime_value"].dtype) == "float64"  # features: the ML dtypes, as online
    # a zone is kept too, the instants unchanged
    tokyo = entities.assign(label_ts=entities["label_ts"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    aware = store.get_historical_features(tokyo, feature_service="churn_model", timestamp_column="label_ts").to_df()
    assert str(aware["label_ts"].dtype) == "datetime64[us, Asia/Tokyo]"
    assert aware.drop(columns="label_ts").equals(frame.drop(columns="label_ts"))
    assert (aware["label_ts"].dt.tz_convert(None) == frame["label_ts"]).all()
    # ISO 8601 strings come back as UTC timestamps, not as strings again
    iso = entities.assign(label_ts=entities["label_ts"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    parsed = store.get_historical_features(iso, feature_service="churn_model", timestamp_column="label_ts").to_df()
    assert str(parsed["label_ts"].dtype).startswith("datetime64") and "UTC" in str(parsed["label_ts"].dtype)
    assert (parsed["label_ts"].dt.tz_convert(None) == frame["label_ts"]).all()


STRUCT_SQL = """{{ config(materialized='feature_view') }}
select 'u1' as user_id, timestamp '2024-01-01 00:00:00' as event_ts, timestamp '2024-01-01 01:00:00' as loaded_at,
       3 as clicks_7d, 'gold' as tier, {'plan': 'pro', 'seats': 3} as profile
"""
PROFILE_YAML = """      - name: loaded_at
        description: When the row was loaded.
        data_type: timestamp
      - name: profile
        description: The user's plan.
        data_type: struct(plan varchar, seats integer)
      - name: tier"""


def test_a_struct_feature_builds_and_is_exported_as_one_column(tmp_path):
    """dbt-duckdb lists a struct's fields (`profile.plan`) as the query's columns: the build
    failed, saying the declared column was missing or binding `profile.plan`. The struct is one
    column of the snapshot table, kept on a second run, and exported as it is."""
    project = copy_project(FIXTURES / "mini_project", tmp_path / "mini")
    (project / "models" / "user_features.sql").write_text(STRUCT_SQL)
    schema = (project / "models" / "schema.yml").read_text().replace("      - name: tier", PROFILE_YAML, 1)
    schema = schema.replace("event_timestamp: event_ts", "event_timestamp: event_ts\n          created_timestamp: loaded_at")
    (project / "models" / "schema.yml").write_text(schema)
    store = FeatureStore(project, env={"FEATURESTORE_DUCKDB_PATH": str(duckdb_path(project))})
    store.build("--quiet")
    view = store.registry.view("user_features")
    with store.connect() as warehouse:
        built = warehouse.build_id(view.companion_relation("__build"))
        columns = [row[0] for row in warehouse.fetch_all(f"describe {view.relation_name}")]
    assert columns[:6] == ["user_id", "event_ts", "loaded_at", "clicks_7d", "tier", "profile"], columns
    store.build("--quiet")  # incremental: the table's columns compare equal to the model's (no rebuild)
    with store.connect() as warehouse:
        assert warehouse.build_id(view.companion_relation("__build")) == built
    entities = pd.DataFrame({"user_id": ["u1"], "event_timestamp": [pd.Timestamp("2024-01-02")]})
    frame = store.get_historical_features(entity_df=entities, features=["user_features:profile"]).to_df()
    assert frame["profile"].tolist() == [{"plan": "pro", "seats": 3}]
    assert [p for p in store.validate() if p.rule == "unknown-type"] == []
