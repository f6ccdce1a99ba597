"""Streaming window features (issue 23), side by side in one run: push throughput of a feature
server against raw conditional writes, and the read latency of a streaming feature against a
batch feature of the same entity, on the same emulator.

    .venv/bin/python benchmarks/bench_streaming.py [--store moto|dynalite|both] [--runs 3] [--seconds 3]
        [--clients 8,32] [--batches 1,10,100] [--zero-delay-batches 1,10] [--requests 100] [--cards 1000]

The project: tests/fixtures/stream_project (streaming view card_events: 8 aggregates; entity card)
with its windows 60 times longer (5 min to 1 h, so a run's events stay in them on a loaded
machine) plus card_profile, a batch online view of the same entity with 8 features over --cards
keys (benchmarks/projects.py), built once with dbt (DuckDB) and synced with `FeatureStore.sync`.

Push throughput, events/s: one `featurestore serve --push` process (one worker); K client threads
(--clients) each POST /push of B events (--batches; Feast's push body, `to` left at its default
online_and_offline, so each push also lands a Parquet file) for --seconds, the clock running until
the last answer. Raw, in the same run and on the same emulator: K threads (a boto3 client each)
putting the same items (made by the library's make_event, plus `_pushed_at`) one PutItem each with
`attribute_not_exists`, into a table of the same key schema. A push is answered only after its
events' visibility stamp (FEATURESTORE_PUSH_VISIBILITY_DELAY, default 0.2 s) has passed, so one
client's pushes are at most 1/0.2 s = 5 per second: side rows measure a second server with the
delay 0 (not a setting for production: see online/events.py), for the batch sizes of
--zero-delay-batches (where the delay matters; at 100 events a push it is a small share).

Read latency, ms: sequential POST /get-online-features of one entity, its 8 streaming aggregates
vs its 8 batch features (and both views in one request), p50 and p99 of --requests requests, the
card holding 1, 10 or 100 events in its longest window (pushed just before, event times within the
last 2 s; each answer's txns_1h is checked). Also the SDK (FeatureStore.get_online_features in
this process, no HTTP), p50. Each run reads from a server and tables of its own (a table prefix per
run, the batch view synced to it), holding only that run's 1 + 10 + 100 events: moto's Query reads
every item of the table (moto/dynamodb/models/table.py, Table.query over all_items()), so the
pushes above would make every read slower there, which DynamoDB's Query does not.

Every figure is the median of --runs runs; a ratio is taken within a run (ours and raw measured
one after the other) and its median printed. The load average is printed per run. The table at
the end holds the issue's aims: push >= 0.5x raw conditional writes; streaming read <= 1.2x batch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_serving import sequential as latencies, wait_for  # noqa: E402
from bench_sync import Dynalite, Moto, admin_client  # noqa: E402

STREAM = "card_events"
BATCH = "card_profile"
AGGREGATES = ["txns_5m", "txns_1h", "priced_txns_20m", "spend_20m", "items_1h", "avg_amount_1h", "min_amount_20m",
              "max_items_1h"]
PROFILE = ["credit_limit", "account_age_days", "card_tier", "home_country", "avg_txn_amount", "txns_total",
           "chargebacks", "risk_score"]
PUSH_PREFIX = "bs_push_"  # the push servers' and raw writes' tables
READ_PREFIX = "bs_read"  # + the run: each run's reads have tables of their own
EVENTS_PER_KEY = (1, 10, 100)
DEFAULT_DELAY = "0.2"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the servers ---------------------------------------------------------------------------------

def start_server(project: Path, env: dict, delay: str, log: Path) -> tuple[subprocess.Popen, str]:
    from featurestore.online.local import free_port

    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "featurestore"), "serve", "--push", "-p", str(project),
                                "--port", str(port)],
                               env={**os.environ, **env, "FEATURESTORE_PUSH_VISIBILITY_DELAY": delay},
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))  # never a pipe nobody reads
    wait_for(f"http://127.0.0.1:{port}/health", process)
    return process, f"http://127.0.0.1:{port}"


# -- push throughput -----------------------------------------------------------------------------

def event_rows(count: int, key: str | None = None, spread: float = 0.0) -> list[dict]:
    """`count` new events, now (minus up to `spread` s, oldest first), of `key` or random push keys."""
    now = datetime.now(timezone.utc) - timedelta(seconds=0.5)
    rows = []
    for index in range(count):
        txn = uuid.uuid4().hex
        rows.append({"card_id": key or f"push{int(txn[:8], 16) % 10000}",
                     "event_at": (now - timedelta(seconds=spread * (count - 1 - index) / max(count - 1, 1))).isoformat(),
                     "txn_id": txn, "amount": (int(txn[8:12], 16) % 10000) / 100, "items": int(txn[12:14], 16) % 9 + 1})
    return rows


def push_body(rows: list[dict]) -> dict:
    return {"push_source_name": STREAM, "df": {column: [row[column] for row in rows] for column in rows[0]}}


def push_call(url: str, batch: int):
    session = requests.Session()

    def call() -> int:
        response = session.post(f"{url}/push", json=push_body(event_rows(batch)), timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"push: {response.status_code} {response.text[:300]}")
        written = response.json()["written_online"]
        if written != batch:
            raise RuntimeError(f"push: {written} of {batch} events written")
        return batch
    return call


def raw_call(endpoint: str, table_name: str, online_table):
    """One conditional PutItem of an event item as the library makes it (the floor)."""
    from featurestore.online.codec import format_timestamp
    from featurestore.online.events import PUSHED, make_event

    client = admin_client(endpoint)

    def call() -> int:
        row = event_rows(1)[0]
        moment = datetime.fromisoformat(row["event_at"]).astimezone(timezone.utc).replace(tzinfo=None)
        item = dict(make_event(online_table, online_table.stream, row, moment, row["txn_id"]).item)
        item[PUSHED] = {"S": format_timestamp(datetime.now(timezone.utc).replace(tzinfo=None))}
        client.put_item(TableName=table_name, Item=item, ConditionExpression="attribute_not_exists(#k)",
                        ExpressionAttributeNames={"#k": "entity_key"})
        return 1
    return call


def throughput(make_call, clients: int, seconds: float) -> float:
    """Events/s of `clients` threads calling for `seconds` (the clock runs until the last answer)."""
    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)

    def run(index):
        call = make_call()
        ready.wait()
        try:
            while time.monotonic() < stop:
                counts[index] += call()
        except Exception as exc:  # counted and reported, not a traceback per thread
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    begun = time.monotonic()
    stop = begun + seconds
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} clients failed, e.g. {errors[0]}")
    return sum(counts) / elapsed


# -- read latency --------------------------------------------------------------------------------

def read_call(url: str, features: list[str], key: str, expect_events: int | None):
    session = requests.Session()
    body = {"features": features, "entities": {"card_id": [key]}}

    def call():
        response = session.post(f"{url}/get-online-features", json=body, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"read: {response.status_code} {response.text[:300]}")
        if expect_events is not None:
            answer = response.json()
            column = answer["metadata"]["feature_names"].index("txns_1h")
            found = answer["results"][column]["values"][0]
            if found != expect_events:
                raise RuntimeError(f"read of {key}: txns_1h is {found}, not {expect_events}")
    return call


def raw_query_call(endpoint: str, table_name: str, key: str, events: int):
    """boto3's Query of the key's events in the longest window, as the library sends it (the floor)."""
    from featurestore.online.codec import entity_key, format_timestamp

    client = admin_client(endpoint)
    partition = entity_key(["card_id"], {"card_id": key})

    def call():
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        found = client.query(TableName=table_name, ConsistentRead=True,
                             KeyConditionExpression="#k = :k AND #s BETWEEN :lo AND :hi",
                             ExpressionAttributeNames={"#k": "entity_key", "#s": "event"},
                             ExpressionAttributeValues={":k": {"S": partition},
                                                        ":lo": {"S": format_timestamp(now - timedelta(hours=1))},
                                                        ":hi": {"S": format_timestamp(now) + "#\uffff"}})
        if found["Count"] != events:
            raise RuntimeError(f"raw Query of {key}: {found['Count']} events, not {events}")
    return call


def sdk_call(store, features: list[str], key: str, expect_events: int | None):
    def call():
        values = store.get_online_features(features, [{"card_id": key}]).to_dict()
        if expect_events is not None and values["txns_1h"][0] != expect_events:
            raise RuntimeError(f"SDK read of {key}: txns_1h is {values['txns_1h'][0]}, not {expect_events}")
    return call


# -- one store -----------------------------------------------------------------------------------

def bench_store(emulator, project: Path, db_path: Path, args, work: Path) -> dict:
    from featurestore import FeatureStore
    from featurestore.requests import online_table

    endpoint = emulator.start()

    def env(prefix: str) -> dict:
        return {"FEATURESTORE_DYNAMODB_ENDPOINT": endpoint, "FEATURESTORE_TABLE_PREFIX": prefix,
                "FEATURESTORE_DUCKDB_PATH": str(db_path)}

    servers = []
    try:
        store = FeatureStore(project, env=env(PUSH_PREFIX))
        stream_table = online_table(store.registry, store.registry.view(STREAM))
        raw_table = f"{PUSH_PREFIX}raw.events"
        store.online._ensure(raw_table, "entity_key", sort="event")  # the events table's key schema
        for delay in (DEFAULT_DELAY, "0"):
            servers.append(start_server(project, env(PUSH_PREFIX), delay, work / f"server-{emulator.name}-{delay}.log"))
        (_, default_url), (_, zero_url) = servers
        for url in (default_url, zero_url):  # the first push makes the events table: not measured
            push_call(url, 1)()
        print(f"\n== {emulator.version} at {endpoint}; push servers: delay {DEFAULT_DELAY} s {default_url}, "
              f"delay 0 {zero_url}")

        results: dict = {"push": {}, "read": {}}
        stream_features = [f"{STREAM}:{name}" for name in AGGREGATES]
        batch_features = [f"{BATCH}:{name}" for name in PROFILE]
        for run in range(args.runs):
            print(f"-- run {run + 1}/{args.runs}; load average {load()}")
            for clients in args.clients:
                raw = throughput(lambda: raw_call(endpoint, raw_table, stream_table), clients, args.seconds)
                print(f"   raw conditional PutItem, {clients:>2} threads: {raw:8.0f} events/s")
                for batch in args.batches:
                    for delay, url in ((DEFAULT_DELAY, default_url), ("0", zero_url))[:2 if batch in args.zero_delay_batches else 1]:
                        ours = throughput(lambda: push_call(url, batch), clients, args.seconds)
                        results["push"].setdefault((clients, batch, delay), []).append((ours, raw, ours / raw))
                        print(f"   push, {clients:>2} clients x {batch:>3} events, delay {delay:>3} s: {ours:8.0f} events/s "
                              f"({ours / raw:.2f}x raw)")
            # Reads from tables of their own (moto's Query reads every item of the table, so the
            # events pushed above would make each read slower; DynamoDB's reads only the key's).
            reader = FeatureStore(project, env=env(f"{READ_PREFIX}{run}_"))
            reader.sync()
            process, url = start_server(project, env(f"{READ_PREFIX}{run}_"), DEFAULT_DELAY,
                                        work / f"server-{emulator.name}-read{run}.log")
            try:
                for index, events in enumerate(EVENTS_PER_KEY):
                    key = f"c{index}"  # a card of the batch view, no events before
                    response = requests.post(f"{url}/push", json=push_body(event_rows(events, key, spread=1.5)), timeout=60)
                    response.raise_for_status()
                    row = {
                        "stream": latencies(read_call(url, stream_features, key, events), args.requests),
                        "batch": latencies(read_call(url, batch_features, key, None), args.requests),
                        "both": latencies(read_call(url, stream_features + batch_features, key, events), args.requests),
                        "sdk stream": latencies(sdk_call(reader, stream_features, key, events), args.requests),
                        "sdk batch": latencies(sdk_call(reader, batch_features, key, None), args.requests),
                        "raw query": latencies(raw_query_call(endpoint, reader.online_config.table_name(f"{STREAM}.events"),
                                                              key, events), args.requests),
                    }
                    read_call(url, stream_features, key, events)()  # the window still holds them all
                    results["read"].setdefault(events, []).append(row)
                    print(f"   read, {events:>3} event(s) in the window: p50 stream {row['stream'][0]:6.2f} ms, batch "
                          f"{row['batch'][0]:6.2f} ms ({row['stream'][0] / row['batch'][0]:.2f}x); p99 {row['stream'][1]:6.2f} "
                          f"vs {row['batch'][1]:6.2f}; both {row['both'][0]:6.2f}; SDK {row['sdk stream'][0]:6.2f} vs "
                          f"{row['sdk batch'][0]:6.2f}; raw Query {row['raw query'][0]:6.2f}")
            finally:
                stop(process)
        return results
    finally:
        for process, _ in servers:
            stop(process)
        emulator.stop()


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def report(name: str, results: dict, args) -> None:
    median = statistics.median
    print(f"\n== {name}: medians of {args.runs} runs, {args.seconds:g} s per push figure, {args.requests} sequential reads")
    print(f"{'push (events/s)':<34} {'ours':>8} {'raw':>8} {'ours/raw':>9}  aim >= 0.5x")
    for (clients, batch, delay), runs in results["push"].items():
        ratio = median(r[2] for r in runs)
        side = "" if delay == DEFAULT_DELAY else "  (side row: delay 0)"
        verdict = "met" if ratio >= 0.5 else "not met"
        print(f"{clients:>2} clients x {batch:>3} events, delay {delay:>3} s "
              f"{median(r[0] for r in runs):8.0f} {median(r[1] for r in runs):8.0f} {ratio:8.2f}x  {verdict}{side}")
    print(f"\n{'read, 1 entity (ms)':<22} {'stream p50':>10} {'batch p50':>10} {'ratio':>6} {'stream p99':>10} "
          f"{'batch p99':>10} {'ratio':>6} {'both p50':>9} {'SDK s/b p50':>13} {'raw Query':>9}  aim <= 1.2x (p50)")
    for events, runs in results["read"].items():
        p50 = {kind: median(r[kind][0] for r in runs) for kind in runs[0]}
        p99 = {kind: median(r[kind][1] for r in runs) for kind in runs[0]}
        ratio50 = median(r["stream"][0] / r["batch"][0] for r in runs)
        ratio99 = median(r["stream"][1] / r["batch"][1] for r in runs)
        print(f"{events:>3} event(s) in window    {p50['stream']:10.2f} {p50['batch']:10.2f} {ratio50:5.2f}x "
              f"{p99['stream']:10.2f} {p99['batch']:10.2f} {ratio99:5.2f}x {p50['both']:9.2f} "
              f"{p50['sdk stream']:6.2f}/{p50['sdk batch']:<6.2f} {p50['raw query']:9.2f}  {'met' if ratio50 <= 1.2 else 'not met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["moto", "dynalite", "both"], default="moto")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per push throughput figure")
    parser.add_argument("--clients", default="8,32", help="concurrent push clients, comma-separated")
    parser.add_argument("--batches", default="1,10,100", help="events per push, comma-separated")
    parser.add_argument("--zero-delay-batches", default="1,10", help="batch sizes also pushed with the delay 0")
    parser.add_argument("--requests", type=int, default=100, help="sequential reads per latency figure")
    parser.add_argument("--cards", type=int, default=1000, help="keys of the batch view")
    args = parser.parse_args()
    args.clients = [int(x) for x in args.clients.split(",")]
    args.batches = [int(x) for x in args.batches.split(",")]
    args.zero_delay_batches = [int(x) for x in args.zero_delay_batches.split(",") if x]

    from featurestore import FeatureStore
    from projects import stream_and_batch_project

    started = time.monotonic()
    print(f"bench_streaming: {os.cpu_count()} cores; load average {load()}; {args.runs} runs")
    work = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    try:
        project = stream_and_batch_project(work / "project", args.cards)
        db_path = work / "bench.duckdb"
        FeatureStore(project, env={"FEATURESTORE_DUCKDB_PATH": str(db_path)}).build("--quiet")
        emulators = {"moto": [Moto], "dynalite": [Dynalite], "both": [Moto, Dynalite]}[args.store]
        reports = []
        for make in emulators:
            emulator = make(work)
            results = bench_store(emulator, project, db_path, args, work)
            reports.append((emulator.version, results))
        for name, results in reports:
            report(name, results, args)
        print(f"\nload average at the end {load()}; {time.monotonic() - started:.0f} s in all")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
