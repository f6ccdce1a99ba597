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


# (engine, entity query, what the refusal names): power the query would have if it ran
POWER = [
    ("postgres", "select pg_terminate_backend(pid) as k, now() as ts from pg_stat_activity", "pg_stat_activity"),
    ("postgres", "select pg_terminate_backend(42) as k, now() as ts", "pg_terminate_backend()"),
    ("postgres", "select 1 as k, now() as ts from (select pg_cancel_backend(1)) as q", "pg_cancel_backend()"),
    ("postgres", "select pg_reload_conf() as k", "pg_reload_conf()"),
    ("postgres", "select current_setting('data_directory') as k", "current_setting()"),
    ("postgres", "select set_config('work_mem', '1TB', false) as k", "set_config()"),
    ("postgres", 'select "current_setting"(\'data_directory\') as k', "current_setting()"),
    ("postgres", "select pg_catalog.current_setting('data_directory') as k", "pg_catalog.current_setting()"),
    ("postgres", "select * from dblink('host=x', 'select 1') as t(k int)", "dblink()"),
    ("postgres", "select lo_export(1, '/tmp/x') as k", "lo_export()"),
    ("postgres", "select pg_sleep(1000) as k", "pg_sleep()"),
    ("postgres", "select nextval('s') as k", "nextval()"),
    ("postgres", "select upper(current_user) as k", "current_user"),
    ("postgres", "select user as k", "user"),
    ("postgres", "select pid as k from pg_stat_activity", "pg_stat_activity"),
    ("postgres", "select rolname as k from pg_catalog.pg_roles", "pg_catalog"),
    ("postgres", "select table_name as k from information_schema.tables", "information_schema"),
    ("postgres", "with x as (select 1 as k) select k from x where k in (select pg_terminate_backend(1)::int)",
     "pg_terminate_backend()"),
    ("duckdb", "select current_setting('threads') as k", "current_setting()"),
    ("duckdb", "select * from duckdb_settings()", "duckdb_settings()"),
    ("duckdb", "select * from query('select 42 as k')", "query()"),
    ("duckdb", "select * from query_table('t')", "query_table()"),
    ("duckdb", "select * from read_csv('/etc/passwd')", "read_csv()"),
    ("duckdb", "select getvariable('x') as k", "getvariable()"),
    ("duckdb", "select 'threads'.current_setting() as k", "current_setting()"),
    ("duckdb", "select * from duckdb_tables", "duckdb_tables"),
    ("duckdb", "select * from information_schema.tables", "information_schema"),
    ("duckdb", "select * from pragma_database_size()", "pragma_database_size()"),
    ("duckdb", "select * from glob('/etc/*')", "glob()"),
    ("spark", "select reflect('java.lang.Thread', 'sleep', 100000) as k", "reflect()"),
    ("spark", "select java_method('java.lang.System', 'exit', 1) as k", "java_method()"),
    ("spark", "select current_user() as k", "current_user()"),
    ("spark", "select * from system.information_schema.tables", "information_schema"),
    ("spark", "select transform(a) using 'cat' as (b) from t", "QUERYTRANSFORM"),  # runs a program
    ("spark", "with x as (select transform(a) using 'sh -c id' as (b) from t) select * from x", "QUERYTRANSFORM"),
]


def check_entity_query(engine: str, query: str, allow_file_access: bool = False, parameters=()) -> None:
    """The engine's whole check (its parser, then the allow-list); Spark's allow-list alone (no JVM here)."""
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    if engine == "duckdb":
        warehouse = DuckDBWarehouse({"path": ":memory:"}, base_dir=None, allow_file_access=allow_file_access)
        warehouse.check_user_query(query, *([parameters] if parameters else []))
    elif engine == "postgres":
        check_query(query, allow_file_access, **({"bound": True} if parameters else {}))
    else:
        from featurestore.warehouse import allowlist

        allowlist.check(query, engine, allow_file_access)


@pytest.mark.parametrize("engine,query,culprit", POWER)
def test_entity_queries_call_only_allowed_functions_and_read_no_system_relation(engine, query, culprit):
    with pytest.raises(UserQueryError) as refused:
        check_entity_query(engine, query)
    assert culprit in str(refused.value)
    assert refused.value.status == 400  # the caller's mistake


