"""Spark in the shape of a cluster: a standalone master and two workers started from pyspark's
own jars (the `spark_cluster` fixture), so the export's tasks run in executors in other JVMs;
and the SDK's `method: connect` path through the Spark Connect server pyspark ships.

The point-in-time fixture project (test_spark.py's, 40 cases) is built with dbt by a driver on
the master and exported, against the oracle; then a Connect server on the same catalog (the
driver has exited, so its Derby metastore is free) serves the same export. Drivers run in
processes of their own (tests/spark_driver.py): this process may hold the local session of the
other Spark tests, and a process holds one SparkContext.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

import oracles
from conftest import require_spark
from spark_cluster import driver_env
from test_training import assert_matches_oracle

pytestmark = pytest.mark.cluster
DRIVER = Path(__file__).resolve().parents[1] / "spark_driver.py"
CASES, SEED = 40, 9090  # test_spark.py's point-in-time cases


def run_driver(command: str, request: dict, folder: Path) -> dict:
    """Run a driver program (spark_driver.py) and return its report."""
    path = folder / f"{command}.json"
    path.write_text(json.dumps(request))
    done = subprocess.run([sys.executable, str(DRIVER), command, str(path)], env={**os.environ, **driver_env()},
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{command} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cases():
    return oracles.generate_pit_cases(CASES, seed=SEED)


@pytest.fixture(scope="module")
def built_on_cluster(spark_cluster, moto_server, tmp_path_factory):
    """The project built and exported by a driver on the standalone master: its folder, its
    settings and the driver's report."""
    out = tmp_path_factory.mktemp("cluster-build")
    env = {"FEATURESTORE_SPARK_MASTER": spark_cluster.master_url, "FEATURESTORE_SPARK_SCHEMA": "training",
           "FEATURESTORE_SPARK_DIR": str(out / "spark"), "FEATURESTORE_SPARK_PARTITIONS": "2",
           "FEATURESTORE_DBT": "inprocess"}  # dbt in the driver's process, as in test_spark.py
    report = run_driver("build-export", {"out": str(out), "env": env, "cases": CASES, "seed": SEED,
                                         "dynamodb": moto_server}, out)
    return out, env, report


def read_export(folder: Path):
    """The Parquet files the executors wrote (a folder, not the driver's one file), in the
    entity rows' order (part-00000 first)."""
    assert sorted(folder.glob("part-*.parquet")), f"{folder} holds no part files"
    return ds.dataset(folder, format="parquet").to_table()


def test_the_export_on_a_standalone_cluster_runs_in_its_executors(spark_cluster, built_on_cluster, cases):
    out, _, report = built_on_cluster
    assert_matches_oracle(read_export(out / "export"), oracles.point_in_time(cases, knowledge_guard=True))

    # the driver's application was the master's, and its tasks ran in two executors in other JVMs
    assert report["master"] == spark_cluster.master_url
    state = spark_cluster.status()
    application = next(app for app in state["completedapps"] + state["activeapps"] if app["id"] == report["app_id"])
    assert application["cores"] == 2
    executors = {name: tasks for name, tasks in report["export_tasks"].items() if name != "driver"}
    assert len(executors) == 2 and all(tasks > 0 for tasks in executors.values()), report["export_tasks"]
    assert report["export_tasks"].get("driver", 0) == 0
    assert len(report["executor_pids"]) == 2
    assert not set(report["executor_pids"]) & {report["driver_pid"], report["driver_jvm_pid"]}
    # Python tasks run by the driver's interpreter, not the first python3 on the workers' PATH
    assert report["python_on_executors"] == [sys.executable]
    assert not set(report["python_worker_pids"]) & {report["driver_pid"]}
    # the online sync's bulk load ran in the executors: every current row in the new table, readable
    synced = report["synced"]
    assert synced["path"] == "bulk, from the engine's workers" and synced["table"] == "cluster_place_features.g1"
    assert synced["written"] == synced["rows_read"] == synced["keys"] > 0, synced
    assert synced["found"] == synced["keyed"] > 0, synced  # (a NULL join key is never found, as on every path)
    sync_executors = {name: tasks for name, tasks in synced["sync_tasks"].items() if name != "driver"}
    assert sync_executors and all(tasks > 0 for tasks in sync_executors.values()), synced["sync_tasks"]
    assert synced["sync_tasks"].get("driver", 0) == 0
    # a process that runs Spark in-process cannot also open a Spark Connect session: said in one line
    assert report["other_session"].startswith("This process already runs Spark in-process")


def test_the_sdk_exports_through_a_spark_connect_server(spark_cluster, built_on_cluster, cases, tmp_path):
    """`method: connect` against pyspark's Connect server, its sessions in New York time: the
    same training set as the session method, the entity rows given as a query too, and the
    entity queries that are not one SELECT refused before anything runs."""
    require_spark(connect=True)
    built, env, _ = built_on_cluster
    with spark_cluster.connect_server(tmp_path / "connect", spark_dir=env["FEATURESTORE_SPARK_DIR"],
                                      **{"spark.sql.session.timeZone": "America/New_York"}) as server:
        report = run_driver("connect-export", {
            "out": str(tmp_path), "project": str(built / "project"), "cases": CASES, "seed": SEED,
            "env": {"FEATURESTORE_SPARK_CONNECT": server.url, "FEATURESTORE_SPARK_SCHEMA": "training"}}, tmp_path)
    assert report["session"] == "pyspark.sql.connect.session"
    through_connect = read_export(tmp_path / "export")
    assert through_connect.to_pylist() == read_export(built / "export").to_pylist()  # the session method's
    assert_matches_oracle(through_connect, oracles.point_in_time(cases, knowledge_guard=True))
    query = [dict(row, event_timestamp=row["event_timestamp"].replace(tzinfo=None))
             for row in read_export(tmp_path / "query").to_pylist()]
    assert sorted(map(repr, query)) == sorted(map(repr, oracles.point_in_time(cases, knowledge_guard=False)))

    refusals = report["refusals"]
    assert all(error and "entity" in error.lower() for error in refusals["errors"].values()), refusals["errors"]
    assert refusals["counts"] == [len(cases.rows["thing_features"]), len(cases.entities)]  # nothing written, dropped
    assert refusals["made"] == 0 and refusals["ansi"] == "true"
    assert report["other_session"].startswith("This process already runs Spark through Spark Connect")
