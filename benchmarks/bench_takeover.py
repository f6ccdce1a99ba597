"""A full sync right after a killed one: how long its write takes, against the same write with no
load before it, in one run on moto's server.

    PYTHONPATH=featurestore_py .venv/bin/python benchmarks/bench_takeover.py [--keys 5000] [--rounds 3]

Each round, each arm into tables of its own (a prefix per arm and round):
  no earlier load        the view's current rows written by a bulk load (claim, BatchWriteItem, switch)
  killed here            a loader on this machine claims the view's next table, writes its first
                         batch and is killed (SIGKILL); then the same bulk load, timed: it takes the
                         killed loader's load over at once (online/bulk.py, featurestore/processes.py)
  killed elsewhere       the same, but the pointer names the loader as on another machine, whose
                         process cannot be judged: until its lease runs out (60 s) a sync writes
                         conditionally instead (a PutItem per item), as every sync did before
Medians of --rounds and their ratios to the first arm; the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from featurestore.online import OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
from featurestore.online.local import LocalDynamoDB, free_port

TABLE = OnlineTable("things", ("thing_id",), {"size": "bigint"}, None)
LOADER = """
import sys
from datetime import datetime, timedelta
from featurestore.online import OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
url, prefix, keys = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix))
event = datetime(2025, 1, 1, 0, 10)
rows = [{"thing_id": i, "event_timestamp": event, "created_timestamp": event, "size": 10} for i in range(keys)]
load = store.begin_load(OnlineTable("things", ("thing_id",), {"size": "bigint"}, None), "killed")
def first(n, said=[]):
    if not said:
        said.append(1)
        print("writing", flush=True)
        sys.stdin.read()  # until killed
with load:
    load.write(rows, on_batch=first)
"""
ARMS = ("no earlier load", "killed here", "killed elsewhere")


def rows(keys: int, minute: int) -> list[dict]:
    event = datetime(2025, 1, 1) + timedelta(minutes=minute)
    return [{"thing_id": i, "event_timestamp": event, "created_timestamp": event, "size": minute} for i in range(keys)]


def kill_a_loader(url: str, prefix: str, keys: int) -> None:
    loader = subprocess.Popen([sys.executable, "-c", LOADER, url, prefix, str(keys)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert loader.stdout.readline().strip() == "writing"
    loader.send_signal(signal.SIGKILL)
    loader.wait()


def full_sync(store: DynamoDBOnlineStore, keys: int) -> tuple[float, str]:
    """What a full sync does with the current rows: a bulk load when it can claim one, else
    conditional writes. Timed from the claim."""
    start = time.perf_counter()
    load = store.begin_load(TABLE, "next")
    if load is None:
        store.write(TABLE, rows(keys, 20), build="next")
        return time.perf_counter() - start, "conditional"
    with load:
        load.write(rows(keys, 20))
        load.finish()
    return time.perf_counter() - start, "bulk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = LocalDynamoDB(Path(tempfile.mkdtemp(prefix="bench-takeover-")) / "moto", free_port())
    url = server.start()  # moto's server, as `featurestore online up` starts it
    print(f"moto at {url}; {args.keys:,} keys; load average {os.getloadavg()[0]:.2f}", flush=True)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    try:
        for round_ in range(args.rounds):
            for index, arm in enumerate(ARMS):
                prefix = f"r{round_}a{index}_"
                store = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix))
                store.write(TABLE, rows(args.keys, 5), build="old")
                if arm != "no earlier load":
                    kill_a_loader(url, prefix, args.keys)
                if arm == "killed elsewhere":
                    store.update_generations("things", lambda current: replace(
                        current, loader=current.loader.partition("@")[0] + "@0123456789abcdef/1.1",
                        serial=current.serial + 1))
                seconds, path = full_sync(store, args.keys)
                times[arm].append(seconds)
                print(f"  round {round_ + 1}: {arm}: {path}, {seconds:.2f} s", flush=True)
    finally:
        server.stop()
    base = statistics.median(times[ARMS[0]])
    for arm in ARMS:
        median = statistics.median(times[arm])
        print(f"{arm:>18}: median {median:.2f} s, {median / base:.2f}x the write with no earlier load")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
