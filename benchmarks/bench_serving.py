"""Online serving over HTTP on one DynamoDB emulator, in one run: our feature server vs Feast's
Python feature server (`feast serve`, Feast 0.67, the same rows and features) vs raw boto3 BatchGetItem.

    .venv/bin/python benchmarks/bench_serving.py [--seconds 3] [--repeat 3] [--feast-venv DIR] [--only ours ...]
        [--store moto|dynalite]

The store is moto's server (default) or dynalite (Node; DYNALITE_BIN, as bench_sync.py finds it):
on 2 cores moto's requests/s is the ceiling that ours and in-process boto3 reach at 8 clients; --store dynalite
shows the servers' own ceilings against a second store.

The churn service's features (customer_features: 5, store_features: 2) for 1 and 100 entities:
requests/s, p50 and p99 with 1 and 8 concurrent clients for --seconds each, the median of --repeat
runs, and the 1-entity latency of every target, of one GetItem and of our /health (an HTTP round
trip without a read) measured in turn (interleaved); ours and its /health also through a leaner
client (one http.client connection), which tells the `requests` client's share of a round trip.
Two floors: a minimal raw HTTP server over the same store (raw_server.py: bare ASGI on uvicorn
with httptools and uvloop, as ours, one BatchGetItem, no checks), and raw boto3 in process (one
BatchGetItem with the keys of both tables; for 100 entities, 200 keys: two calls, DynamoDB's
limit is 100 keys per call), plus one GetItem's p50. The load average is printed before and after (the machine may be shared).

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
DEFAULT_FEAST = REPO / ".venv-feast" if (REPO / ".venv-feast").exists() else Path.home() / ".cache" / "featurestore-bench" / "feast-venv"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def concurrent(make_call, clients: int, seconds: float) -> tuple[float, float, float, int]:
    """requests/s, p50 and p99 (ms) of `clients` threads calling for `seconds` (1 client: sequential),
    and the number of requests timed."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    calls = [make_call() for _ in range(clients)]
    for call in calls:
        call()  # warm: a connection each
    errors: list[str] = []

    def run(index):
        call = calls[index]
        try:
            while time.monotonic() < stop:
                started = time.perf_counter()
                call()
                latencies[index].append(time.perf_counter() - started)
        except Exception as exc:  # counted and reported, not a traceback per thread
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    stop = time.monotonic() + seconds
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    everything = [value for values in latencies for value in values]
    if errors:
        print(f"    {len(errors)} of {clients} clients failed, e.g. {errors[0]}")
    if not everything:
        return 0.0, float("nan"), float("nan"), 0
    return len(everything) / elapsed, percentile(everything, 0.5) * 1000, percentile(everything, 0.99) * 1000, len(everything)


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


def prepare(work: Path, store_name: str):
    from bench_sync import Dynalite, Moto
    from conftest import build_demo
    from featurestore import FeatureStore
    from jaffle_data import JaffleSize

    emulator = {"moto": Moto, "dynalite": Dynalite}[store_name](work)
    endpoint = emulator.start()
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": endpoint, "FEATURESTORE_TABLE_PREFIX": "bench_"}
    project = build_demo(work / "project", JaffleSize(), seed=7, **env)
    store = FeatureStore(project, env=env)
    # serve fresh values: the TTLs are days and the demo data ends in the past, so make it end now
    store.sync()
    return project, env, emulator, store


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


