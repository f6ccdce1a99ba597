"""The feature_view materialization and rolling_window macro against the brute-force oracles.

A separate dbt project installs this repository as a package. 240 randomized cases share one
table (case_id is part of the key), loaded in four batches with late rows, versions, exact
duplicates and NULLs; after every batch the incrementally maintained snapshot must equal the
oracle, and at the end equal a full refresh.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

import oracles
from conftest import FIXTURES, REPO, DuckDBTables, copy_project, project_env

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

N_CASES = 240
SEED = 20261125
EVENTS_DDL = """create or replace table {schema}.events (
    case_id integer, entity_id integer, ev timestamp, created timestamp, f_int integer, f_str varchar)"""
SPINE_DDL = "create or replace table {schema}.spine (case_id integer, entity_id integer, ev timestamp)"
SNAPSHOT_COLUMNS = ", ".join(oracles.EVENT_COLUMNS) + ", valid_from, valid_to, superseded_at"


def make_props_project(root: Path, target: str | None = None, **env):
    project = copy_project(FIXTURES / "snapshot_project", root)
    (project / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    dbt = project_env(project, target, **env)
    dbt.run("deps", "--quiet")
    return dbt


def run_snapshot_properties(dbt, tables, n_cases: int, seed: int, max_batches: int = 4):
    cases = oracles.generate_cases(n_cases, seed, max_batches)
    loaded: list[tuple] = []
    incremental = None
    for number, batch in enumerate(cases.batches):
        loaded += batch
        tables.load(EVENTS_DDL, "events", loaded)
        before = tables.table_id("events_view") if number else None
        dbt.run("run", "--select", "events_view", "--quiet")
        if number:  # the run was incremental: the table was changed in place, not rebuilt
            assert tables.table_id("events_view") == before
        got = tables.fetch(f"select {SNAPSHOT_COLUMNS} from {{schema}}.events_view")
        rejected = tables.fetch(f"select {', '.join(oracles.EVENT_COLUMNS)} from {{schema}}.events_view__rejected")
        expected, expected_rejected = oracles.snapshot(loaded)
        assert oracles.sort_rows(got) == oracles.sort_rows(expected)
        assert oracles.sort_rows(rejected) == oracles.sort_rows(expected_rejected)
        incremental = got

    dbt.run("run", "--select", "events_view", "--full-refresh", "--quiet")
    full = tables.fetch(f"select {SNAPSHOT_COLUMNS} from {{schema}}.events_view")
    assert oracles.sort_rows(full) == oracles.sort_rows(incremental)
    # the generated integrity tests pass on a correct table
    dbt.run("test", "--select", "events_view", "--quiet")
    return cases, loaded


def check_rolling(dbt, tables, cases, loaded):
    tables.load(SPINE_DDL, "spine", cases.spine)
    dbt.run("run", "--select", "rolling", "rolling_both", "--quiet")
    for model, closed in (("rolling", "right"), ("rolling_both", "both")):
        compare_rolling(tables, model, oracles.rolling(loaded, cases.spine, closed))
    # the two rules differ on these cases (events on a 15-minute grid hit window starts exactly)
    assert oracles.rolling(loaded, cases.spine, "right") != oracles.rolling(loaded, cases.spine, "both")


def compare_rolling(tables, model, expected):
    got = tables.fetch(f"""select case_id, entity_id, ev, n_2h, n_f_int_1d, sum_2h, avg_1d, min_1d, max_30m,
                                 days_since_all, last_at_2h, sum_all from {{schema}}.{model}""")
    got, expected = oracles.sort_rows(got), oracles.sort_rows(expected)
    assert len(got) == len(expected)
    for row, want in zip(got, expected):
        row = tuple(float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v for v in row)
        for value, wanted in zip(row, want):
            if isinstance(wanted, float):
                assert value is not None and math.isclose(value, wanted, rel_tol=1e-9), (row, want)
            else:
                assert value == wanted, (row, want)


@pytest.fixture(scope="module")
def props_duckdb(tmp_path_factory):
    dbt = make_props_project(tmp_path_factory.mktemp("props") / "project")
    return dbt, DuckDBTables(dbt.variables()["FEATURESTORE_DUCKDB_PATH"])


def test_snapshot_and_rolling_match_the_oracle_on_duckdb(props_duckdb):
    dbt, tables = props_duckdb
    cases, loaded = run_snapshot_properties(dbt, tables, N_CASES, SEED)
    assert sum(map(len, cases.batches)) > 1000  # the cases are not trivially small
    check_rolling(dbt, tables, cases, loaded)


def test_many_incremental_runs_match_the_oracle_on_duckdb(tmp_path_factory):
    """Eight batches: every run reads the touched keys' rows from the last event before their
    earliest new one onwards (the recomputed intervals need each row's successor) and deletes
    the changed rows by the row ids read in its own transaction, after earlier runs deleted and
    inserted rows of the same keys (DuckDB reuses the space of deleted rows on checkpoint)."""
    dbt = make_props_project(tmp_path_factory.mktemp("props_many") / "project")
    tables = DuckDBTables(dbt.variables()["FEATURESTORE_DUCKDB_PATH"])
    cases, _ = run_snapshot_properties(dbt, tables, n_cases=120, seed=20261204, max_batches=8)
    assert sum(1 for batch in cases.batches if batch) == 8


def test_a_column_named_rowid_keeps_the_incremental_exact_on_duckdb(tmp_path_factory):
    """A model column named rowid hides DuckDB's own row id, which an incremental run deletes
    the changed rows by: then it deletes them by the batch's bounds instead."""
    dbt = make_props_project(tmp_path_factory.mktemp("props_rowid") / "project")
    view = dbt.project_dir / "models" / "events_view.sql"
    view.write_text(view.read_text().replace("f_str from", 'f_str, f_int as "rowid" from'))
    tables = DuckDBTables(dbt.variables()["FEATURESTORE_DUCKDB_PATH"])
    run_snapshot_properties(dbt, tables, n_cases=60, seed=7)


def test_integrity_tests_fail_on_a_broken_table(props_duckdb):
    """The generated tests can fail: overlap two intervals and plant a rejected row."""
    dbt, tables = props_duckdb
    with duckdb.connect(tables.path) as con:
        con.execute("""update main.events_view set valid_to = valid_to + interval 1 minute
                       where valid_to is not null and valid_to > valid_from
                       and (case_id, entity_id, valid_from) in (
                           select case_id, entity_id, valid_from from main.events_view
                           where valid_to is not null and valid_to > valid_from limit 1)""")
    result = dbt.run("test", "--select", "events_view", "--quiet", raise_on_failure=False)
    failed = {r.name for r in result.results if r.status == "fail"}
    assert any("intervals_do_not_overlap" in name for name in failed), failed
    dbt.run("run", "--select", "events_view", "--full-refresh", "--quiet")


def check_future_rows(dbt, tables):
    """A row created in 2099 is set aside with its reason (not placed: it would take the
    incremental watermark past every row created until then); rows created later still arrive
    by the next incremental run, the row stays set aside once, and NULL keys keep theirs."""
    from datetime import datetime, timedelta

    now = datetime.utcnow().replace(microsecond=0)
    rows = [(1, 1, now - timedelta(days=1), now - timedelta(hours=2), 1, "a"),
            (1, 2, now - timedelta(days=1), datetime(2099, 1, 1), 2, "future"),
            (1, None, now - timedelta(days=1), now - timedelta(hours=2), 3, "no key")]
    tables.load(EVENTS_DDL, "events", rows)
    dbt.run("run", "--select", "events_view", "--full-refresh", "--quiet")
    reasons = "select entity_id, f_str, _fs_reason from {schema}.events_view__rejected order by f_str"
    set_aside = [(2, "future", "created timestamp after the build clock"),
                 (None, "no key", "a NULL join key, event timestamp or created timestamp")]
    assert tables.fetch(reasons) == set_aside
    before = tables.table_id("events_view")
    for entity in (3, 4):  # two incremental runs, each with a row created since the last
        # created a second before now, to the microsecond: after the last run's rows however fast it was
        # (whole seconds made two runs within one second stamp both rows alike), before this run's clock
        rows.append((1, entity, now, datetime.utcnow() - timedelta(seconds=1), entity, "later"))
        tables.load(EVENTS_DDL, "events", rows)
        dbt.run("run", "--select", "events_view", "--quiet")
        placed = tables.fetch("select entity_id, f_str from {schema}.events_view where valid_to is null order by 1")
        assert placed == [(1, "a"), *[(e, "later") for e in range(3, entity + 1)]]
        assert tables.fetch(reasons) == set_aside
    assert tables.table_id("events_view") == before  # incremental: changed in place


def test_a_row_created_in_the_future_is_set_aside_on_duckdb(props_duckdb):
    check_future_rows(*props_duckdb)
