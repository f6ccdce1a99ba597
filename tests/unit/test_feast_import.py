"""import-feast without Feast: the AST reader on small Feast definitions, and what the writer makes
of them (no dbt here; the round trip through dbt and Feast is tests/integration/test_import_feast.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from featurestore.errors import FeatureStoreError
from featurestore.feast_import import import_feast, read_repo
from featurestore.feast_import.reader import Call, Symbol
from featurestore.feast_import.writer import data_type

HEADER = """
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource, PostgreSQLSource, PushSource, RequestSource, ValueType
from feast.types import Array, Float32, Float64, Int64, Json, Map, String
"""

DEFINITIONS = HEADER + """
driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64, description="A driver.")
TTL = timedelta(hours=36)
stats = FileSource(name="stats_source", path="data/stats.parquet", timestamp_field="event_timestamp",
                   created_timestamp_column="created", field_mapping={"conv": "conv_rate"})
stats_fv = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=TTL,
    schema=[Field(name="conv_rate", dtype=Float32, description="Conversion rate."),
            Field(name="trips", dtype=Int64),
            Field(name="meta", dtype=Map),
            Field(name="tags", dtype=Array(String))],
    source=stats,
    owner="ops@example.com",
    tags={"team": "drivers"},
)
service = FeatureService(name="driver_model", features=[stats_fv[["conv_rate"]]])
"""


def make_repo(folder: Path, files: dict[str, str], parquet: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_store.yaml").write_text("project: drivers\nprovider: local\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    if parquet:
        (folder / "data").mkdir(exist_ok=True)
        table = pa.table({
            "event_timestamp": pa.array([0], pa.timestamp("ns", tz="UTC")),
            "created": pa.array([0], pa.timestamp("us")),
            "driver_id": pa.array([1001], pa.int64()),
            "conv": pa.array([0.5], pa.float32()),
            "trips": pa.array([3], pa.int64()),
            "meta": pa.array([{"k": "v"}], pa.struct([("k", pa.string())])),
            "tags": pa.array([["a"]], pa.list_(pa.string())),
        })
        pq.write_table(table, folder / "data" / "stats.parquet")
    return folder


def notes(repo) -> str:
    return "\n".join(str(note) for note in repo.notes)


def test_reads_entities_sources_views_and_services(tmp_path):
    repo = read_repo(make_repo(tmp_path / "repo", {"definitions.py": DEFINITIONS}))
    assert repo.project == "drivers"
    entity = repo.entities["driver"]
    assert entity.join_keys == ("driver_id",) and entity.value_type == "INT64" and str(entity.where) == "definitions.py:6"
    view = repo.views["driver_stats"]
    assert view.ttl == timedelta(hours=36) and view.online is True and view.owner == "ops@example.com"
    assert [field.name for field in view.fields] == ["conv_rate", "trips", "meta", "tags"]
    assert view.fields[0].dtype == Symbol("Float32") and view.fields[0].description == "Conversion rate."
    assert view.source.timestamp_field == "event_timestamp" and view.source.created_timestamp_column == "created"
    assert view.source.field_mapping == (("conv", "conv_rate"),)
    assert view.tags == (("team", "drivers"),)
    assert repo.services["driver_model"].features == (("driver_stats", ("conv_rate",)),)


def test_names_resolve_across_files_and_zero_ttl_is_none(tmp_path):
    entities = HEADER + 'driver = Entity(name="driver", join_keys=["driver_id"])\nNO_TTL = timedelta(0)\n'
    views = HEADER + """
from entities import driver, NO_TTL
source = FileSource(path="data/stats.parquet", timestamp_field="event_timestamp")
fv = FeatureView(name="plain", entities=[driver], ttl=NO_TTL, schema=[Field(name="trips", dtype=Int64)], source=source)
"""
    repo = read_repo(make_repo(tmp_path / "repo", {"entities.py": entities, "views.py": views}))
    view = repo.views["plain"]
    assert view.entities[0].name == "driver" and view.ttl is None
    assert view.source.name == "source"  # unnamed: the module-level name it is bound to


def test_what_is_not_translated_is_reported_with_file_and_line(tmp_path):
    text = HEADER + """
import pandas as pd
from feast.on_demand_feature_view import on_demand_feature_view
driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path="data/stats.parquet", timestamp_field="event_timestamp")
request = RequestSource(name="vals", schema=[Field(name="val", dtype=Int64)])
computed = FeatureView(name="computed", entities=[driver], ttl=timedelta(days=days()), source=source,
                       schema=[Field(name="trips", dtype=Int64)])
good = FeatureView(name="good", entities=[driver], source=source, schema=[Field(name="trips", dtype=Int64)])

@on_demand_feature_view(sources=[good, request], schema=[Field(name="plus", dtype=Float64)])
def plus(inputs: pd.DataFrame) -> pd.DataFrame:
    return inputs

