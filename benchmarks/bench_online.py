"""Online store: sync throughput and online read latency vs plain boto3, against one moto server.

    .venv/bin/python benchmarks/bench_online.py [--rows 20000] [--reads 300]

Sync: the same rows written, each into a fresh table, (a) by a plain single-thread boto3
BatchWriteItem loop (25 items a request, no ordering guard), (b) by the previous lease design
(a per-view lease, a read of the stored versions, 25-item BatchWriteItem requests; loaded from
git history, commit 3041b0a) with 8 threads, (c) by our write path with 1 and with 8 threads
(one consistent BatchGetItem of the stored versions per 100 keys, then one conditional PutItem
per item). Reads: `store.get_online_features` for 1 and 100 entities vs a plain
`batch_get_item` of the same keys and attributes; p50/p99 over --reads calls, interleaved.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FEATURES = ["f_double", "f_int", "f_str"]


def rows(n: int) -> list[dict]:
    rng = random.Random(3)
    now = datetime(2026, 1, 1)
    return [{"entity_id": i, "event_timestamp": now, "created_timestamp": now, "f_double": rng.random() * 100,
             "f_int": rng.randrange(1000), "f_str": f"v{rng.randrange(50)}"} for i in range(n)]


def previous_design():
    """The lease-based DynamoDB module of commit 3041b0a, imported beside today's (None without git)."""
    import importlib.util
    import subprocess
    import sys

    try:
        source = subprocess.run(["git", "show", "3041b0a:featurestore_py/featurestore/online/dynamodb.py"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp(prefix="lease-design-")) / "_lease_design.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("featurestore.online._lease_design", path,
                                                  submodule_search_locations=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "featurestore.online"
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--endpoint", default=None, help="an endpoint already running (e.g. dynalite) instead of moto")
    args = parser.parse_args()

    from featurestore import FeatureStore
    from featurestore.online import OnlineTable
    from featurestore.online.config import OnlineConfig
    from featurestore.online.dynamodb import DynamoDBOnlineStore, encode, entity_key
    from featurestore.online.local import LocalDynamoDB, free_port

    work = Path(tempfile.mkdtemp(prefix="bench-online-"))
    server = None if args.endpoint else LocalDynamoDB(work / "moto", free_port())
    url = args.endpoint or server.start()
    try:
        data = rows(args.rows)
        table = OnlineTable("bench_view", ("entity_id",), {"f_double": "double", "f_int": "bigint", "f_str": "varchar"}, None)

        # -- sync throughput ------------------------------------------------------------------------
        plain = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", "plain_"))
        plain.ensure_table(table)
        items = [plain._item(table, row) for row in data]
        started = time.perf_counter()
        for start in range(0, len(items), 25):
            request = {"plain_bench_view": [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
            while request:
                request = plain.client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        baseline = len(items) / (time.perf_counter() - started)
        print(f"sync: plain boto3 batch_write_item loop, 1 thread: {baseline:,.0f} rows/s")
        lease_design = previous_design()
        if lease_design is not None:
            old = lease_design.DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", "lease8_"), workers=8)
            old.ensure_table(table)
            started = time.perf_counter()
            report = old.write(table, data)
            rate = report.written / (time.perf_counter() - started)
            print(f"sync: previous lease design, 8 threads: {rate:,.0f} rows/s = {rate / baseline:.2f}x plain")
        for workers in (1, 8):
            ours = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", f"ours{workers}_"), workers=workers)
            ours.ensure_table(table)
            started = time.perf_counter()
            report = ours.write(table, data)
            rate = report.written / (time.perf_counter() - started)
            print(f"sync: featurestore write path, {workers} thread(s): {rate:,.0f} rows/s = {rate / baseline:.2f}x plain")

        # -- read latency ---------------------------------------------------------------------------
        from projects import online_snapshot_project

        project_dir = online_snapshot_project(work / "project")
        store = FeatureStore(project_dir, env={"FEATURESTORE_DYNAMODB_ENDPOINT": url, "FEATURESTORE_TABLE_PREFIX": "ours8_",
                                               "FEATURESTORE_DUCKDB_PATH": str(work / "bench.duckdb")})
        store.project.run("deps", "--quiet")
        store.registry
        client = store.online.client
        references = [f"bench_view:{feature}" for feature in FEATURES]
        names = {"#k": "entity_key", "#e": "_event_timestamp", **{f"#f{i}": f for i, f in enumerate(FEATURES)}}
        projection = "#k, #e, " + ", ".join(f"#f{i}" for i in range(len(FEATURES)))
        rng = random.Random(9)
        for size in (1, 100):
            ours_times, plain_times = [], []
            for _ in range(args.reads):
                keys = rng.sample(range(args.rows), size)
                entity_rows = [{"entity_id": key} for key in keys]
                started = time.perf_counter()
                client.batch_get_item(RequestItems={"ours8_bench_view": {
                    "Keys": [{"entity_key": encode(entity_key(("entity_id",), row))} for row in entity_rows],
                    "ProjectionExpression": projection, "ExpressionAttributeNames": names}})
                plain_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                response = store.get_online_features(references, entity_rows=entity_rows).to_dict()
                ours_times.append(time.perf_counter() - started)
                assert response["f_int"][0] is not None
            p50, p99 = percentile(ours_times, 0.5) * 1000, percentile(ours_times, 0.99) * 1000
            b50, b99 = percentile(plain_times, 0.5) * 1000, percentile(plain_times, 0.99) * 1000
            print(f"read {size:>3} entities: get_online_features p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
                  f"plain batch_get_item p50 {b50:.2f} ms, p99 {b99:.2f} ms; ratio p50 {p50 / b50:.2f}x, p99 {p99 / b99:.2f}x")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
