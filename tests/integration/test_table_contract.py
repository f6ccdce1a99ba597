"""The feature_view materialization keeps dbt's table contract, on DuckDB and PostgreSQL:
the backup of an existing relation of any type, grants, contracts refused clearly,
on_schema_change, and identifiers quoted (reserved words, mixed case)."""

from __future__ import annotations

import shutil

import duckdb
import psycopg2
import pytest

from conftest import FIXTURES, REPO
from featurestore.dbt import DbtProject

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

ENGINES = ["duckdb", "postgres"]
MIXED = """{{ config(materialized='feature_view') }}
select customer_id as "CustomerId", ordered_at as "Ordered_At", loaded_at as "Loaded_At",
       amount as "Amount", case when amount > 40 then 'men''s' else 'it''s' end as "from"
from {{ ref('stg_orders') }}
"""
MIXED_YAML = """
  - name: mixed_features
    description: Mixed-case and reserved-word columns.
    config:
      meta:
        featurestore:
          entities: [customer_key]
          event_timestamp: Ordered_At
          created_timestamp: Loaded_At
          owner: x@example.com
    columns:
      - name: from
        config: {meta: {featurestore: {expect: {values: ["it's", "men's"], max_null_rate: 0}}}}
        data_tests: [featurestore.feature_expectation]
  - name: customer_keys
    description: Declares an entity with a mixed-case key.
    config:
      meta:
        featurestore:
          entities:
            - {name: customer_key, join_keys: [CustomerId], description: x}
"""


@pytest.fixture(params=ENGINES)
def engine(request, tmp_path):
    """A fresh shop project on one engine; returns (dbt project, query function)."""
    shop = tmp_path / "shop"
    shutil.copytree(FIXTURES / "shop_project", shop)
    (shop / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    (shop / "models" / "mixed_features.sql").write_text(MIXED)
    (shop / "models" / "customer_keys.sql").write_text('select distinct customer_id as "CustomerId" from {{ ref(\'stg_orders\') }}\n')
    schema = shop / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("exposures:", MIXED_YAML.lstrip("\n") + "exposures:"))
    if request.param == "duckdb":
        project = DbtProject.at(shop)

        def query(sql):
            with duckdb.connect(str(shop / "shop.duckdb"), read_only=True) as con:
                return con.execute(sql).fetchall()
    else:
        server = request.getfixturevalue("postgres_server")
        schema_name = f"shop_{abs(hash(str(tmp_path))) % 10**8}"
        project = DbtProject.at(shop, "pg", {"SHOP_PG_HOST": server.host, "SHOP_PG_PORT": str(server.port),
                                             "SHOP_PG_SCHEMA": schema_name})

        def query(sql):
            con = psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname=server.database,
                                   options=f"-c search_path={schema_name}")
            try:
                with con.cursor() as cur:
                    cur.execute(sql)
                    return cur.fetchall() if cur.description else []
            finally:
                con.commit()
                con.close()
    project.run("deps", "--quiet")
    project.run("build", "--quiet")
    return request.param, project, query


def set_config(project: DbtProject, model: str, config: str) -> None:
    path = project.project_dir / "models" / f"{model}.sql"
    text = path.read_text()
    path.write_text("{{ config(" + config + ") }}\n" + text)


def test_reserved_words_and_mixed_case_columns(engine):
    _, project, query = engine
    rows = query('select "CustomerId", "Ordered_At", "from", valid_from from mixed_features order by 1, 2 limit 3')
    assert len(rows) == 3 and all(row[1] == row[3] for row in rows)
    assert query('select count(*) from customer_features where "order" is null or "select" is null') == [(0,)]
    # incremental onto the quoted columns: append an order, rebuild, nothing rebuilt from scratch
    result = project.run("build", "--select", "mixed_features", "customer_features", "--quiet")
    assert result.success