LEGIT = [
    "select * from main.churn_labels order by customer_id, label_ts",
    "with x as (select 1 as k) select * from x where k > 0",
    "select customer_id, cast(label_ts as timestamp) as event_timestamp, coalesce(label, 0) as label "
    "from main.churn_labels as l join main.customers as c using (customer_id) where label_ts >= date '2026-01-01'",
    "select customer_id, date_trunc('day', label_ts) as event_timestamp, extract(year from label_ts) as y, "
    "row_number() over (partition by customer_id order by label_ts desc) as rn, "
    "count(*) over (partition by customer_id) as n, lag(label) over (order by label_ts) as previous "
    "from main.churn_labels",
    "select customer_id, max(label_ts) as event_timestamp from main.churn_labels group by customer_id "
    "having count(*) > 1 union all select customer_id, min(label_ts) from main.churn_labels group by customer_id",
    "select k, now() - interval '1 day' as event_timestamp, case when k > 1 then 'a' else 'b' end as c, "
    "upper(trim(s)) as u, round(abs(x), 2) as r, greatest(a, b) as g from main.t where k in (select k from main.u)",
    "with recursive r(n) as (select 1 union all select n + 1 from r where n < 10) select n as k from r",
    "select store_id, feature_ts as event_timestamp from store_features -- ) as q; drop table x",
]


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_entity_queries_with_joins_ctes_dates_casts_and_windows_pass(engine):
    for query in LEGIT:
        check_entity_query(engine, query)
    native = {"duckdb": "select k, strftime(ts, '%Y') as y, ts::date as d, date_diff('day', a, b) as n, "
                        "epoch(ts) as e from main.t qualify row_number() over (partition by k) = 1",
              "postgres": "select k, ts::date as d, to_char(ts, 'YYYY') as y, ts at time zone 'UTC' as u, "
                          "extract(epoch from ts)::bigint as e, substring(s from 1 for 2) as p from main.t",
              "spark": "select k, date_add(ts, 1) as d, datediff(a, b) as n, date_format(ts, 'y') as y, "
                       "if(k > 1, 'a', 'b') as c, nvl(a, 0) as z from main.t"}
    check_entity_query(engine, native[engine])


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_the_sql_featurestore_runs_as_an_entity_query_passes_the_allow_list(engine):
    """Entity rows without a frame (the time spine) and a relation name are checked like a user's query."""
    param = "%s" if engine == "postgres" else "?"
    spine = sql.render("entity_spine", dialect=engine, param=param, keys=["customer_id"],
                       relations=['"main"."customer_features"'])
    rows = sql.render("relation_probe", dialect=engine, param=param, probe="rows", parts=["main", "churn_labels"])
    check_entity_query(engine, spine, parameters=("2026-01-01", "2026-01-02", 3600))
    check_entity_query(engine, rows)
    with pytest.raises(UserQueryError, match="information_schema"):
        check_entity_query(engine, sql.render("relation_probe", dialect=engine, param=param, probe="rows",
                                              parts=["information_schema", "tables"]))


@pytest.mark.parametrize("query,culprit", [(query, culprit) for engine, query, culprit in POWER if engine == "duckdb"])
def test_duckdbs_own_parse_tree_is_checked_too(query, culprit):
    """The allow-list on DuckDB's parse tree (what the engine will call), not only on sqlglot's."""
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    with pytest.raises(UserQueryError) as refused:
        DuckDBWarehouse({"path": ":memory:"}, base_dir=None)._check_parse_tree(query)
    assert culprit.removeprefix("'threads'.") in str(refused.value)
    warehouse = DuckDBWarehouse({"path": ":memory:"}, base_dir=None)
    for query in LEGIT:
        warehouse._check_parse_tree(query)
        assert warehouse.fetch_all("select 42") == [(42,)]  # the check left no result open on the connection


@pytest.mark.parametrize("engine,query", [("duckdb", "select * from read_csv('keys.csv')"),
                                          ("postgres", "select pg_read_file('/etc/hostname') as k")])
def test_reading_files_is_allowed_only_when_the_user_opts_in(engine, query):
    with pytest.raises(UserQueryError, match="allow_file_access"):
        check_entity_query(engine, query)
    check_entity_query(engine, query, allow_file_access=True)