def lean_http_call(url: str, body: dict, method: str = "POST"):
    """The same request over one kept-alive http.client connection: a client without `requests`'
    per-call work (its environment, proxy and cookie handling), to tell the client's share of a
    round trip from the server's."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = json.dumps(body).encode() if method == "POST" else None
    headers = {"content-type": "application/json"} if data else {}

    def call():
        connection.request(method, parts.path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {payload[:300]!r}")
    return call


def health_call(url: str):
    """GET /health of a server: an HTTP round trip through the same client, without a read."""
    session, health = requests.Session(), url.rsplit("/", 1)[0] + "/health"

    def call():
        session.get(health, timeout=30).raise_for_status()
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


def start_feast(feast_venv: Path, work: Path, store, endpoint: str, port: int, extra_path: str | None = None) -> subprocess.Popen:
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
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "FEAST_USAGE": "False", **({"PYTHONPATH": extra_path} if extra_path else {})}
    subprocess.run([feast, "apply"], cwd=repo, env=env, check=True, capture_output=True)
    subprocess.run([feast, "materialize", "2000-01-01T00:00:00", "2100-01-01T00:00:00"], cwd=repo, env=env, check=True,
                   capture_output=True)
    process = subprocess.Popen([feast, "serve", "--port", str(port), "--host", "127.0.0.1"], cwd=repo, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(work / "feast.log", "w"), text=True)
    wait_for(f"http://127.0.0.1:{port}/health", process)
    return process


def get_item_call(store, customer_id: str):
    """One GetItem of one entity's row (the aim's floor for a 1-entity request's latency)."""
    import boto3

    from featurestore.online.codec import entity_key
    from featurestore.online.dynamodb import KEY

    config = store.online_config
    client = boto3.client("dynamodb", endpoint_url=config.endpoint_url, region_name=config.region,
                          aws_access_key_id="test", aws_secret_access_key="test")
    table, key = config.table_name("customer_features"), entity_key(["customer_id"], {"customer_id": customer_id})

    def call():
        if "Item" not in client.get_item(TableName=table, Key={KEY: {"S": key}}):
            raise RuntimeError(f"GetItem found no {key} in {table}")
    return call


def start_raw_server(store, endpoint: str, work: Path, port: int) -> subprocess.Popen:
    config = store.online_config
    process = subprocess.Popen([sys.executable, str(HERE / "raw_server.py"), str(port), endpoint, config.region,
                                config.table_name("customer_features"), config.table_name("store_features")],
                               stdout=subprocess.DEVNULL, stderr=open(work / "raw_server.log", "w"), text=True)
    wait_for(f"http://127.0.0.1:{port}/health", process)
    return process


