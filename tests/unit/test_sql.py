"""SQL the package renders, and SQL users hand it: checked with the engines' own parsers, no server."""

from pathlib import Path

import duckdb
import pytest

from featurestore import sql
from featurestore.warehouse import UserQueryError
from featurestore.warehouse.postgres import check_query

VIEWS = [{"alias": "_fs_v0", "relation": '"db"."main"."v"', "join_keys": [("k", "k")], "features": [("order", "order")],
          "ttl_seconds": 60, "strategy": "interval", "created": "loaded_at"}]


@pytest.mark.parametrize("strategy", ["interval", "asof", "knowledge"])
@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_point_in_time_renders_one_statement_with_quoted_identifiers(dialect, strategy):
    text = sql.render("point_in_time", dialect=dialect, param="?", entities="_fs_entities",
                      entity_columns=["k", "select"], timestamp="ts", views=[dict(VIEWS[0], strategy=strategy)],
                      match_columns=True, ordered=False)
    assert [s.type.name for s in duckdb.extract_statements(text)] == ["SELECT"]
    assert '"order"' in text and '"select"' in text and "order as" not in text


def test_a_user_query_is_wrapped_so_a_comment_cannot_swallow_the_parenthesis():
    text = sql.render("user_query", dialect="duckdb", query="select 1 as k -- trailing", columns=None, limit_zero=True)
    assert [s.type.name for s in duckdb.extract_statements(text)] == ["SELECT"]


def test_spark_quotes_with_backticks_and_doubles_them_inside():
    text = sql.render("point_in_time", dialect="spark", param="?", entities="_fs_entities",
                      entity_columns=["k", "se`lect"], timestamp="ts", views=VIEWS, match_columns=False, ordered=True)
    assert "`order`" in text and "`se``lect`" in text and '"order"' not in text
    assert "make_dt_interval(0, 0, 0, 60)" in text


# Every template, with the context its callers give it: each dialect must render each one.
TEMPLATES = {
    "current_rows": dict(join_keys=["k"], event="ts", created="c", features=["f"], relation="r", after_watermark=True),
    "entity_spine": dict(keys=["k"], relations=["r1", "r2"]),
    "feature_stats": dict(relation="r", event="ts", numeric=["x"], categorical=["y"], quantiles=[0.5], bounded=True),
    "relation_probe": dict(probe="key_stats", relation="r", keys=["a", "b"]),
    "replace_table": dict(relation="r", query="select 1"),
    "stats_history": dict(action="create", table="h"),
    "user_query": dict(query="select 1 as k", columns=[("k", "utc")], limit_zero=False),
    "value_counts": dict(relation="r", event="ts", feature="f", edges=[1, 2], bounded=True, top=3),
    "view_probe": dict(probe="deciles", relation="r", event="ts", feature="f"),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_every_template_renders_in_every_dialect(template, dialect):
    text = sql.render(template, dialect=dialect, param="?", **TEMPLATES[template])
    assert text.strip()


def test_an_engine_without_a_dialect_fails_instead_of_getting_another_engines_sql():
    with pytest.raises(sql.DialectError, match="no SQL dialect 'snowflake'"):
        sql.render("feature_stats", dialect="snowflake", param="?", **TEMPLATES["feature_stats"])
    with pytest.raises(sql.DialectError, match="'snowflake'"):
        sql.render("point_in_time", dialect="snowflake", param="?", entities="e", entity_columns=["k"],
                   timestamp="ts", views=VIEWS, match_columns=False, ordered=True, quote=None)


def test_a_dialect_missing_a_piece_names_it():
    with pytest.raises(sql.DialectError, match="no SQL piece 'copy_csv'"):
        sql.piece("duckdb", "copy_csv", "t")


def test_a_template_missing_its_own_argument_is_not_blamed_on_the_dialect():
    import jinja2

    context = dict(TEMPLATES["feature_stats"])
    del context["event"]
    with pytest.raises(jinja2.UndefinedError) as caught:
        sql.render("feature_stats", dialect="spark", param="?", **context)
    assert not isinstance(caught.value, sql.DialectError)


def test_the_point_in_time_sql_names_no_engine_outside_its_interval_piece():
    """The one place point_in_time.sql branches on the engine is _pit_seconds."""
    text = (Path(sql.__file__).parent / "point_in_time.sql").read_text()
    body = text.split("{% macro _pit_seconds")[0] + text.split("{% macro _pit_seconds")[1].split("{%- endmacro %}", 1)[1]
    assert "dialect ==" not in body and "dialect in" not in body


ESCAPES = [
    "select 1 as k) as q; drop table main.store_features; select * from (select 1 as k",
    "select 1; drop table t",
    "copy (select 'x') to 'x.csv'",
    "attach 'other.duckdb' as o",
    "drop table t",
    "insert into t values (1)",
    "",
]


@pytest.mark.parametrize("query", ESCAPES)
def test_duckdb_accepts_exactly_one_select(query):
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse({"path": ":memory:"}, base_dir=None)
    with pytest.raises(UserQueryError):
        warehouse.check_user_query(query)
    warehouse.check_user_query("with x as (select 1 as k) select * from x")


@pytest.mark.parametrize("query", ESCAPES[:2] + [
    "with d as (delete from t returning *) select * from d",
    "select * into new_table from t",
    "select * from t for update",
    "select pg_read_file('/etc/passwd')",
    "select * from lo_import('/etc/passwd')",
    "copy t to '/tmp/x'",
])
def test_postgres_accepts_exactly_one_read_only_select(query):
    with pytest.raises(UserQueryError):
        check_query(query)
    check_query("with x as (select 1 as k) select * from x where k > 0")
    check_query("select pg_read_file('/etc/hostname')", allow_file_access=True)


def test_build_id_of_a_materialization_or_empty_without_one():
    """Sync and exports read a view's build id through one Warehouse method."""
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    with DuckDBWarehouse({"path": ":memory:"}, base_dir=None, read_only=False) as warehouse:
        assert warehouse.build_id('"main"."orders__build"') == ""  # built before 0.2: no table
        warehouse.execute("create table orders__build (build_id varchar)")
        assert warehouse.build_id('"main"."orders__build"') == ""  # no row yet
        warehouse.execute("insert into orders__build values ('b-42')")
        assert warehouse.build_id('"main"."orders__build"') == "b-42"
