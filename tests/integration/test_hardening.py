"""User SQL cannot escape, readers do not lock out readers, a writer's lock is named.

Injection attempts go through the real export path on DuckDB and PostgreSQL; afterwards every
table is still there with its rows, and no file was written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from featurestore import FeatureStore, FeatureStoreError
from featurestore.warehouse import UserQueryError
from jaffle_data import JaffleSize

BIN = Path(sys.executable).parent
FEATURES = ["store_features:orders_7d"]


def attacks(marker: Path, schema: str) -> list[str]:
    attacks = [
        "select store_id, cast('2026-01-01' as timestamp) as event_timestamp from store_features) as q; "
        "drop table store_features; select * from (select 1",
        "select 1 as store_id; drop table store_features",
        f"copy (select 'x') to '{marker}'",
        f"attach '{marker}' as other",
        "select * from read_csv('/etc/passwd')",
        "select * from '/etc/hostname'",
        "with d as (delete from store_features returning *) select * from d",
        "select pg_read_file('/etc/passwd') as store_id, now() as event_timestamp",
        "select * into stolen from store_features",
        "select store_id, feature_ts as event_timestamp from store_features -- ) as q; drop table x",
    ]
    return [attack.replace("store_features", f"{schema}.store_features").replace("into stolen", f"into {schema}.stolen")
            for attack in attacks]


def table_counts(store: FeatureStore) -> dict:
    with store.connect() as warehouse:
        return {view: warehouse.fetch_all(f"select count(*) from {store.registry.view(view).relation_name}")[0][0]
                for view in store.registry.feature_views}


@pytest.fixture(scope="module")
def pg_store(built_demo, postgres_server):
    env = {**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "hardening", "FEATURESTORE_RAW_SCHEMA": "raw_hardening"}
    project = built_demo(JaffleSize(customers=30, days=20), seed=3, target="postgres", name="pghard", **env)
    yield FeatureStore(project, "postgres", env=env)
    # its own raw schema, so other projects on this server never find views depending on theirs
    with FeatureStore(project, "postgres", env=env).connect(read_only=False) as warehouse:
        warehouse.execute("drop schema hardening cascade")
        warehouse.execute("drop schema raw_hardening cascade")


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_entity_queries_cannot_write_or_read_files(engine, demo_project, tmp_path, request):
    store = FeatureStore(demo_project) if engine == "duckdb" else request.getfixturevalue("pg_store")
    before = table_counts(store)
    marker = tmp_path / "written_by_an_attack.csv"
    schema = "main" if engine == "duckdb" else "hardening"
    refused = 0
    for attack in attacks(marker, schema):
        try:
            store.get_historical_features(attack, FEATURES).to_parquet(tmp_path / "out.parquet")
        except FeatureStoreError as exc:
            refused += 1
            assert "entity" in str(exc).lower(), (attack, exc)
    assert refused == len(attacks(marker, schema)) - 1  # the last is a legitimate query with a trailing comment
    assert table_counts(store) == before
    assert not marker.exists()
    with store.connect() as warehouse:
        assert warehouse.fetch_all(
            "select count(*) from information_schema.tables where table_name = 'stolen'")[0][0] == 0
    # opting in lets a query read files through DuckDB
    if engine == "duckdb":
        entities = tmp_path / "keys.csv"
        entities.write_text("store_id,event_timestamp\nx,2026-01-01\n")
        query = f"select store_id, cast(event_timestamp as timestamp) as event_timestamp from read_csv('{entities}')"
        with pytest.raises(FeatureStoreError, match=r"read_csv\(\).*allow_file_access"):
            store.get_historical_features(query, FEATURES).to_arrow()
        assert store.get_historical_features(query, FEATURES, allow_file_access=True).to_arrow().num_rows == 1


def refusal(store: FeatureStore, query: str, tmp_path: Path, **options) -> str:
    """The message an export of `query` is refused with; nothing is written."""
    out = tmp_path / "refused.parquet"
    with pytest.raises(UserQueryError) as refused:
        store.get_historical_features(query, FEATURES, **options).to_parquet(out)
    assert not out.exists()
    return str(refused.value)


def test_a_postgres_entity_query_cannot_terminate_another_session(pg_store, postgres_server, tmp_path):
    """`pg_terminate_backend` (in the select list, in a subquery, or over pg_stat_activity) is not on
    the allow-list: refused naming it, and the other client's session is still alive afterwards."""
    import psycopg2

    other = psycopg2.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
                             dbname=postgres_server.database)
    try:
        with other.cursor() as cursor:
            cursor.execute("select pg_backend_pid()")
            pid = cursor.fetchone()[0]
        row = "'s1' as store_id, cast('2026-01-01' as timestamp) as event_timestamp"
        for query, culprit in [
            (f"select {row}, pg_terminate_backend({pid}) as killed", "pg_terminate_backend()"),
            (f"select {row} from (select pg_terminate_backend({pid}) as killed) as q", "pg_terminate_backend()"),
            (f"select {row}, pg_terminate_backend(pid) as killed from pg_stat_activity where pid = {pid}",
             "pg_stat_activity"),
            (f"select {row}, pg_reload_conf() as reloaded", "pg_reload_conf()"),
            ("select current_setting('data_directory') as store_id, now() as event_timestamp", "current_setting()"),
        ]:
            assert culprit in refusal(pg_store, query, tmp_path)
        with other.cursor() as cursor:  # the session answers: it was not terminated
            cursor.execute("select 1")
            assert cursor.fetchone() == (1,)
    finally:
        other.close()


