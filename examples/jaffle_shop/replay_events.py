"""Replay a day of the shop's events through `POST /push`: cart additions (one per item, minutes
before its order) to the streaming view `cart_events`, and the orders to `order_events`.

    python replay_events.py                      # starts `featurestore serve --push` itself, then stops it
    python replay_events.py --url http://127.0.0.1:6566 --speed 60

The day is the last 24 hours of the raw orders (data/raw), shifted so that it ends now. With
`--speed 0` (the default) every event is sent at once, in time order, in batches — a backlog:
events older than a view's longest window when they arrive are landed but counted nowhere (every
window that could hold them had closed before they were known, online and in training sets). With `--speed N` the day is played N times faster than real time, and each
event is stamped when it is sent: a live stream. A share of the events (`--late-share`) is held
back and sent a few batches late, and every tenth batch is sent twice (a client retrying after
a lost answer): each event has an id, so a retry changes nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent


def day_of_events(raw: Path, seed: int) -> list[tuple[datetime, str, dict]]:
    """(original time, view, event) of the last 24 hours of orders, in time order."""
    rng = random.Random(seed)
    with open(raw / "raw_products.csv", newline="", encoding="utf-8") as handle:
        prices = {row["sku"]: int(row["price"]) / 100 for row in csv.DictReader(handle)}
    with open(raw / "raw_orders.csv", newline="", encoding="utf-8") as handle:
        orders = list(csv.DictReader(handle))
    last = max(datetime.fromisoformat(order["ordered_at"]) for order in orders)
    orders = {order["id"]: order for order in orders if datetime.fromisoformat(order["ordered_at"]) > last - timedelta(days=1)}
    events = []
    with open(raw / "raw_items.csv", newline="", encoding="utf-8") as handle:
        for item in csv.DictReader(handle):
            order = orders.get(item["order_id"])
            if order is None:
                continue
            added = datetime.fromisoformat(order["ordered_at"]) - timedelta(minutes=rng.uniform(1, 20))
            events.append((added, "cart_events", {"customer_id": order["customer"], "event_id": item["id"],
                                                  "amount": prices[item["sku"]]}))
    for order in orders.values():
        events.append((datetime.fromisoformat(order["ordered_at"]), "order_events",
                       {"customer_id": order["customer"], "order_id": order["id"],
                        "order_total": int(order["order_total"]) / 100}))
    events.sort(key=lambda entry: entry[0])
    return events


def push(session: requests.Session, url: str, view: str, events: list[dict]) -> dict:
    columns = list(events[0])
    body = {"push_source_name": view, "df": {column: [event[column] for event in events] for column in columns}}
    answer = session.post(url + "/push", json=body, timeout=120)
    if answer.status_code != 200:
        raise SystemExit(f"POST /push to {view} answered {answer.status_code}: {answer.text}")
    return answer.json()


def replay(url: str, raw: Path, speed: float, batch: int, late_share: float, seed: int) -> dict:
    events = day_of_events(raw, seed)
    if not events:
        raise SystemExit(f"No orders in {raw}/raw_orders.csv.")
    rng = random.Random(seed)
    session = requests.Session()
    now = datetime.now(timezone.utc)
    start, first = time.monotonic(), events[0][0]
    shift = now - events[-1][0].replace(tzinfo=timezone.utc)
    totals = {"events": 0, "pushes": 0, "written_online": 0, "duplicates": 0, "windows_closed": 0, "late": 0}
    held: list[tuple[int, str, dict]] = []  # (batch it is due in, view, event): late arrivals
    pending: dict[str, list[dict]] = {}
    batches = 0

    def flush():
        nonlocal batches
        batches += 1
        for view, rows in list(pending.items()):
            for start_at in range(0, len(rows), batch):
                chunk = rows[start_at:start_at + batch]
                for attempt in range(2 if batches % 10 == 0 else 1):  # now and then a retry
                    result = push(session, url, view, chunk)
                    totals["pushes"] += 1
                    for key in ("written_online", "duplicates", "windows_closed"):
                        totals[key] += result.get(key, 0)
                totals["events"] += len(chunk)
        pending.clear()
        for entry in [entry for entry in held if entry[0] <= batches]:
            held.remove(entry)
            pending.setdefault(entry[1], []).append(entry[2])

    for original, view, event in events:
        if speed > 0:  # live: wait until the event is due, and stamp it then
            due = (original - first).total_seconds() / speed
            if due > time.monotonic() - start:
                flush()
                time.sleep(max(0.0, due - (time.monotonic() - start)))
            moment = datetime.now(timezone.utc)
        else:  # backlog: the day ends now
            moment = original.replace(tzinfo=timezone.utc) + shift
        event = dict(event, event_at=moment.isoformat())
        if rng.random() < late_share:
            held.append((batches + rng.randint(1, 3), view, event))
            totals["late"] += 1
        else:
            pending.setdefault(view, []).append(event)
        if sum(len(rows) for rows in pending.values()) >= batch:
            flush()
    while pending or held:
        flush()
    totals["seconds"] = round(time.monotonic() - start, 1)
    return totals


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(project: Path) -> tuple[subprocess.Popen, str]:
    """`featurestore serve --push` for the project on a free port, once it answers /health."""
    port = free_port()
    executable = Path(sys.executable).parent / "featurestore"
    process = subprocess.Popen([str(executable), "serve", "--push", "--port", str(port), "-p", str(project)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"featurestore serve exited: {process.stderr.read()}")
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("featurestore serve did not answer in 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running feature server with --push (default: start one for this project)")
    parser.add_argument("--project", default=str(HERE), help="the dbt project (for the server started here)")
    parser.add_argument("--raw", default=str(HERE / "data" / "raw"), help="the raw files")
    parser.add_argument("--speed", type=float, default=0.0, help="times real time (0: the whole day at once)")
    parser.add_argument("--batch", type=int, default=200, help="events per push")
    parser.add_argument("--late-share", type=float, default=0.05, help="share of events sent a few batches late")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    process = None
    url = arguments.url
    if url is None:
        process, url = serve(Path(arguments.project))
    try:
        totals = replay(url.rstrip("/"), Path(arguments.raw), arguments.speed, arguments.batch, arguments.late_share,
                        arguments.seed)
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"replayed {totals['events']:,} events in {totals['pushes']:,} pushes ({totals['seconds']} s): "
          f"{totals['written_online']:,} counted online, {totals['windows_closed']:,} older than every window "
          f"(their windows had closed: landed, counted nowhere), {totals['duplicates']:,} retried copies ignored, {totals['late']:,} sent late")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
