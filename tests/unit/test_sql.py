"""SQL the package renders, and SQL users hand it: checked with the engines' own parsers, no server."""

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
    text = sql.render("user_query", query="select 1 as k -- trailing", columns=None, limit_zero=True)
    assert [s.type.name for s in duckdb.extract_statements(text)] == ["SELECT"]


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