def test_duckdb_entity_queries_cannot_read_settings_or_run_other_queries(demo_project, tmp_path):
    store = FeatureStore(demo_project)
    row = "'s1' as store_id, cast('2026-01-01' as timestamp) as event_timestamp"
    for query, culprit in [
        (f"select {row}, current_setting('threads') as threads", "current_setting()"),
        ("select name as store_id, cast('2026-01-01' as timestamp) as event_timestamp from duckdb_settings()",
         "duckdb_settings()"),
        ("select * from query('select ''s1'' as store_id, cast(''2026-01-01'' as timestamp) as event_timestamp')",
         "query()"),
        (f"select {row} from read_csv('/etc/passwd')", "read_csv()"),
        (f"select {row} from information_schema.tables", "information_schema"),
    ]:
        assert culprit in refusal(store, query, tmp_path)
    # the CLI: one line naming the function, the exit code of bad input, no file
    out = tmp_path / "train.parquet"
    result = subprocess.run([str(BIN / "featurestore"), "export", "-p", str(demo_project), "-f", FEATURES[0],
                             "-e", f"select {row}, current_setting('threads') as threads", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "current_setting()" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


# A recursive CTE (a million steps), then a trillion pairs of it: hours of work, without memory
LONG_QUERY = ("with recursive r(n) as (select 1 union all select n + 1 from r where n < 1000000) "
              "select 's1' as store_id, cast('2026-01-01' as timestamp) as event_timestamp "
              "from r as a cross join r as b where a.n + b.n < 0")


def test_a_duckdb_entity_query_past_the_time_limit_is_stopped_and_says_so(demo_project, tmp_path):
    """Through the CLI, the limit set in the environment: stopped at 1 s, the message says the
    limit and how to lift it (the old code ran on for hours: the subprocess's timeout fails it)."""
    out = tmp_path / "train.parquet"
    result = subprocess.run([str(BIN / "featurestore"), "export", "-p", str(demo_project), "-f", FEATURES[0],
                             "-e", LONG_QUERY, "--out", str(out)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FEATURESTORE_QUERY_TIMEOUT": "1"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "limit of 1 s" in result.stderr and "FEATURESTORE_QUERY_TIMEOUT" in result.stderr
    assert not out.exists()
    # the connection is not left interrupted: the next query of the same store runs
    store = FeatureStore(demo_project, query_timeout=1)
    assert "limit of 1 s" in refusal(store, LONG_QUERY, tmp_path)
    assert store.get_historical_features("select 's1' as store_id, cast('2026-01-01' as timestamp) as "
                                         "event_timestamp", FEATURES).to_arrow().num_rows == 1


def test_a_postgres_entity_query_past_the_time_limit_is_stopped_in_the_server(pg_store, postgres_server, tmp_path):
    store = FeatureStore(pg_store.project.project_dir, "postgres", env=pg_store.project.env, query_timeout=1)
    assert "limit of 1 s" in refusal(store, LONG_QUERY, tmp_path)
    with store.connect() as warehouse:  # no backend still runs it
        assert warehouse.fetch_all("select count(*) from pg_stat_activity where query like %s and pid <> "
                                   "pg_backend_pid()", ["%cross join r as b%"])[0][0] == 0


def test_a_time_spine_export_on_postgres_passes_the_check(pg_store):
    """The spine's SQL is ours, with psycopg2's %s markers: checked as bind parameters, not refused
    as a parse error (it was, before the check knew about them)."""
    from datetime import datetime

    table = pg_store.get_historical_features(features=FEATURES, start=datetime(2026, 1, 1), end=datetime(2026, 1, 3),
                                             every="1d").to_arrow()
    stores = len({row for row in table.column("store_id").to_pylist()})
    assert stores > 0 and table.num_rows == 3 * stores


def test_postgres_entity_queries_run_as_the_configured_role(pg_store, tmp_path):
    """FEATURESTORE_PG_ENTITY_ROLE: the query runs as that role (SET LOCAL ROLE), so it reads only
    what the role was granted; a role that does not exist is named."""
    env = dict(pg_store.project.env)
    with pg_store.connect(read_only=False) as warehouse:
        for statement in ["drop schema if exists hardening_secret cascade", "create schema hardening_secret",
                          "create table hardening_secret.salaries as select 's1' as store_id, "
                          "cast('2026-01-01' as timestamp) as event_timestamp",
                          "drop role if exists featurestore_reader", "create role featurestore_reader nologin",
                          "grant usage on schema hardening to featurestore_reader",
                          "grant select on all tables in schema hardening to featurestore_reader"]:
            warehouse.execute(statement)
    try:
        allowed = "select store_id, feature_ts as event_timestamp from hardening.store_features"
        secret = "select store_id, event_timestamp from hardening_secret.salaries"
        assert pg_store.get_historical_features(secret, FEATURES).to_arrow().num_rows == 1  # as the dbt user
        reader = FeatureStore(pg_store.project.project_dir, "postgres",
                              env={**env, "FEATURESTORE_PG_ENTITY_ROLE": "featurestore_reader"})
        assert reader.get_historical_features(allowed, FEATURES).to_arrow().num_rows > 0
        with pytest.raises(FeatureStoreError, match="permission denied"):
            reader.get_historical_features(secret, FEATURES).to_arrow()
        missing = FeatureStore(pg_store.project.project_dir, "postgres",
                               env={**env, "FEATURESTORE_PG_ENTITY_ROLE": "no_such_reader"})
        with pytest.raises(FeatureStoreError, match="'no_such_reader'.*does not exist.*README"):
            missing.get_historical_features(allowed, FEATURES).to_arrow()
    finally:
        with pg_store.connect(read_only=False) as warehouse:
            warehouse.execute("drop schema hardening_secret cascade")
            warehouse.execute("drop owned by featurestore_reader")
            warehouse.execute("drop role featurestore_reader")


def test_two_syncs_and_an_export_run_at_once_on_duckdb(tmp_path, built_demo, moto_server):
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "conc3_"}
    project = built_demo(JaffleSize(customers=200, days=40), seed=9, **env)
    FeatureStore(project, env=env).registry  # parse once, so the three processes only read
    process_env = {**os.environ, **env}
    featurestore = str(BIN / "featurestore")
    commands = [[featurestore, "sync", "-p", str(project)], [featurestore, "sync", "-p", str(project)],
                [featurestore, "export", "-p", str(project), "-e", "main.churn_labels", "--timestamp-column",
                 "label_ts", "--service", "churn_model", "--out", str(tmp_path / "train.parquet")]]
    processes = [subprocess.Popen(c, env=process_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "lock" not in err.lower()
    assert (tmp_path / "train.parquet").is_file()


@pytest.mark.dbt_compat
def test_a_dbt_build_holding_the_lock_is_waited_for_or_named(copied_demo):
    """A real `dbt run` holds DuckDB's write lock: a reader with a short timeout fails naming dbt's
    PID and command line; a reader with a longer one waits and then succeeds."""
    project = copied_demo()
    (project / "models" / "slow_model.sql").write_text(
        "{{ config(materialized='table') }}\n-- seconds of work, holding the write lock\nselect sum(i % 7) as s from range(4000000000) as t(i)\n")
    FeatureStore(project).registry  # parse first: the readers below only read
    writer = subprocess.Popen([str(BIN / "dbt"), "run", "--select", "slow_model"], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = []
        for line in writer.stdout:  # dbt says when the model starts; polling the file could race its open
            started.append(line)
            if "START sql table model" in line:
                break
        time.sleep(1.0)  # the model's statement is running: dbt-duckdb holds the write lock
        reader = [str(BIN / "featurestore"), "stats", "-p", str(project), "--no-save"]
        impatient = subprocess.run(reader, env={**os.environ, "FEATURESTORE_LOCK_TIMEOUT": "1"},
                                   capture_output=True, text=True, timeout=120)
        assert writer.poll() is None, "the dbt run ended before the reader tried:\n" + "".join(started)
        assert impatient.returncode == 1 and "Traceback" not in impatient.stderr, impatient.stderr
        assert f"PID {writer.pid}" in impatient.stderr and "dbt run" in impatient.stderr
        assert "locked for writing" in impatient.stderr and "waiting up to 1 s" in impatient.stderr
        # patient enough for a loaded machine, where the model's work takes minutes: it returns when
        # the lock is released, not at the timeout
        patient = subprocess.run(reader, env={**os.environ, "FEATURESTORE_LOCK_TIMEOUT": "900"},
                                 capture_output=True, text=True, timeout=1000)
        assert patient.returncode == 0, patient.stderr
        assert "waiting up to 900 s" in patient.stderr
    finally:
        writer.wait(timeout=1000)
    assert writer.returncode == 0
