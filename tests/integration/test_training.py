"""Training sets against the brute-force point-in-time oracle, and the SDK's behaviour on bad input."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import oracles
from conftest import FIXTURES, REPO, DuckDBTables, copy_project, project_env
from featurestore import FeatureStore, FeatureStoreError
from featurestore.entity_frame import EntityFrameError
from featurestore.frames import ml_dataframe

N_CASES = 320
FEATURES = [f"{view}:{feature}" for view, (_, features, _) in oracles.PIT_VIEWS.items() for feature in features]
TYPES = {"case_id": "integer", "thing_id": "integer", "place_id": "integer", "ev": "timestamp",
         "created": "timestamp", "size": "integer", "colour": "varchar", "visits": "integer"}


def build_training_project(root: Path, cases, load, target=None, **env) -> FeatureStore:
    """Copy the fixture project, load the cases' rows with `load(table, columns, rows)`, dbt build."""
    project = copy_project(FIXTURES / "training_project", root)
    (project / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    dbt = project_env(project, target, **env)
    dbt.run("deps", "--quiet")
    for view, (keys, features, _) in oracles.PIT_VIEWS.items():
        columns = list(keys) + ["ev", "created"] + list(features)
        load(view.replace("_features", "_events"), columns, [tuple(row[c] for c in columns) for row in cases.rows[view]])
    dbt.run("build", "--quiet")
    return FeatureStore(project, target, env=dict(dbt.env))


def entity_frame(cases) -> pd.DataFrame:
    frame = pd.DataFrame(cases.entities)
    for key in ("thing_id", "place_id"):
        frame[key] = frame[key].astype("Int64")
    return frame


def assert_matches_oracle(result: pa.Table, expected: list[dict]):
    got = result.to_pylist()
    assert len(got) == len(expected)
    for row, want in zip(got, expected):
        row = dict(row, event_timestamp=row["event_timestamp"].replace(tzinfo=None))
        assert row == want


@pytest.fixture(scope="module")
def training_duckdb(tmp_path_factory):
    cases = oracles.generate_pit_cases(N_CASES, seed=4242)
    root = tmp_path_factory.mktemp("training") / "project"
    database = root / "featurestore.duckdb"
    root.mkdir(parents=True)

    def load(table, columns, rows):
        ddl = f"create or replace table {{schema}}.{table} ({', '.join(f'{c} {TYPES[c]}' for c in columns)})"
        DuckDBTables(database).load(ddl, table, rows)

    return build_training_project(root, cases, load), cases


@pytest.mark.parametrize("strategy", ["interval", "asof"])
def test_point_in_time_matches_the_oracle_on_duckdb(training_duckdb, strategy):
    store, cases = training_duckdb
    assert len(cases.entities) > 1500
    job = store.get_historical_features(entity_frame(cases), FEATURES, full_feature_names=True, strategy=strategy)
    assert_matches_oracle(job.to_arrow(), oracles.point_in_time(cases, knowledge_guard=False))
    assert job.summary.rows == len(cases.entities)
    assert job.summary.null_key_rows == sum(e["thing_id"] is None or e["place_id"] is None for e in cases.entities)


def test_knowledge_guard_matches_the_oracle_on_duckdb(training_duckdb):
    store, cases = training_duckdb
    job = store.get_historical_features(entity_frame(cases), FEATURES, full_feature_names=True, knowledge_guard=True)
    expected = oracles.point_in_time(cases, knowledge_guard=True)
    assert_matches_oracle(job.to_arrow(), expected)
    # the guard changes answers on these cases (rows are created up to 2 hours after their event)
    assert expected != oracles.point_in_time(cases, knowledge_guard=False)


def test_every_entity_input_kind_gives_the_same_rows(training_duckdb, tmp_path):
    store, cases = training_duckdb
    frame = entity_frame(cases)
    expected = store.get_historical_features(frame, FEATURES, full_feature_names=True).to_arrow()
    frame.to_parquet(tmp_path / "entities.parquet")
    frame.to_csv(tmp_path / "entities.csv", index=False)
    with store.connect(read_only=False) as warehouse:
        warehouse.load_arrow("main.entity_rows", pa.Table.from_pandas(frame, preserve_index=False))
    for source in (pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "entities.parquet",
                   str(tmp_path / "entities.csv")):
        got = store.get_historical_features(source, FEATURES, full_feature_names=True).to_arrow()
        assert got.to_pylist() == expected.to_pylist(), source
    # inside the warehouse the order of an unordered relation is not defined: compare sorted
    for source in ("main.entity_rows", "select * from main.entity_rows where label >= 0"):
        got = store.get_historical_features(source, FEATURES, full_feature_names=True).to_df()
        want = ml_dataframe(expected)
        order = ["case_id", "thing_id", "place_id", "event_timestamp", "label"]
        pd.testing.assert_frame_equal(got.sort_values(order, ignore_index=True).astype(str),
                                      want.sort_values(order, ignore_index=True).astype(str))


def test_timezones_are_one_rule_utc(training_duckdb):
    """Naive times are UTC and zoned times are their instants; the column keeps its type (ISO
    8601 strings come back as UTC timestamps)."""
    store, cases = training_duckdb
    frame = entity_frame(cases).head(50)
    naive = store.get_historical_features(frame, FEATURES, full_feature_names=True).to_arrow()
    assert naive.schema.field("event_timestamp").type == pa.timestamp("us")
    as_utc = naive.set_column(naive.schema.get_field_index("event_timestamp"), "event_timestamp",
                              naive.column("event_timestamp").cast(pa.timestamp("us", tz="UTC")))
    aware = frame.assign(event_timestamp=frame.event_timestamp.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    shifted = store.get_historical_features(aware, FEATURES, full_feature_names=True).to_arrow()
    assert shifted.schema.field("event_timestamp").type.tz == "Asia/Tokyo"
    assert shifted.cast(as_utc.schema).to_pylist() == as_utc.to_pylist()
    as_text = frame.assign(event_timestamp=frame.event_timestamp.dt.strftime("%Y-%m-%dT%H:%M:%S"))
    assert store.get_historical_features(as_text, FEATURES, full_feature_names=True).to_arrow().to_pylist() == as_utc.to_pylist()


def test_outputs_parquet_table_and_sql(training_duckdb, tmp_path):
    store, cases = training_duckdb
    job = store.get_historical_features(entity_frame(cases), FEATURES, full_feature_names=True)
    path = job.to_parquet(tmp_path / "out" / "train.parquet")
    assert pq.read_table(path).to_pylist() == job.to_arrow().to_pylist()
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.parquet"]  # no temp file, stats inside
    assert "valid_from <=" in job.sql and "_fs_entities" in job.sql
    relation = job.to_table("main.training_set")
    with store.connect() as warehouse:
        rows = warehouse.fetch_all(f"select count(*) from {relation}")[0][0]
        columns = [f.name for f in warehouse.fetch_arrow(f"select * from {relation} limit 0").schema]
    assert rows == len(cases.entities) and "_fs_row" not in columns


def test_spine_retrieval_without_an_entity_frame(training_duckdb):
    store, _ = training_duckdb
    job = store.get_historical_features(features=["place_features:size"], start=datetime(2024, 3, 1),
                                        end=datetime(2024, 3, 2), every="6h")
    table = job.to_arrow()
    with store.connect() as warehouse:
        places = warehouse.fetch_all("select count(*) from (select distinct case_id, place_id from main.place_features)")[0][0]
    assert table.num_rows == places * 5
    assert set(table.column_names) == {"case_id", "place_id", "event_timestamp", "size"}
    with pytest.raises(FeatureStoreError, match="same join keys"):
        store.get_historical_features(features=["place_features:size", "thing_features:colour"],
                                      start=datetime(2024, 3, 1), end=datetime(2024, 3, 2))


def test_a_spine_export_is_the_same_file_in_every_run(tmp_path):
    """A time spine's entity rows are numbered in one order, by key and then time, so the same
    export gives the same file and content hash every time. With many keys, DuckDB's parallel
    DISTINCT over the views returns them in another order from run to run (a trial's two
    identical exports differed)."""
    import duckdb

    root = tmp_path / "project"
    root.mkdir()
    database = root / "featurestore.duckdb"

    def load(table, columns, rows):  # many keys instead of the cases' rows: 40,000 places, two rows each
        with duckdb.connect(str(database)) as con:
            con.execute(f"create or replace table main.{table} ({', '.join(f'{c} {TYPES[c]}' for c in columns)})")
            if table == "place_events":
                con.execute("insert into main.place_events select i // 20, i % 20, "
                            "timestamp '2024-03-01' - to_hours(i % 5 + 1) * (1 + r), "
                            "timestamp '2024-03-01' - to_hours(i % 5 + 1) * (1 + r) + interval 1 minute, i % 97 "
                            "from range(40000) as t(i), range(2) as s(r)")

    store = build_training_project(root, oracles.generate_pit_cases(1, seed=1), load)
    hashes = set()
    for run in range(3):
        job = store.get_historical_features(features=["place_features:size"], start=datetime(2024, 3, 1),
                                            end=datetime(2024, 3, 1, 6), every="1h")
        job.to_parquet(tmp_path / f"run{run}.parquet")
        hashes.add(job.content_sha256)
    assert len(hashes) == 1, hashes
    rows = pq.read_table(tmp_path / "run0.parquet", columns=["case_id", "place_id", "event_timestamp"]).to_pylist()
    assert len(rows) == 40000 * 7
    assert rows == sorted(rows, key=lambda row: (row["case_id"], row["place_id"], row["event_timestamp"]))


def test_bad_input_is_refused_with_a_clear_error(training_duckdb, tmp_path):
    store, cases = training_duckdb
    frame = entity_frame(cases).head(20)
    with pytest.raises(FeatureStoreError, match="full_feature_names=True"):
        store.get_historical_features(frame, ["thing_features:size", "place_features:size"])
    with pytest.raises(FeatureStoreError, match="no feature 'weight'"):
        store.get_historical_features(frame, ["thing_features:weight"])
    with pytest.raises(FeatureStoreError, match="No feature service named 'nope'"):
        store.get_historical_features(frame, feature_service="nope")
    with pytest.raises(EntityFrameError, match="no column 'place_id'"):
        store.get_historical_features(frame.drop(columns=["place_id"]), ["place_features:size"]).to_arrow()
    with pytest.raises(EntityFrameError, match="no timestamp column 'when'"):
        store.get_historical_features(frame, ["place_features:size"], timestamp_column="when")
    with pytest.raises(EntityFrameError, match="Join key 'place_id'.*string"):
        store.get_historical_features(frame.assign(place_id=frame.place_id.astype(str)), ["place_features:size"]).to_arrow()
    with pytest.raises(EntityFrameError, match="row 0 holds 'yesterday', which is not an ISO 8601 time"):
        store.get_historical_features(frame.assign(event_timestamp="yesterday"), ["place_features:size"])
    with pytest.raises(EntityFrameError, match="does not exist"):
        store.get_historical_features(str(tmp_path / "missing.parquet"), ["place_features:size"])
    target = tmp_path / "keep.parquet"
    target.write_bytes(b"old")
    with pytest.raises(EntityFrameError):
        store.get_historical_features(frame.drop(columns=["case_id"]), ["place_features:size"]).to_parquet(target)
    assert target.read_bytes() == b"old"  # nothing half-written


def test_empty_frame_gives_an_empty_result_with_the_schema(training_duckdb):
    store, cases = training_duckdb
    empty = entity_frame(cases).head(0)
    job = store.get_historical_features(empty, FEATURES, full_feature_names=True)
    table = job.to_arrow()
    assert table.num_rows == 0
    assert "thing_features__colour" in table.column_names and job.summary.rows == 0


@pytest.mark.parametrize("strategy", ["interval", "asof"])
def test_to_arrow_orders_in_python_what_to_parquet_orders_in_sql(training_duckdb, tmp_path, strategy):
    """to_arrow reads the rows in the engine's order and puts them back in the frame's order in
    Python (retrieval.job.restore_order); to_parquet streams them ordered by the SQL. Same rows,
    same order, same summary figures, on a shuffled frame with unknown and NULL keys, NULL
    times and duplicated rows."""
    store, cases = training_duckdb
    frame = entity_frame(cases).sample(frac=1, random_state=7).reset_index(drop=True)
    frame.loc[frame.index % 97 == 0, "event_timestamp"] = pd.NaT
    arrow_job = store.get_historical_features(frame, FEATURES, full_feature_names=True, strategy=strategy)
    table = arrow_job.to_arrow()
    parquet_job = store.get_historical_features(frame, FEATURES, full_feature_names=True, strategy=strategy)
    written = pq.read_table(parquet_job.to_parquet(tmp_path / "train.parquet"))
    assert table.column("case_id").to_pylist() == frame["case_id"].tolist()
    assert frame["case_id"].duplicated().any() and not frame["case_id"].is_monotonic_increasing
    assert table.to_pylist() == written.to_pylist()
    figures = lambda job: {name: value for name, value in job.summary.as_dict().items() if name != "seconds"}  # noqa: E731
    assert figures(arrow_job) == figures(parquet_job)
    summary = arrow_job.summary
    assert summary.rows == len(frame) and summary.null_time_rows == frame["event_timestamp"].isna().sum() > 0
    assert summary.null_key_rows == (frame["thing_id"].isna() | frame["place_id"].isna()).sum() > 0
    assert all(0 < rate < 1 for rate in summary.match_rate.values())
    assert summary.null_rate["thing_features__colour"] == table.column("thing_features__colour").null_count / len(frame)