def test_a_view_becomes_a_feature_view(engine):
    _, project, query = engine
    path = project.project_dir / "models" / "customer_features.sql"
    original = path.read_text()
    path.write_text(original.replace("materialized='feature_view'", "materialized='view'"))
    project.run("build", "--select", "customer_features", "--quiet")
    path.write_text(original)
    project.run("build", "--select", "customer_features", "--quiet")  # backup relation is a view: renamed, dropped
    assert query("select count(*) from customer_features where valid_to is null")[0][0] > 0


def test_contracts_are_refused_clearly(engine):
    _, project, _ = engine
    set_config(project, "customer_features", "contract={'enforced': true}")
    result = project.run("build", "--select", "customer_features", "--quiet", raise_on_failure=False)
    assert not result.success
    assert "does not support" in str(result.results[0].message) and "contract" in str(result.results[0].message)


@pytest.mark.parametrize("value", ["ignore", "append_new_columns"])
def test_on_schema_change_values_that_would_keep_stale_rows_are_refused(engine, value):
    _, project, _ = engine
    set_config(project, "customer_features", f"on_schema_change='{value}'")
    result = project.run("build", "--select", "customer_features", "--quiet", raise_on_failure=False)
    assert not result.success and f"on_schema_change: '{value}'" in str(result.results[0].message)


def test_on_schema_change_fail_names_the_new_column(engine):
    _, project, _ = engine
    path = project.project_dir / "models" / "customer_features.sql"
    path.write_text(path.read_text().replace("materialized='feature_view'",
                                             "materialized='feature_view', on_schema_change='fail'"))
    project.run("build", "--select", "customer_features", "--full-refresh", "--quiet")
    path.write_text(path.read_text().replace("{'name': 'orders_7d', 'fn': 'count', 'window': '7d'},",
                                             "{'name': 'orders_7d', 'fn': 'count', 'window': '7d'}, {'name': 'orders_1d', 'fn': 'count', 'window': '1d'},"))
    result = project.run("run", "--select", "customer_features", "--quiet", raise_on_failure=False)
    message = str(result.results[0].message)
    assert not result.success and "new column orders_1d" in message and "--full-refresh" in message


def test_grants_are_applied_like_a_table(engine):
    kind, project, query = engine
    if kind == "duckdb":
        pytest.skip("DuckDB has no GRANT; dbt-duckdb ignores grants (the build above succeeded with none)")
    query("do $$ begin if not exists (select from pg_roles where rolname = 'analyst') then create role analyst; end if; end $$")
    set_config(project, "customer_features", "grants={'select': ['analyst']}")
    project.run("build", "--select", "customer_features", "--quiet")
    granted = query("select table_name from information_schema.role_table_grants where grantee = 'analyst' "
                    "and privilege_type = 'SELECT' order by 1")
    assert granted == [("customer_features",), ("customer_features__rejected",)]


def test_expectation_values_with_quotes_are_literals(engine):
    """`men's` in expect.values is an escaped literal: the test passes when every value is
    allowed and fails (not errors) when one is not."""
    _, project, _ = engine
    result = project.run("test", "--select", "mixed_features", "--quiet", raise_on_failure=False)
    assert {r.status for r in result.results} == {"pass"}
    schema = project.project_dir / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace('values: ["it\'s", "men\'s"]', 'values: ["men\'s"]'))
    result = project.run("test", "--select", "mixed_features", "--quiet", raise_on_failure=False)
    assert [str(r.status) for r in result.results] == ["fail"]


def test_a_yaml_column_missing_from_the_sql_fails_the_build_naming_it(engine):
    _, project, _ = engine
    schema = project.project_dir / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace(
        "      - {name: select, data_type: double, description: Amount ordered so far.}",
        "      - {name: select, data_type: double, description: Amount ordered so far.}\n"
        "      - {name: refunds_7d, data_type: bigint, description: Not in the SQL.}"))
    result = project.run("run", "--select", "customer_features", "--quiet", raise_on_failure=False)
    message = str(result.results[0].message)
    assert not result.success and "customer_features" in message and "'refunds_7d'" in message
    assert "does not return it" in message
