"""Online serving over HTTP on one moto server, in one run: our feature server vs Feast's Python
feature server (`feast serve`, Feast 0.67, the same rows and features) vs raw boto3 BatchGetItem.

    .venv/bin/python benchmarks/bench_serving.py [--seconds 5] [--feast-venv DIR]

The churn service's features (customer_features: 5, store_features: 2) for 1 and 100 entities:
sequential latency (p50, p99 over --requests requests) and requests/s with 8 and 32 concurrent
clients for --seconds each (p99 too). Raw boto3 is the floor: one BatchGetItem with the keys of
both tables (for 100 entities, 200 keys: two calls, DynamoDB's limit is 100 keys per call).

Feast runs from its own virtualenv (--feast-venv, default ~/.cache/featurestore-bench/feast-venv;
create it with `python3 -m venv DIR && DIR/bin/pip install 'feast[aws]==0.67.0'`); without it,
Feast's column is skipped and says why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "examples" / "jaffle_shop"))
CUSTOMER_FEATURES = ["total_orders_30d", "avg_order_value_30d", "days_since_last_order", "customer_segment", "lifetime_value"]
STORE_FEATURES = ["orders_7d", "revenue_28d"]
DEFAULT_FEAST = Path.home() / ".cache" / "featurestore-bench" / "feast-venv"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def sequential(call, requests_count: int) -> tuple[float, float]:
    call()  # warm
    times = []
    for _ in range(requests_count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, percentile(times, 0.99) * 1000


def concurrent(make_call, clients: int, seconds: float) -> tuple[float, float]:
    """requests/s and p99 (ms) of `clients` threads calling for `seconds`."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]

    errors: list[str] = []

    def run(index):
        call = make_call()
        try:
            call()
            while time.monotonic() < stop:
                started = time.perf_counter()
                call()
                latencies[index].append(time.perf_counter() - started)
        except Exception as exc:  # counted and reported, not a traceback per thread
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    everything = [value for values in latencies for value in values]
    if errors:
        print(f"    {len(errors)} of {clients} clients failed, e.g. {errors[0]}")
    return len(everything) / elapsed, (percentile(everything, 0.99) * 1000 if everything else float("nan"))


