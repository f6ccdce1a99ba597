"""featurestore installed into a dbt project that is not ours, as its users would install it.

The fixture shop project has models named like the demo's (stg_customers, stg_orders,
customer_features), its profiles.yml at its root, seeds for data, and feature columns named
with reserved words. Commands run as subprocesses, the way a user types them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import FIXTURES, REPO

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

BIN = Path(sys.executable).parent


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURESTORE_", "DBT_"))}
    return {**env, **extra}


def run(args, cwd, check=True, **env):
    result = subprocess.run(args, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def make_shop(root: Path, endpoint: str = "http://127.0.0.1:1") -> Path:
    shop = root / "shop"
    shutil.copytree(FIXTURES / "shop_project", shop)
    (shop / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    config = shop / "dbt_project.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:1", endpoint))
    return shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory, moto_server):
    shop = make_shop(tmp_path_factory.mktemp("adopt"), moto_server)
    run([str(BIN / "dbt"), "deps"], shop)
    run([str(BIN / "dbt"), "build"], shop)
    return shop


REGISTRY_TABLES = ("featurestore_entities", "featurestore_feature_views", "featurestore_features", "featurestore_services")


def test_the_package_brings_only_the_registry_tables(shop):
    manifest = json.loads((shop / "target" / "manifest.json").read_text())
    ours = [uid for uid in {**manifest["nodes"], **manifest["sources"], **manifest["exposures"]}
            if uid.split(".")[1] == "featurestore"]
    assert sorted(ours) == [f"model.featurestore.{name}" for name in REGISTRY_TABLES]
    assert manifest["nodes"]["model.shop.customer_features"]["config"]["materialized"] == "feature_view"
    assert {m["package_name"] for m in manifest["macros"].values() if m["name"] == "rolling_window"} == {"featurestore"}


def registry_tables(query) -> dict:
    """The four registry tables, read with `query(sql) -> rows`, keyed by name (JSON text parsed)."""
    views = {row[0]: dict(relation=row[1], entities=json.loads(row[2]), join_keys=json.loads(row[3]),
                          event_timestamp=row[4], created_timestamp=row[5], ttl=row[6], online=row[7], owner=row[8],
                          description=row[9], tags=json.loads(row[10]), meta=json.loads(row[11]))
             for row in query("select name, relation, entities, join_keys, event_timestamp, created_timestamp, ttl, "
                              "online, owner, description, tags, meta from {schema}featurestore_feature_views")}
    features = {row[2]: dict(view=row[0], feature=row[1], data_type=row[3], description=row[4], owner=row[5])
                for row in query("select view, feature, reference, data_type, description, owner "
                                 "from {schema}featurestore_features")}
    entities = {row[0]: dict(join_keys=json.loads(row[1]), description=row[2], declared_in=row[3])
                for row in query("select name, join_keys, description, declared_in from {schema}featurestore_entities")}
    services = {row[0]: dict(features=json.loads(row[1]), owner=row[2], description=row[3])
                for row in query("select name, features, owner, description from {schema}featurestore_services")}
    return dict(feature_views=views, features=features, entities=entities, services=services)


def registry_as_tables(registry) -> dict:
    """What the registry tables must hold: the Python registry of the same manifest."""
    views = {view.name: dict(relation=view.relation_name, entities=list(view.entities),
                             join_keys=list(registry.join_keys(view)), event_timestamp=view.event_timestamp,
                             created_timestamp=view.created_timestamp, ttl=view.ttl_text, online=view.online,
                             owner=view.owner, description=view.description, tags=list(view.tags), meta=dict(view.meta))
             for view in registry.feature_views.values()}
    features = {feature.reference: dict(view=view.name, feature=feature.name, data_type=feature.dtype,
                                         description=feature.description, owner=view.owner)
                for view in registry.feature_views.values() for feature in view.features}
    entities = {entity.name: dict(join_keys=list(entity.join_keys), description=entity.description,
                                  declared_in=entity.declared_in) for entity in registry.entities.values()}
    services = {service.name: dict(features=list(dict.fromkeys(service.feature_refs)),  # on-demand ones too
                                   owner=service.owner, description=service.description)
                for service in registry.services.values()}
    return dict(feature_views=views, features=features, entities=entities, services=services)


def test_the_registry_tables_hold_every_feature_with_its_owner_and_description(shop):
    """After `dbt build`, SQL finds in the registry tables what the Python registry reads from the
    manifest; descriptions keep their quotes, newline, braces, backslash and unicode."""
    from featurestore import FeatureStore
    from featurestore.registry import load_manifest, registry_from_manifest

    registry = registry_from_manifest(load_manifest(shop / "target" / "manifest.json"))
    with duckdb.connect(str(shop / "shop.duckdb"), read_only=True) as con:
        tables = registry_tables(lambda sql: con.execute(sql.format(schema="")).fetchall())
    assert tables == registry_as_tables(registry)
    assert set(tables["features"]) == {"customer_features:order", "customer_features:select", "customer_features:orders_7d"}
    described = tables["features"]["customer_features:orders_7d"]["description"]
    assert described == ("Orders in the 7 days up to the order ('7d' window, \"inclusive\");\n"
                         "not {{ ref('x') }}, \\n is no newline; Zürich ✓.")
    assert tables["features"]["customer_features:order"]["owner"] == "shop-data@example.com"
    # the package's models are not feature views to the registry, validate or list
    assert set(registry.feature_views) == {"customer_features"} and "featurestore_features" in registry.model_columns
    assert [view.name for view in FeatureStore(shop).list_feature_views()] == ["customer_features"]


def test_the_registry_tables_are_typed_when_empty_and_can_be_left_out(tmp_path):
    """The package on its own (its profiles/): a project without feature views, entities or services."""
    dbt = str(BIN / "dbt")
    where = ["--project-dir", str(REPO), "--profiles-dir", str(REPO / "profiles"),
             "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    warehouse = tmp_path / "package.duckdb"
    run([dbt, "run", *where], tmp_path, FEATURESTORE_DUCKDB_PATH=str(warehouse))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in REGISTRY_TABLES:
            assert con.execute(f"select count(*) from {table}").fetchone() == (0,)
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_name = 'featurestore_feature_views'").fetchall())
    assert types["online"] == "BOOLEAN" and types["name"] == types["meta"] == "VARCHAR"
    listed = run([dbt, "ls", "-q", *where, "--resource-type", "model", "--output", "name",
                  "--vars", "{featurestore_registry_tables: false}"], tmp_path)
    assert listed.stdout.split() == []


def test_the_cli_works_from_the_project_and_from_elsewhere(shop, tmp_path):
    featurestore = str(BIN / "featurestore")
    result = run([featurestore, "validate"], shop)
    assert "0 error(s)" in result.stdout
    entities = tmp_path / "entities.csv"
    entities.write_text("customer_id,event_timestamp\n1,2026-10-10 12:00:00\n2,2026-10-20 00:00:00\n")
    for cwd, project in ((shop, []), (tmp_path, ["-p", str(shop)])):
        out = tmp_path / f"train_{len(project)}.parquet"
        run([featurestore, "export", *project, "-e", str(entities), "--service", "shop_model", "--out", str(out)], cwd)
        assert out.is_file()
    run([featurestore, "sync"], shop)
    with duckdb.connect(str(shop / "shop.duckdb"), read_only=True) as con:
        customer, orders = con.execute('select customer_id, "order" from customer_features where valid_to is null '
                                        "order by customer_id limit 1").fetchone()
    got = run([featurestore, "get", "-p", str(shop), "-f", "customer_features:order", "-e", f"customer_id={customer}"],
              tmp_path)
    vector = json.loads(got.stdout)
    assert vector["entity"] == {"customer_id": customer}  # an integer key, echoed as an integer
    assert (vector["features"]["order"]["value"], vector["features"]["order"]["status"]) in (
        (orders, "PRESENT"), (None, "OUTSIDE_MAX_AGE"))  # past the 30d TTL: no value, and why
    # the relative DuckDB path of the profile resolves against the project, not the current folder
    assert not (tmp_path / "shop.duckdb").exists()


def test_get_shows_each_values_status_and_types_keys_as_declared(shop):
    from typer.testing import CliRunner

    from featurestore import FeatureStore
    from featurestore.cli import app

    FeatureStore(shop).sync()
    runner = CliRunner()
    result = runner.invoke(app, ["get", "-p", str(shop), "-f", "customer_features:order", "-f", "customer_features:select",
                                 "-e", "customer_id=424242"])
    assert result.exit_code == 0, result.output
    vector = json.loads(result.stdout)
    assert vector == {"entity": {"customer_id": 424242}, "features": {
        "order": {"value": None, "status": "NOT_FOUND", "event_timestamp": None},
        "select": {"value": None, "status": "NOT_FOUND", "event_timestamp": None}}}
    with duckdb.connect(str(shop / "shop.duckdb"), read_only=True) as con:
        customer, event = con.execute("select customer_id, ordered_at from customer_features where valid_to is null "
                                      "order by ordered_at desc limit 1").fetchone()
    result = runner.invoke(app, ["get", "-p", str(shop), "-f", "customer_features:order", "-e", f"customer_id={customer}"])
    found = json.loads(result.stdout)["features"]["order"]
    assert found["status"] == "OUTSIDE_MAX_AGE" and found["value"] is None  # the seeds end in October 2026; TTL 30d
    assert found["event_timestamp"].startswith(event.strftime("%Y-%m-%dT%H:%M:%S"))
    result = runner.invoke(app, ["get", "-p", str(shop), "-f", "customer_features:order", "-e", "customer_id=abc"])
    assert result.exit_code == 1 and "'customer_id' is an integer join key (integer); 'abc' is not an integer" in result.output


def test_profile_lookup_follows_dbt(shop, tmp_path):
    featurestore = str(BIN / "featurestore")
    elsewhere = tmp_path / "profiles_elsewhere"
    elsewhere.mkdir()
    moved = shop.parent / "shop_without_profile"
    # symlinks=True: dbt_packages/featurestore links to the repository, whose demo links back to it
    shutil.copytree(shop, moved, symlinks=True, ignore=shutil.ignore_patterns("target", "shop.duckdb*"))
    (moved / "profiles.yml").unlink()
    home = tmp_path / "home"
    home.mkdir()
    result = run([featurestore, "list", "-p", str(moved)], tmp_path, check=False, HOME=str(home))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "No profiles.yml found" in result.stderr and str(moved / "profiles.yml") in result.stderr
    assert str(home / ".dbt" / "profiles.yml") in result.stderr  # names every place it looked
    shutil.copy(shop / "profiles.yml", elsewhere / "profiles.yml")
    assert run([featurestore, "list", "-p", str(moved), "--profiles-dir", str(elsewhere)], tmp_path).returncode == 0
    assert run([featurestore, "list", "-p", str(moved)], tmp_path, DBT_PROFILES_DIR=str(elsewhere)).returncode == 0
    (home / ".dbt").mkdir()
    shutil.copy(shop / "profiles.yml", home / ".dbt" / "profiles.yml")
    assert run([featurestore, "list", "-p", str(moved)], tmp_path, HOME=str(home)).returncode == 0


def test_a_changed_definition_rebuilds_or_stops(tmp_path, moto_server):
    shop = make_shop(tmp_path, moto_server)
    dbt = str(BIN / "dbt")
    run([dbt, "deps"], shop)
    run([dbt, "build"], shop)
    model = shop / "models" / "customer_features.sql"
    model.write_text(model.read_text().replace("{'name': 'select', 'fn': 'sum', 'column': 'amount'}",
                                               "{'name': 'select', 'fn': 'max', 'column': 'amount'}"))
    result = run([dbt, "build", "--select", "customer_features"], shop)
    assert "rebuilding" in result.stdout and "compiled SQL changed" in result.stdout
    with duckdb.connect(str(shop / "shop.duckdb"), read_only=True) as con:
        stale = con.execute('select count(*) from customer_features f where "select" <> (select max(amount) from '
                            "stg_orders o where o.customer_id = f.customer_id and o.ordered_at <= f.ordered_at)").fetchone()
    assert stale == (0,)  # every row recomputed by the new SQL
    # with on_schema_change: fail, a change stops the build and says what to run
    model.write_text("{{ config(on_schema_change='fail') }}\n" + model.read_text().replace("'fn': 'max'", "'fn': 'min'"))
    result = run([dbt, "build", "--select", "customer_features"], shop, check=False)
    assert result.returncode != 0
    assert "compiled SQL changed" in result.stdout and "dbt build --full-refresh --select customer_features" in result.stdout
    run([dbt, "build", "--select", "customer_features", "--full-refresh"], shop)


def test_a_created_timestamp_that_moves_every_run_is_named(tmp_path, moto_server):
    shop = make_shop(tmp_path, moto_server)
    model = shop / "models" / "customer_features.sql"
    model.write_text("{{ config(materialized='feature_view') }}\nselect customer_id, ordered_at, "
                     "cast(current_timestamp as timestamp) as loaded_at, 1 as \"order\", 1.0 as \"select\", "
                     "cast(1 as bigint) as orders_7d from {{ ref('stg_orders') }}\n")
    dbt = str(BIN / "dbt")
    run([dbt, "deps"], shop)
    run([dbt, "build"], shop)
    result = run([dbt, "build", "--select", "customer_features"], shop)
    assert "repeat the stored values" in result.stdout and "current_timestamp" in result.stdout


def test_a_manifest_from_a_plain_dbt_command_is_reused_only_for_the_same_target(tmp_path):
    """After the user's own `dbt parse`/`dbt run`, featurestore reuses the manifest when it names
    this target's relations and parses again when it was written for another target."""
    from conftest import EXAMPLE, copy_project
    from featurestore import FeatureStore

    project = copy_project(EXAMPLE, tmp_path / "project", package=True)
    manifest = project / "target" / "manifest.json"
    run([str(BIN / "dbt"), "deps"], project)
    run([str(BIN / "dbt"), "parse"], project, FEATURESTORE_TARGET="postgres", FEATURESTORE_PG_SCHEMA="elsewhere")
    assert '"elsewhere"' in manifest.read_text()
    written = manifest.stat().st_mtime_ns
    view = FeatureStore(project, env={"FEATURESTORE_DUCKDB_PATH": str(tmp_path / "w.duckdb")}).registry.view("customer_features")
    assert manifest.stat().st_mtime_ns != written and '"elsewhere"' not in view.relation_name  # parsed again
    run([str(BIN / "dbt"), "parse"], project, FEATURESTORE_DUCKDB_PATH=str(tmp_path / "w.duckdb"))
    written = manifest.stat().st_mtime_ns
    view = FeatureStore(project, env={"FEATURESTORE_DUCKDB_PATH": str(tmp_path / "w.duckdb")}).registry.view("customer_features")
    assert manifest.stat().st_mtime_ns == written and view.relation_name.endswith('"main"."customer_features"')  # reused
