"""`featurestore validate` on broken YAML: one fixture per rule, each error precise."""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featurestore import FeatureStore, InvalidRegistryError
from featurestore.cli import app

from conftest import FIXTURES, copy_project, duckdb_path

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

runner = CliRunner()
SCHEMA = "models/schema.yml"

# fixture -> (rule, model, column, words of the message)
CASES = {
    "unknown_entity": ("unknown-entity", "user_features", None, "entity 'account' is not declared"),
    "missing_join_key": ("missing-join-key", "user_features", "user_id", "join key 'user_id' of entity 'user'"),
    "missing_timestamp": ("missing-timestamp", "user_features", "updated_at", "event_timestamp column 'updated_at'"),
    "missing_description": ("missing-description", "user_features", "tier", "has no description"),
    "missing_owner": ("missing-owner", "user_features", None, "no owner"),
    "missing_type": ("missing-type", "user_features", "clicks_7d", "no data_type"),
    "duplicate_feature": ("duplicate-feature", "user_features", "tier", "declared 2 times"),
    "unknown_feature_reference": ("unknown-feature-reference", "exposure:engagement_model", None,
                                  "view 'user_features' has no feature 'purchases_30d'"),
    "bad_ttl": ("bad-ttl", "user_features", None, "'7 days' is not a duration"),
    "naming_snake_case": ("naming", "user_features", "Tier", "not snake_case"),
    "naming_window_suffix": ("naming", "user_features", "clicks_7d", "must end in '_30d'"),
    "timestamp_not_a_timestamp": ("bad-timestamp-type", "user_features", "event_ts", "must be a timestamp"),
    "bad_expectation": ("bad-expectation", "user_features", "clicks_7d", "unknown key(s) minimum"),
}


def _project_with(tmp_path: Path, broken: str | None) -> Path:
    project = copy_project(FIXTURES / "mini_project", tmp_path / "mini")
    if broken:
        shutil.copy(FIXTURES / "broken_yaml" / f"{broken}.yml", project / SCHEMA)
    return project


def test_mini_project_is_clean(tmp_path):
    result = runner.invoke(app, ["validate", "-p", str(_project_with(tmp_path, None))])
    assert result.exit_code == 0, result.output


def test_every_broken_fixture_has_a_case():
    assert {p.stem for p in (FIXTURES / "broken_yaml").glob("*.yml")} == set(CASES)


@pytest.mark.parametrize("broken", sorted(CASES))
def test_broken_yaml_fails_with_a_precise_error(tmp_path, broken):
    rule, model, column, words = CASES[broken]
    project = _project_with(tmp_path, broken)
    result = runner.invoke(app, ["validate", "-p", str(project)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if f"[{rule}]" in line and line.startswith("error")]
    assert lines, result.stdout
    line = next((l for l in lines if words in l), None)
    assert line is not None, f"no '{words}' in:\n{result.stdout}"
    kind, _, model = model.rpartition(":")
    assert SCHEMA in line and f"{kind or 'model'} '{model}'" in line
    if column:
        assert f"column '{column}'" in line
    # the store refuses to load the same registry
    with pytest.raises(InvalidRegistryError, match=rule):
        FeatureStore(project).registry


def test_warnings_alone_exit_zero(tmp_path):
    project = _project_with(tmp_path, None)
    schema = project / SCHEMA
    schema.write_text(schema.read_text().replace("          ttl: 7d\n", ""))
    result = runner.invoke(app, ["validate", "-p", str(project)])
    assert result.exit_code == 0, result.output
    assert "[no-ttl]" in result.stdout and "0 error(s), 1 warning(s)" in result.stdout


def test_build_stops_at_a_bad_ttl_before_the_view_or_the_registry_is_built(tmp_path):
    """`featurestore build` refuses the ttl `validate` refuses, naming the model and the value,
    and builds neither the view nor the registry tables (a trial found both built, with the
    bad ttl written into featurestore_feature_views). The macro parses it with the duration
    grammar tests/unit/test_durations.py proves equal to Python's."""
    import duckdb

    project = _project_with(tmp_path, "bad_ttl")
    model = project / "models" / "user_features.sql"
    model.write_text("{{ config(materialized='feature_view') }}\n" + model.read_text())
    result = runner.invoke(app, ["build", "-p", str(project)],
                           env={"FEATURESTORE_DUCKDB_PATH": str(duckdb_path(project))})
    assert result.exit_code == 1, result.output
    assert "model 'user_features'" in result.output and "ttl duration '7 days' is not valid" in result.output
    assert "Traceback" not in result.output
    built = set()
    if duckdb_path(project).exists():
        with duckdb.connect(str(duckdb_path(project)), read_only=True) as con:
            built = {name for (name,) in con.execute("select table_name from information_schema.tables").fetchall()}
    assert built and not built & {"user_features", "featurestore_feature_views", "featurestore_features"}, built
    assert " error (and 2 more)" in result.output  # the view and both registry tables (dbt's log is not
    # this output when dbt runs as a command: the tables below are the proof)