svc = FeatureService(name="svc", features=[good, plus])
"""
    repo = read_repo(make_repo(tmp_path / "repo", {"defs.py": text}))
    assert set(repo.views) == {"good"} and repo.services["svc"].features == (("good", None),)
    report = notes(repo)
    assert "defs.py:10: request source vals: not translated" in report
    assert "defs.py:11: feature view computed: not translated: its ttl is `timedelta(days=days())` at defs.py:11" in report
    assert "defs.py:16: on-demand feature view plus: not translated" in report
    assert "defs.py:19: feature service svc: translated without plus" in report


def test_bad_input_is_refused_naming_the_file_and_line(tmp_path):
    with pytest.raises(FeatureStoreError, match="no feature_store.yaml"):
        read_repo(tmp_path)
    broken = make_repo(tmp_path / "broken", {"defs.py": "driver = Entity(name=\n"}, parquet=False)
    with pytest.raises(FeatureStoreError, match=r"defs.py:1: not valid Python"):
        read_repo(broken)
    camel = make_repo(tmp_path / "camel", {"defs.py": DEFINITIONS.replace('name="driver_stats"', 'name="DriverStats"')})
    with pytest.raises(FeatureStoreError, match=r"defs.py:10: the feature view name .DriverStats. is not a dbt model name"):
        import_feast(camel, tmp_path / "out_camel")
    assert not (tmp_path / "out_camel").exists()


def test_writes_the_dbt_project(tmp_path):
    feast = make_repo(tmp_path / "repo", {"definitions.py": DEFINITIONS})
    out = tmp_path / "dbt"
    result = import_feast(feast, out, package="/opt/featurestore")
    assert result.features == {"driver_stats": ["conv_rate", "trips", "tags"]}
    models = yaml.safe_load((out / "models/feast/_models.yml").read_text())["models"]
    keys, view = models
    assert keys["name"] == "driver_keys"
    assert keys["config"]["meta"]["featurestore"]["entities"] == [
        {"name": "driver", "join_keys": ["driver_id"], "description": "A driver."}]
    meta = view["config"]["meta"]["featurestore"]
    assert view["config"]["materialized"] == "feature_view"
    assert meta == {"entities": ["driver"], "event_timestamp": "event_timestamp", "created_timestamp": "created",
                    "ttl": "36h", "online": True, "owner": "ops@example.com", "tags": ["team:drivers"]}
    types = {column["name"]: column["data_type"] for column in view["columns"]}
    assert types == {"driver_id": "bigint", "event_timestamp": "timestamp", "created": "timestamp",
                     "conv_rate": "float", "trips": "bigint", "tags": "varchar[]"}
    sql = (out / "models/feast/driver_stats.sql").read_text()
    assert "timezone('UTC', \"event_timestamp\") as \"event_timestamp\"" in sql  # the file's zone -> UTC
    assert 'cast("created" as timestamp) as "created"' in sql  # zone-less: already UTC
    assert 'cast("conv" as float) as "conv_rate"' in sql  # field_mapping
    sources = yaml.safe_load((out / "models/feast/_sources.yml").read_text())["sources"][0]["tables"]
    assert sources[0]["config"]["meta"]["external_location"] == "read_parquet('../repo/data/stats.parquet')"
    exposure = yaml.safe_load((out / "models/feast/_services.yml").read_text())["exposures"][0]
    assert exposure["type"] == "ml" and exposure["config"]["meta"]["featurestore"]["features"] == ["driver_stats:conv_rate"]
    assert yaml.safe_load((out / "packages.yml").read_text()) == {"packages": [{"local": "/opt/featurestore"}]}
    assert "feature meta: not translated: a struct" in result.report
    assert (out / "feast_import_report.md").read_text() == result.report


def test_existing_files_are_refused_unless_forced(tmp_path):
    feast = make_repo(tmp_path / "repo", {"definitions.py": DEFINITIONS})
    out = tmp_path / "dbt"
    import_feast(feast, out, package="/opt/featurestore")
    sql = out / "models/feast/driver_stats.sql"
    sql.write_text("-- edited by hand\n")
    with pytest.raises(FeatureStoreError, match=r"already has .*models/feast/driver_stats.sql.*--force"):
        import_feast(feast, out, package="/opt/featurestore")
    assert sql.read_text() == "-- edited by hand\n"
    import_feast(feast, out, package="/opt/featurestore", force=True)
    assert "select" in sql.read_text()


@pytest.mark.parametrize("dtype, file_type, expected", [
    (Symbol("Int32"), None, "integer"), (Symbol("Int64"), None, "bigint"), (Symbol("Float32"), None, "float"),
    (Symbol("Float64"), None, "double"), (Symbol("String"), None, "varchar"), (Symbol("Bool"), None, "boolean"),
    (Symbol("UnixTimestamp"), None, "timestamp"), (Symbol("Json"), None, "varchar"), (Symbol("Bytes"), None, "blob"),
    (Symbol("Decimal"), "decimal(18,3)", "decimal(18,3)"), (Symbol("Map"), "map(varchar, varchar)", "map(varchar, varchar)"),
])
def test_feast_types(dtype, file_type, expected):
    assert data_type(dtype, file_type) == expected


def test_types_without_a_translation_say_why():
    with pytest.raises(ValueError, match="typed only by its data"):
        data_type(Symbol("Map"), None)
    with pytest.raises(ValueError, match="Feast type Invalid has no translation"):
        data_type(Symbol("Invalid"), None)
    assert data_type(Call("Array", [Symbol("Int64")], {}, None), None) == "bigint[]"


def test_the_command_prints_what_it_translated_and_refuses_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from featurestore.cli import app

    feast = make_repo(tmp_path / "repo", {"definitions.py": DEFINITIONS})
    out = tmp_path / "dbt"
    result = CliRunner().invoke(app, ["import-feast", str(feast), "--out", str(out), "--package", "/opt/fs", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["features"] == {"driver_stats": ["conv_rate", "trips", "tags"]}
    assert any("feature meta: not translated" in note for note in data["notes"])
    again = CliRunner().invoke(app, ["import-feast", str(feast), "--out", str(out)])
    assert again.exit_code == 1
    assert "already has" in again.output and "--force" in again.output and "Traceback" not in again.output


def test_into_an_existing_project_only_its_models_folder_is_written(tmp_path):
    feast = make_repo(tmp_path / "repo", {"definitions.py": DEFINITIONS})
    project = tmp_path / "mine"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: mine\n")
    result = import_feast(feast, project, package="/opt/featurestore")
    assert (project / "dbt_project.yml").read_text() == "name: mine\n"
    assert not (project / "profiles.yml").exists() and not (project / "packages.yml").exists()
    assert sorted(result.written) == ["feast_import_report.md", "models/feast/_models.yml", "models/feast/_services.yml",
                                      "models/feast/_sources.yml", "models/feast/driver_keys.sql",
                                      "models/feast/driver_stats.sql"]
    assert "packages.yml: the existing project does not install featurestore" in result.report


def test_a_source_that_is_not_parquet_is_reported(tmp_path):
    text = DEFINITIONS.replace('path="data/stats.parquet",', 'path="data/stats", file_format=DeltaFormat(),')
    repo = read_repo(make_repo(tmp_path / "repo", {"definitions.py": text}))
    assert repo.views == {}
    assert "feature view driver_stats: not translated: its source (definitions.py:8) is not in Parquet format " \
           "(DeltaFormat(...) at definitions.py:8)" in notes(repo)


def test_a_table_source_becomes_a_dbt_source_table(tmp_path):
    text = HEADER + """
driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.STRING)
table = PostgreSQLSource(name="driver_table", table="features.driver_stats", timestamp_field="ts")
fv = FeatureView(name="driver_stats", entities=[driver], source=table, schema=[Field(name="trips", dtype=Int64)])
"""
    feast = make_repo(tmp_path / "repo", {"definitions.py": text}, parquet=False)
    result = import_feast(feast, tmp_path / "dbt", package="/opt/featurestore")
    sources = yaml.safe_load((tmp_path / "dbt/models/feast/_sources.yml").read_text())["sources"][0]["tables"]
    assert sources == [{"name": "driver_table", "identifier": "driver_stats", "schema": "features",
                        "description": "Feast table source features.driver_stats (definitions.py:7)."}]
    sql = (tmp_path / "dbt/models/feast/driver_stats.sql").read_text()
    assert 'cast("driver_id" as varchar) as "driver_id"' in sql and 'cast("ts" as timestamp) as "ts"' in sql
    assert "table source driver_table: declared as the dbt source table features.driver_stats" in result.report


def test_nothing_from_the_feast_repository_runs_as_jinja_in_dbt(tmp_path):
    """dbt renders model SQL and YAML as Jinja: a field named `{{ ... }}` would run at `dbt build`,
    and a description with `{% if %}` would break `dbt parse`."""
    evil = DEFINITIONS.replace('Field(name="trips", dtype=Int64)',
                               'Field(name="trips{{ run_query(\'select 42\') }}", dtype=Int64)')
    feast = make_repo(tmp_path / "repo", {"definitions.py": evil})
    with pytest.raises(FeatureStoreError, match=r"trips\{\{ run_query.*is not a plain identifier"):
        import_feast(feast, tmp_path / "refused", package="/opt/featurestore")
    assert not (tmp_path / "refused").exists()  # refused before anything is written

    described = DEFINITIONS.replace('description="Conversion rate."', 'description="rate {% if x %} {{ y }} {# z"')
    out = tmp_path / "dbt"
    import_feast(make_repo(tmp_path / "repo2", {"definitions.py": described}), out, package="/opt/featurestore")
    written = "".join(path.read_text() for path in out.rglob("*") if path.is_file())
    assert "{% if x" not in written and "{{ y }}" not in written
    profile = yaml.safe_load((out / "profiles.yml").read_text())
    assert profile["drivers"]["outputs"]["duckdb"]["path"].startswith("{{ env_var(")  # our own Jinja stays and "rate { % if x %} { { y }} { # z" in written
    assert "auto" in yaml.safe_load((out / "dbt_project.yml").read_text())["vars"]["featurestore_online"]["endpoint_url"]
