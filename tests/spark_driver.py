"""The driver programs of the Spark cluster tests, each run in a process of its own: a process
holds one SparkContext, and pyspark cannot mix a classic session with a Spark Connect one, while
the test process may already hold the local session of the other Spark tests.

    python spark_driver.py build-export REQUEST    # build the point-in-time project, export
    python spark_driver.py connect-export REQUEST  # the export again, through Spark Connect

REQUEST is a JSON file: {"out": folder, "cases": n, "seed": s (oracles.generate_pit_cases),
"env": the project's settings (FEATURESTORE_SPARK_MASTER ... or FEATURESTORE_SPARK_CONNECT),
and for connect-export "project": the project build-export made}. Both export the cases'
entity rows with the knowledge guard from the executors (OUT/export/: to_parquet);
connect-export also as a query, without the guard (OUT/query/). The last line of stdout is a JSON report.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS), str(TESTS / "integration")]

import oracles  # noqa: E402
from test_training import FEATURES, entity_frame  # noqa: E402


# Entity queries that must be refused before anything runs (Spark Connect runs a command as
# soon as it has parsed it): what test_spark.py refuses on the local session, on this schema.
HOSTILE_QUERIES = [
    "select 1 as k; drop table training.thing_features",
    "insert into training.entity_rows select * from training.entity_rows",
    "create table training.x as select 1 as k",
    "drop table training.thing_features",
    "with x as (select 1 as k) insert into training.entity_rows select * from x",
    "select * from parquet.`/etc`",
    "set spark.sql.ansi.enabled = false",
    "",
]


def _refusals(store) -> dict:
    """What each hostile query gets, and whether anything changed."""
    from featurestore.errors import FeatureStoreError

    errors = {}
    for query in HOSTILE_QUERIES:
        try:
            store.get_historical_features(query, FEATURES, full_feature_names=True).to_arrow()
            errors[query] = None
        except FeatureStoreError as exc:
            errors[query] = str(exc)
    with store.connect() as warehouse:
        counts = warehouse.fetch_all("select (select count(*) from training.thing_features), "
                                     "(select count(*) from training.entity_rows)")[0]
        made = warehouse.fetch_all("show tables in training like 'x'")
        ansi = warehouse.session.conf.get("spark.sql.ansi.enabled")
    return {"errors": errors, "counts": list(counts), "made": len(made), "ansi": ansi}


def _other_kind_of_session(project: str, target: str, env: dict) -> str:
    """The error a target of the other method gets in this process."""
    from featurestore import FeatureStore
    from featurestore.errors import FeatureStoreError

    try:
        FeatureStore(project, target, env=env).connect().close()
    except FeatureStoreError as exc:
        return str(exc)
    return ""


def _export(store, cases, out: Path, query: bool) -> None:
    """The cases' training set with the knowledge guard, written by the executors (to_parquet),
    and without it from the entity rows as a query (`query`). test_spark.py checks the rest of
    the oracle on the local session: each export here costs 5-25 s (fresh executor JVMs)."""
    frame = entity_frame(cases)
    store.get_historical_features(frame, FEATURES, full_feature_names=True, knowledge_guard=True) \
        .to_parquet(out / "export")
    if query:
        with store.connect(read_only=False) as warehouse:
            warehouse.load_arrow("training.entity_rows", pa.Table.from_pandas(frame))
        store.get_historical_features("select * from training.entity_rows", FEATURES, full_feature_names=True) \
            .to_parquet(out / "query")


def _tasks_by_executor(context) -> dict[str, int]:
    """Tasks each executor has run so far (the application's status store; its web UI is off)."""
    executors = context._jsc.sc().statusStore().executorList(True)
    return {summary.id(): summary.totalTasks() for summary in (executors.apply(i) for i in range(executors.size()))}


def build_export(request: dict) -> dict:
    """Build the project with dbt in this process on the master the settings name
    (FEATURESTORE_SPARK_MASTER), then export; report where the export's tasks ran."""
    from pyspark import SparkContext

    from featurestore import FeatureStore
    from spark_cluster import executor_pids
    from test_spark import build_spark_training_project

    out, env = Path(request["out"]), request["env"]
    cases = oracles.generate_pit_cases(request["cases"], seed=request["seed"])
    started = time.monotonic()
    store, _ = build_spark_training_project(out / "project", cases, env)
    built = time.monotonic()
    context = SparkContext._active_spark_context  # dbt-spark's session, which the SDK shares
    before = _tasks_by_executor(context)
    _export(store, cases, out, query=False)
    after = _tasks_by_executor(context)
    seconds = {"build": built - started, "export": time.monotonic() - built}
    # the online sync's bulk load, written by the executors (mapInArrow, a DynamoDB client per task)
    synced = {}
    if request.get("dynamodb"):
        store = FeatureStore(store.project.project_dir, "spark",
                             env={**store.project.env, "FEATURESTORE_DYNAMODB_ENDPOINT": request["dynamodb"],
                                  "FEATURESTORE_TABLE_PREFIX": "cluster_"})
        before_sync = _tasks_by_executor(context)
        result = store.sync(["place_features"], full=True)[0]
        after_sync = _tasks_by_executor(context)
        with store.connect() as warehouse:
            keys = warehouse.fetch_all("select distinct case_id, place_id from training.place_features "
                                       "where valid_to is null order by 1, 2")
        keyed = [{"case_id": c, "place_id": p} for c, p in keys if c is not None and p is not None]
        statuses = store.get_online_features(["place_features:size"], keyed).statuses["size"]
        synced = {"path": result.path, "rows_read": result.rows_read, "written": result.written, "keys": len(keys),
                  "keyed": len(keyed),
                  "found": sum(status != "NOT_FOUND" for status in statuses),
                  "sync_tasks": {name: after_sync[name] - before_sync.get(name, 0) for name in after_sync},
                  "table": store.online.live_table_name("place_features")}
    other = _other_kind_of_session(str(out / "project"), "spark_connect",
                                   {**env, "FEATURESTORE_SPARK_CONNECT": "sc://127.0.0.1:1"})
    on_executors = context.parallelize(range(4), 4).map(lambda _: (sys.executable, os.getpid())).collect()
    return {"master": context.master, "app_id": context.applicationId, "driver_pid": os.getpid(),
            "driver_jvm_pid": context._gateway.proc.pid, "executor_pids": executor_pids(context.applicationId),
            "export_tasks": {name: after[name] - before.get(name, 0) for name in after},
            "python_on_executors": sorted({python for python, _ in on_executors}),
            "python_worker_pids": sorted({pid for _, pid in on_executors}), "seconds": seconds, "synced": synced,
            "other_session": other}


def connect_export(request: dict) -> dict:
    """Export with the SDK's `method: connect` target, through a Connect server whose catalog
    holds the project's tables; then the hostile entity queries."""
    from featurestore import FeatureStore

    out, env = Path(request["out"]), request["env"]
    cases = oracles.generate_pit_cases(request["cases"], seed=request["seed"])
    store = FeatureStore(request["project"], "spark_connect", env=env)
    started = time.monotonic()
    _export(store, cases, out, query=True)
    exported = time.monotonic()
    with store.connect() as warehouse:
        session = type(warehouse.session).__module__
    return {"session": session, "refusals": _refusals(store),
            "other_session": _other_kind_of_session(request["project"], "spark", env),
            "seconds": {"export": exported - started, "refusals": time.monotonic() - exported}}


if __name__ == "__main__":
    command, request_path = sys.argv[1:3]
    request = json.loads(Path(request_path).read_text())
    report = {"build-export": build_export, "connect-export": connect_export}[command](request)
    print(json.dumps(report))