def test_build_id_of_a_materialization_or_empty_without_one():
    """Sync and exports read a view's build id through one Warehouse method."""
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    with DuckDBWarehouse({"path": ":memory:"}, base_dir=None, read_only=False) as warehouse:
        assert warehouse.build_id('"main"."orders__build"') == ""  # built before 0.2: no table
        warehouse.execute("create table orders__build (build_id varchar)")
        assert warehouse.build_id('"main"."orders__build"') == ""  # no row yet
        warehouse.execute("insert into orders__build values ('b-42')")
        assert warehouse.build_id('"main"."orders__build"') == "b-42"


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_a_relation_given_by_name_is_checked_without_the_parser(engine):
    """`select * from <quoted name>` (an entity relation given by name) has its parts checked as
    sqlglot's tree gives them, without loading sqlglot's dialect (a fifth of a small export);
    anything else, however close, goes to the parser."""
    from featurestore.warehouse import allowlist

    param = "%s" if engine == "postgres" else "?"
    rows = lambda *parts: sql.render("relation_probe", dialect=engine, param=param, probe="rows", parts=list(parts))  # noqa: E731
    assert allowlist._relation_read(rows("main", 'od"d.name'), engine) == ["main", 'od"d.name']
    assert allowlist._relation_read(rows("cat", "main", "t"), engine) == ["cat", "main", "t"]
    allowlist.check(rows("main", "churn_labels"), engine)
    systems = {"duckdb": [("duckdb_settings",), ("pg_catalog", "pg_roles")], "postgres": [("pg_catalog", "pg_roles")],
               "spark": [("system", "information_schema", "tables")]}
    for system in [("information_schema", "tables"), *systems[engine]]:
        with pytest.raises(UserQueryError, match=system[0]):
            allowlist.check(rows(*system), engine)
    close = [rows("main", "t").strip() + suffix for suffix in (" limit 1", " where 1 = 1", ", main.u", " -- x")]
    close += ["select *, 1 from " + rows("main", "t").split(" from ")[1], "select * from main.t"]
    assert all(allowlist._relation_read(query, engine) is None for query in close)


def test_a_relation_name_loads_no_sqlglot_dialect():
    """The parser's dialect is loaded only for a query that needs it (checked in a fresh process)."""
    import subprocess
    import sys

    code = ("import sys; from featurestore import sql; from featurestore.warehouse import allowlist; "
            "allowlist.check(sql.render('relation_probe', dialect='duckdb', probe='rows', parts=['main', 't']), 'duckdb'); "
            "print('sqlglot.dialects.duckdb' in sys.modules); "
            "allowlist.check('select k from main.t', 'duckdb'); print('sqlglot.dialects.duckdb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["False", "True"]


def test_the_template_cache_is_no_cache_where_it_cannot_be_used(tmp_path):
    """Compiled templates are kept between processes (jinja2's bytecode cache); a folder that
    cannot be written, or a damaged file in it, leaves the template compiled as without one."""
    import jinja2

    from featurestore.sql import _TemplateCache

    def render(cache) -> str:
        environment = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)
        return environment.get_template("t").render()

    assert render(_TemplateCache(str(tmp_path / "missing"))) == "2"  # writing fails: no cache
    assert render(_TemplateCache(str(tmp_path))) == "2"
    [cached] = tmp_path.glob("__jinja2_*.cache")
    assert render(_TemplateCache(str(tmp_path))) == "2"  # read back
    cached.write_bytes(cached.read_bytes()[:20])  # cut short
    assert render(_TemplateCache(str(tmp_path))) == "2"


def test_duckdb_checks_a_query_once_per_connection_and_never_remembers_a_refusal():
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse({"path": ":memory:"}, base_dir=None)
    for _ in range(2):
        with pytest.raises(UserQueryError, match="duckdb_settings"):
            warehouse.check_user_query("select * from duckdb_settings()")
    assert not warehouse._checked_queries
    warehouse.check_user_query("select 1 as k")
    assert warehouse._checked_queries == {"select 1 as k"}


def test_the_template_cache_files_are_named_by_what_shapes_the_compiled_code(monkeypatch):
    """jinja2 keys a cached template by its source only: the file name carries jinja2's version,
    this package's, the environment's options and how its filters are called, so a change of
    any of them is a miss."""
    import importlib.metadata

    import featurestore.sql as sql

    pattern = sql._template_cache().pattern
    assert sql._template_cache().pattern == pattern
    monkeypatch.setitem(sql._OPTIONS, "trim_blocks", False)
    assert sql._template_cache().pattern != pattern
    monkeypatch.setitem(sql._OPTIONS, "trim_blocks", True)
    monkeypatch.setitem(sql._FILTERS, "ident", lambda name: name)  # no longer passed the context
    assert sql._template_cache().pattern != pattern
    monkeypatch.undo()
    assert sql._template_cache().pattern == pattern
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1" if name == "jinja2" else real_version(name))
    assert sql._template_cache().pattern != pattern