def wait_for(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def prepare(work: Path):
    from conftest import build_demo
    from featurestore import FeatureStore
    from featurestore.online.local import LocalDynamoDB, free_port
    from jaffle_data import JaffleSize

    moto = LocalDynamoDB(work / "moto", free_port())
    endpoint = moto.start()
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": endpoint, "FEATURESTORE_TABLE_PREFIX": "bench_"}
    project = build_demo(work / "project", JaffleSize(), seed=7, **env)
    store = FeatureStore(project, env=env)
    # serve fresh values: the TTLs are days and the demo data ends in the past, so make it end now
    store.sync()
    return project, env, moto, store


def entity_keys(store, count: int) -> list[tuple[str, str]]:
    with store.connect() as warehouse:
        return warehouse.fetch_all("select customer_id, store_id from main.churn_labels where store_id is not null "
                                   "group by 1, 2 order by 1 limit ?", [count])


def raw_call(store, pairs):
    """BatchGetItem of the same items our server reads (the floor)."""
    import boto3

    from featurestore.online.codec import entity_key

    config = store.online_config
    client = boto3.client("dynamodb", endpoint_url=config.endpoint_url, region_name=config.region,
                          aws_access_key_id="test", aws_secret_access_key="test")
    tables = {config.table_name("customer_features"): sorted({entity_key(["customer_id"], {"customer_id": c}) for c, _ in pairs}),
              config.table_name("store_features"): sorted({entity_key(["store_id"], {"store_id": s}) for _, s in pairs})}
    from featurestore.online.dynamodb import KEY

    requests_ = []
    batch: dict = {}
    size = 0
    for table, keys in tables.items():
        for key in keys:
            if size == 100:
                requests_.append(batch)
                batch, size = {}, 0
            batch.setdefault(table, {"Keys": []})["Keys"].append({KEY: {"S": key}})
            size += 1
    requests_.append(batch)

    def call():
        for request in requests_:
            client.batch_get_item(RequestItems=request)
    return call


def http_call(url: str, body: dict, headers: dict | None = None):
    session = requests.Session()
    data = json.dumps(body)

    def call():
        response = session.post(url, data=data, headers={"content-type": "application/json", **(headers or {})}, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return call


def start_ours(project: Path, env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen([str(Path(sys.executable).parent / "featurestore"), "serve", "-p", str(project),
                                "--port", str(port), "--max-entities", "1000"],
                               env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=open(project.parent / "server.log", "w"), text=True)  # never a pipe nobody reads
    wait_for(f"http://127.0.0.1:{port}/health", process)
    return process


FEAST_REPO = '''
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float64, Int64, String

customer = Entity(name="customer", join_keys=["customer_id"])
store = Entity(name="store", join_keys=["store_id"])
customer_source = FileSource(path="{customer_path}", timestamp_field="feature_ts")
store_source = FileSource(path="{store_path}", timestamp_field="feature_ts")
customer_features = FeatureView(name="customer_features", entities=[customer], ttl=timedelta(days=36500), source=customer_source,
    schema=[Field(name="total_orders_30d", dtype=Int64), Field(name="avg_order_value_30d", dtype=Float64),
            Field(name="days_since_last_order", dtype=Int64), Field(name="customer_segment", dtype=String),
            Field(name="lifetime_value", dtype=Float64)])
store_features = FeatureView(name="store_features", entities=[store], ttl=timedelta(days=36500), source=store_source,
    schema=[Field(name="orders_7d", dtype=Int64), Field(name="revenue_28d", dtype=Float64)])
churn_model = FeatureService(name="churn_model", features=[customer_features, store_features])
'''


def start_feast(feast_venv: Path, work: Path, store, endpoint: str, port: int) -> subprocess.Popen:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    repo = work / "feast_repo"
    repo.mkdir()
    paths = {}
    with store.connect() as warehouse:
        for view, columns in (("customer_features", ["customer_id", *CUSTOMER_FEATURES]), ("store_features", ["store_id", *STORE_FEATURES])):
            table = warehouse.fetch_arrow(f"select {', '.join(columns)}, feature_ts from main.{view} where valid_to is null")
            table = table.set_column(table.schema.get_field_index("feature_ts"), "feature_ts",
                                     pc.cast(table.column("feature_ts"), pa.timestamp("us", tz="UTC")))
            for index, field in enumerate(table.schema):
                if pa.types.is_decimal(field.type):
                    table = table.set_column(index, field.name, pc.cast(pc.cast(table.column(index), pa.string()), pa.float64()))
                elif pa.types.is_integer(field.type):
                    table = table.set_column(index, field.name, pc.cast(table.column(index), pa.int64()))
            paths[view] = repo / f"{view}.parquet"
            pq.write_table(table, paths[view])
    (repo / "repo.py").write_text(FEAST_REPO.format(customer_path=paths["customer_features"], store_path=paths["store_features"]))
    (repo / "feature_store.yaml").write_text(
        f"project: benchfeast\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"online_store:\n  type: dynamodb\n  region: {store.online_config.region}\n  endpoint_url: {endpoint}\n"
        f"offline_store:\n  type: file\nentity_key_serialization_version: 3\n")
    feast = str(feast_venv / "bin" / "feast")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "FEAST_USAGE": "False"}
    subprocess.run([feast, "apply"], cwd=repo, env=env, check=True, capture_output=True)
    subprocess.run([feast, "materialize", "2000-01-01T00:00:00", "2100-01-01T00:00:00"], cwd=repo, env=env, check=True,
                   capture_output=True)
    process = subprocess.Popen([feast, "serve", "--port", str(port), "--host", "127.0.0.1"], cwd=repo, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(work / "feast.log", "w"), text=True)
    wait_for(f"http://127.0.0.1:{port}/health", process)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrent measurement")
    parser.add_argument("--requests", type=int, default=300, help="per sequential measurement")
    parser.add_argument("--feast-venv", type=Path, default=DEFAULT_FEAST)
    args = parser.parse_args()

    from featurestore.online.local import free_port

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    project, env, moto, store = prepare(work)
    processes = []
    try:
        ours_port = free_port()
        processes.append(start_ours(project, env, ours_port))
        targets = {"raw boto3": None, "ours": f"http://127.0.0.1:{ours_port}/get-online-features"}
        feast_note = None
        if (args.feast_venv / "bin" / "feast").exists():
            try:
                feast_port = free_port()
                processes.append(start_feast(args.feast_venv, work, store, env["FEATURESTORE_DYNAMODB_ENDPOINT"], feast_port))
                targets["feast"] = f"http://127.0.0.1:{feast_port}/get-online-features"
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                feast_note = f"Feast not measured: {exc} {detail.decode(errors='replace')[-800:] if isinstance(detail, bytes) else detail[-800:]}"
        else:
            feast_note = f"Feast not measured: no virtualenv at {args.feast_venv} (see the module docstring)"
        print(f"moto at {env['FEATURESTORE_DYNAMODB_ENDPOINT']}; {os.cpu_count()} cores")
        if feast_note:
            print(feast_note)
        for count in (1, 100):
            pairs = entity_keys(store, count)
            body = {"feature_service": "churn_model",
                    "entities": {"customer_id": [c for c, _ in pairs], "store_id": [s for _, s in pairs]}}
            print(f"\n{count} entit{'y' if count == 1 else 'ies'} x {len(CUSTOMER_FEATURES) + len(STORE_FEATURES)} features")
            print(f"  {'target':<10} {'p50 ms':>8} {'p99 ms':>8} {'rps@8':>8} {'p99@8':>8} {'rps@32':>8} {'p99@32':>8}")
            results = {}
            for name, url in targets.items():
                make = (lambda: raw_call(store, pairs)) if url is None else (lambda url=url: http_call(url, body))
                p50, p99 = sequential(make(), args.requests)
                rps8, p99_8 = concurrent(make, 8, args.seconds)
                rps32, p99_32 = concurrent(make, 32, args.seconds)
                results[name] = (p50, p99, rps8, p99_8, rps32, p99_32)
                print(f"  {name:<10} {p50:8.2f} {p99:8.2f} {rps8:8.0f} {p99_8:8.1f} {rps32:8.0f} {p99_32:8.1f}")
            ours, raw = results["ours"], results["raw boto3"]
            print(f"  ours - raw p50: {ours[0] - raw[0]:+.2f} ms ({ours[0] / raw[0]:.2f}x)")
            if "feast" in results:
                feast = results["feast"]
                print(f"  ours / feast requests/s: {ours[2] / feast[2]:.2f}x at 8 clients, {ours[4] / feast[4]:.2f}x at 32; "
                      f"p50 {ours[0]:.2f} vs {feast[0]:.2f} ms")
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
