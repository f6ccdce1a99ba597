"""The online store's read request: botocore's client against the wire reads (online/wire.py),
the same requests to one moto server, interleaved, in one run.

    .venv/bin/python benchmarks/bench_read_client.py [--rounds 500]

For BatchGetItem of 1, 2 and 100 keys (the projection the online read asks for) and GetItem of
one key: the caller's CPU per call (`time.process_time`: what a feature server spends of its
own) and the wall time per call, medians over --rounds calls of each client in turn, and the
ratio wire / botocore. moto runs in its own process: its time is in the wall figures, not the
CPU ones. The load average is printed before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "featurestore_py"))


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()

    from featurestore.online import OnlineTable
    from featurestore.online.codec import entity_key
    from featurestore.online.config import OnlineConfig
    from featurestore.online.dynamodb import DynamoDBOnlineStore
    from featurestore.online.local import LocalDynamoDB, free_port

    work = Path(tempfile.mkdtemp(prefix="bench-read-client-"))
    moto = LocalDynamoDB(work / "moto", free_port())
    try:
        store = DynamoDBOnlineStore(OnlineConfig(moto.start(), "us-east-1", "bench_"))
        table = OnlineTable("things", ("user_id",), {"f_double": "double", "f_int": "bigint", "f_str": "varchar"}, None)
        now = datetime.now(timezone.utc)
        store.write(table, [{"user_id": i, "event_timestamp": now, "created_timestamp": now, "f_double": i / 7,
                             "f_int": i, "f_str": f"value {i}"} for i in range(200)])
        name = store.live_table_name("things")
        assert store._wire is not None, "the wire reads are off (a proxy in the environment?)"
        projection = {"ProjectionExpression": "#k, #e, #f0, #f1, #f2", "ExpressionAttributeNames": {
            "#k": "entity_key", "#e": "_event_timestamp", "#f0": "f_double", "#f1": "f_int", "#f2": "f_str"}}

        def batch(count: int) -> dict:
            keys = [{"entity_key": {"S": entity_key(["user_id"], {"user_id": i})}} for i in range(count)]
            return {"RequestItems": {name: {"Keys": keys, **projection}}}

        requests = {f"BatchGetItem, {n} key{'s' if n > 1 else ''}": ("batch_get_item", batch(n)) for n in (1, 2, 100)}
        requests["GetItem, 1 key"] = ("get_item", {"TableName": name,
                                                   "Key": {"entity_key": {"S": entity_key(["user_id"], {"user_id": 1})}}})
        clients = {"botocore": lambda operation, params: getattr(store.client, operation)(**params),
                   "wire": store._wire.call}
        print(f"moto; {os.cpu_count()} cores; load average {load_average()} (1, 5, 15 min); medians of {args.rounds} "
              "calls of each client in turn")
        print(f"  {'request':<22} {'botocore cpu':>12} {'wire cpu':>9} {'ratio':>6}   {'botocore wall':>13} {'wire wall':>9} "
              f"{'ratio':>6}  (ms per call)")
        for label, (operation, params) in requests.items():
            cpu = {client: [] for client in clients}
            wall = {client: [] for client in clients}
            for client, call in clients.items():
                call(operation, params)  # warm: a connection, botocore's loaded model
            for _ in range(args.rounds):
                for client, call in clients.items():
                    started, used = time.perf_counter(), time.process_time()
                    call(operation, params)
                    cpu[client].append(time.process_time() - used)
                    wall[client].append(time.perf_counter() - started)
            c = {client: statistics.median(values) * 1000 for client, values in cpu.items()}
            w = {client: statistics.median(values) * 1000 for client, values in wall.items()}
            print(f"  {label:<22} {c['botocore']:12.3f} {c['wire']:9.3f} {c['wire'] / c['botocore']:5.2f}x   "
                  f"{w['botocore']:13.2f} {w['wire']:9.2f} {w['wire'] / w['botocore']:5.2f}x")
        print(f"load average at the end: {load_average()}")
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
