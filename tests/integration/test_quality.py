"""Expectations, freshness, stats and drift on a view whose rows the test controls."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REPO, DuckDBTables, copy_project, project_env
from featurestore import FeatureStore
from featurestore.cli import app
from oracles import SENSOR_EVENTS_DDL, readings

runner = CliRunner()
DAY = timedelta(days=1)


def build(tmp_path, rows):
    return build_at(copy_project(FIXTURES / "quality_project", tmp_path / "project"), rows)


def build_at(project, rows):
    (project / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    dbt = project_env(project)
    dbt.run("deps", "--quiet")
    DuckDBTables(dbt.variables()["FEATURESTORE_DUCKDB_PATH"]).load(SENSOR_EVENTS_DDL, "sensor_events", rows)
    result = dbt.run("build", "--quiet", raise_on_failure=False)
    failures = sorted(r.name for r in result.results if r.status in ("fail", "error"))
    return project, failures


@pytest.mark.dbt_compat  # the package's generic tests, run by dbt build
def test_clean_data_passes_every_check(tmp_path):
    now = datetime.now().replace(microsecond=0)
    project, failures = build(tmp_path, readings(now - 20 * DAY, 20, seed=1))
    assert failures == []
    result = runner.invoke(app, ["drift", "sensor_features", "-p", str(project),
                                 "--reference", f"{(now - 20 * DAY).date()}:{(now - 10 * DAY).date()}",
                                 "--current", f"{(now - 10 * DAY).date()}:{(now + DAY).date()}"])
    assert result.exit_code == 0, result.output


@pytest.mark.dbt_compat  # the package's generic tests, run by dbt build
def test_a_null_burst_fails_the_expectation_naming_the_feature(tmp_path):
    now = datetime.now()
    rows = readings(now - 20 * DAY, 15, seed=2) + readings(now - 5 * DAY, 5, seed=3, null_share=0.9)
    project, failures = build(tmp_path, rows)
    assert failures == ["featurestore_feature_expectation_sensor_features_temperature"]
    stats = json.loads(runner.invoke(app, ["stats", "sensor_features", "-p", str(project), "--json"]).stdout)[0]
    assert stats["features"]["temperature"]["null_rate"] > 0.1


@pytest.mark.dbt_compat  # the package's generic tests, run by dbt build
def test_a_stale_view_fails_its_freshness_test_and_stats_show_it(tmp_path):
    old = datetime(2024, 1, 1)
    project, failures = build(tmp_path, readings(old, 10, seed=4))
    assert failures == ["featurestore_feature_freshness_sensor_features_"]
    stats = FeatureStore(project).stats(["sensor_features"])[0]
    assert stats["freshness_seconds"] > 300 * 86400


def test_a_shifted_distribution_is_reported_as_drift(tmp_path):
    now = datetime.now().replace(microsecond=0)
    rows = readings(now - 20 * DAY, 10, seed=5) + readings(now - 10 * DAY, 10, seed=6, temperature=(26.0, 2.0))
    project, failures = build(tmp_path, rows)
    assert failures == []
    reference = f"{(now - 20 * DAY).date()}:{(now - 10 * DAY).date()}"
    current = f"{(now - 10 * DAY).date()}:{(now + DAY).date()}"
    result = runner.invoke(app, ["drift", "sensor_features", "-p", str(project), "--reference", reference,
                                 "--current", current, "--json"])
    assert result.exit_code == 1
    drift = {entry["feature"]: entry for entry in json.loads(result.stdout)}
    assert drift["temperature"]["breached"] and drift["temperature"]["metric"] == "psi"
    assert not drift["humidity"]["breached"] and not drift["state"]["breached"]
    assert "drift: temperature in sensor_features" in result.stderr


def test_stats_are_kept_as_history(tmp_path):
    now = datetime.now()
    project, _ = build(tmp_path, readings(now - 5 * DAY, 5, seed=7))
    store = FeatureStore(project)
    first = store.stats()[0]
    store.stats()
    assert first["rows"] == 150 and first["features"]["state"]["top"][0][0] == "ok"
    assert set(first["features"]["temperature"]["quantiles"]) == {"p5", "p25", "p50", "p75", "p95"}
    with store.connect() as warehouse:
        history = warehouse.fetch_all("select view_name, stats from featurestore_stats_history")
    assert len(history) == 2 and json.loads(history[0][1])["rows"] == 150
    result = runner.invoke(app, ["drift", "sensor_features", "-p", str(project), "--reference", "nonsense",
                                 "--current", "2024-01-01:2024-02-01"])
    assert result.exit_code == 1 and "not a window START:END" in result.output


def test_a_planted_duplicate_is_found_and_the_demo_has_none(tmp_path, demo_project):
    now = datetime.now()
    project = copy_project(FIXTURES / "quality_project", tmp_path / "dup")
    model = project / "models" / "sensor_features.sql"
    model.write_text(model.read_text().replace(
        "humidity, state", "humidity, state, temperature as temperature_reading, humidity * 2 + 1 as humidty"))
    schema = project / "models" / "schema.yml"
    schema.write_text(schema.read_text() + """      - {name: temperature_reading, data_type: double, description: Degrees (again).}
      - {name: humidty, data_type: double, description: A misspelt, rescaled humidity.}
""")
    _, failures = build_at(project, readings(now - 5 * DAY, 5, seed=8))
    assert failures == []
    result = runner.invoke(app, ["duplicates", "-p", str(project), "--json"])
    assert result.exit_code == 0, result.output
    found = {(pair["left"], pair["right"], pair["reason"].split()[0]) for pair in json.loads(result.stdout)}
    assert ("sensor_features:temperature", "sensor_features:temperature_reading", "identical") in found
    assert ("sensor_features:humidity", "sensor_features:humidty", "correlation") in found
    assert ("sensor_features:humidity", "sensor_features:humidty", "near-identical") in found
    assert len(found) == 3
    assert FeatureStore(demo_project).duplicate_features() == []


def test_an_export_saves_its_fingerprint_and_drift_compares_with_it(tmp_path):
    now = datetime.now().replace(microsecond=0)
    rows = readings(now - 20 * DAY, 10, seed=9) + readings(now - 10 * DAY, 10, seed=10, temperature=(30.0, 2.0))
    project, _ = build(tmp_path, rows)
    entities = tmp_path / "entities.csv"
    entities.write_text("sensor_id,event_timestamp\n" + "".join(
        f"{sensor},{(now - 11 * DAY).isoformat()}\n" for sensor in range(30)))
    out = tmp_path / "train.parquet"
    result = runner.invoke(app, ["export", "-p", str(project), "--entities", str(entities), "--out", str(out),
                                 "-f", "sensor_features:temperature", "-f", "sensor_features:state"])
    assert result.exit_code == 0, result.output
    from featurestore.quality import load_saved_stats

    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("train")) == ["train.parquet"]
    saved = load_saved_stats(out)  # the fingerprint travels inside the Parquet file
    assert saved["rows"] == 30 and saved["features"]["sensor_features:temperature"]["kind"] == "number"
    window = f"{(now - 10 * DAY).date()}:{(now + DAY).date()}"
    result = runner.invoke(app, ["drift", "sensor_features", "-p", str(project), "--reference-stats",
                                 str(out), "--current", window, "--json"])
    assert result.exit_code == 1, result.output
    assert {e["feature"]: e["breached"] for e in json.loads(result.stdout)} == {"temperature": True, "state": False}