def interleaved_p50(calls: dict, rounds: int) -> dict[str, float]:
    """p50 (ms) of each call, made in turn round after round (so a change of load hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far, from /proc (Linux)."""
    total, pending = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each measurement (medians are shown)")
    parser.add_argument("--interleaved", type=int, default=300, help="rounds of the interleaved 1-entity latency")
    parser.add_argument("--feast-venv", type=Path, default=DEFAULT_FEAST)
    parser.add_argument("--feast-path", help="PYTHONPATH for Feast (e.g. a `pip install --target` of boto3 and "
                        "aiobotocore, Feast's `aws` extra, when its virtualenv lacks them)")
    parser.add_argument("--only", choices=["ours", "raw server", "feast"], action="append",
                        help="measure only these servers (repeatable; default all)")
    parser.add_argument("--store", choices=["moto", "dynalite"], default="moto", help="the DynamoDB emulator read")
    args = parser.parse_args()

    from featurestore.online.local import free_port

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    project, env, emulator, store = prepare(work, args.store)
    endpoint = env["FEATURESTORE_DYNAMODB_ENDPOINT"]
    wanted = set(args.only or ["ours", "raw server", "feast"])
    args.feast_venv = args.feast_venv.resolve()  # (feast runs in another directory)
    processes = []
    try:
        targets: dict[str, str | None] = {"boto3": None}
        pids: dict[str, int] = {}
        if "raw server" in wanted:
            raw_port = free_port()
            processes.append(start_raw_server(store, endpoint, work, raw_port))
            pids["raw server"] = processes[-1].pid
            targets["raw server"] = f"http://127.0.0.1:{raw_port}/get-online-features"
        if "ours" in wanted:
            ours_port = free_port()
            processes.append(start_ours(project, env, ours_port))
            pids["ours"] = processes[-1].pid
            targets["ours"] = f"http://127.0.0.1:{ours_port}/get-online-features"
        feast_note = None
        if "feast" not in wanted:
            pass
        elif (args.feast_venv / "bin" / "feast").exists():
            try:
                feast_port = free_port()
                processes.append(start_feast(args.feast_venv, work, store, endpoint, feast_port, args.feast_path))
                pids["feast"] = processes[-1].pid
                targets["feast"] = f"http://127.0.0.1:{feast_port}/get-online-features"
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", b"") or b""
                feast_note = f"Feast not measured: {exc} {detail.decode(errors='replace')[-800:] if isinstance(detail, bytes) else detail[-800:]}"
        else:
            feast_note = f"Feast not measured: no virtualenv at {args.feast_venv} (see the module docstring)"
        print(f"{emulator.version} at {endpoint}; {os.cpu_count()} cores; load average {load_average()} (1, 5, 15 min); "
              f"medians of {args.repeat} x {args.seconds:g} s")
        if feast_note:
            print(feast_note)
        pairs = entity_keys(store, 1)
        get_item = [concurrent(lambda: get_item_call(store, pairs[0][0]), 1, args.seconds)[1] for _ in range(args.repeat)]
        get_item_p50 = statistics.median(get_item)
        print(f"raw boto3 GetItem (1 item, 1 client): p50 {get_item_p50:.2f} ms")
        one = {"feature_service": "churn_model", "entities": {"customer_id": [pairs[0][0]], "store_id": [pairs[0][1]]}}
        interleaved = interleaved_p50({"GetItem": get_item_call(store, pairs[0][0]), "BatchGetItem": raw_call(store, pairs),
                                       **{name: http_call(url, one) for name, url in targets.items() if url},
                                       **({"ours /health": health_call(targets["ours"]),
                                           "ours, http.client": lean_http_call(targets["ours"], one),
                                           "ours /health, http.client": lean_http_call(
                                               targets["ours"].rsplit("/", 1)[0] + "/health", {}, "GET")}
                                          if "ours" in targets else {})},
                                      args.interleaved)
        print(f"1 entity, 1 client, {args.interleaved} rounds of one call each in turn (the same load for all): p50 "
              + ", ".join(f"{name} {value:.2f} ms" for name, value in interleaved.items()))
        if "ours" in interleaved:
            print(f"  ours - GetItem: {interleaved['ours'] - interleaved['GetItem']:+.2f} ms; ours - BatchGetItem of "
                  f"the same two items: {interleaved['ours'] - interleaved['BatchGetItem']:+.2f} ms; an HTTP round trip "
                  f"without a read (ours /health): {interleaved['ours /health']:.2f} ms")
            print(f"  the same through a leaner client (one http.client connection): ours - GetItem: "
                  f"{interleaved['ours, http.client'] - interleaved['GetItem']:+.2f} ms, /health "
                  f"{interleaved['ours /health, http.client']:.2f} ms")
        for count in (1, 100):
            pairs = entity_keys(store, count)
            body = {"feature_service": "churn_model",
                    "entities": {"customer_id": [c for c, _ in pairs], "store_id": [s for _, s in pairs]}}
            print(f"\n{count} entit{'y' if count == 1 else 'ies'} x {len(CUSTOMER_FEATURES) + len(STORE_FEATURES)} features "
                  f"(boto3: BatchGetItem in process)")
            print(f"  {'target':<11} {'rps@1':>7} {'p50@1':>7} {'p99@1':>7} {'rps@8':>7} {'p50@8':>7} {'p99@8':>7} "
                  f"{'cpu/req':>7}  (ms; cpu/req: the server process's CPU per request)")
            results = {}
            for name, url in targets.items():
                make = (lambda: raw_call(store, pairs)) if url is None else (lambda url=url: http_call(url, body))
                cpu_before = cpu_seconds(pids[name]) if name in pids else None
                runs = {clients: [concurrent(make, clients, args.seconds) for _ in range(args.repeat)] for clients in (1, 8)}
                timed = sum(run[3] for clients in (1, 8) for run in runs[clients])
                cpu = (cpu_seconds(pids[name]) - cpu_before) * 1000 / max(timed, 1) if name in pids else float("nan")
                cpu = cpu if name != "feast" else float("nan")  # feast serve's workers come and go: their CPU is lost
                figures = [statistics.median(run[i] for run in runs[clients]) for clients in (1, 8) for i in range(3)]
                results[name] = figures
                print(f"  {name:<11} {figures[0]:7.0f} {figures[1]:7.2f} {figures[2]:7.2f} {figures[3]:7.0f} "
                      f"{figures[4]:7.2f} {figures[5]:7.2f} {cpu:7.2f}")
            if "ours" in results:
                ours = results["ours"]
                if "raw server" in results:
                    raw = results["raw server"]
                    print(f"  ours / raw server requests/s: {ours[0] / raw[0]:.2f}x at 1 client, {ours[3] / raw[3]:.2f}x at 8")
                if "feast" in results:
                    feast = results["feast"]
                    print(f"  ours / feast requests/s: {ours[0] / feast[0]:.2f}x at 1 client, {ours[3] / feast[3]:.2f}x at 8")
                if count == 1:
                    print(f"  ours p50 - raw GetItem p50: {ours[1] - get_item_p50:+.2f} ms")
        print(f"\nload average at the end: {load_average()}")
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
