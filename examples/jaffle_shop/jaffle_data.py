"""The Jaffle Shop demo's data: a seeded generator with jafgen's file layout, the date shift
that makes jafgen's output recent, late and corrected orders appended as a new file, and the
loader for warehouses that cannot read the files in place (PostgreSQL).

    python jaffle_data.py shift DIR               # make jafgen's output end yesterday; add loaded_at
    python jaffle_data.py late DIR                # append late and corrected orders, loaded now
    python jaffle_data.py load-raw -t postgres    # the raw files into the `raw` schema

jafgen's output differs run to run; tests need the same rows every time, and benchmarks need
sizes jafgen does not offer. Same columns and units as jafgen (amounts in cents), plus
`loaded_at` on orders: when each row reached the warehouse (an hour after the order, for the
history; the time of the append, for appended files).
"""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

PRODUCTS = [
    ("JAF-001", "nutellaphone who dis?", "jaffle", 1100),
    ("JAF-002", "doctor stew", "jaffle", 1100),
    ("JAF-003", "the krautback", "jaffle", 1200),
    ("BEV-001", "tangaroo", "beverage", 600),
    ("BEV-002", "chai and mighty", "beverage", 500),
    ("BEV-003", "vanilla ice", "beverage", 600),
]


ORDER_COLUMNS = ["id", "customer", "ordered_at", "store_id", "subtotal", "tax_paid", "order_total", "loaded_at"]
RAW_TABLES = ("raw_customers", "raw_orders", "raw_items", "raw_products", "raw_stores")
LOAD_DELAY = timedelta(hours=1)  # the history: each order reached the warehouse an hour after it was placed


@dataclass(frozen=True)
class JaffleSize:
    customers: int = 60
    stores: int = 3
    days: int = 75
    orders_per_customer_per_week: float = 1.0


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def write_raw_files(directory: str | Path, size: JaffleSize = JaffleSize(), seed: int = 7,
                    start: datetime = datetime(2024, 1, 1)) -> dict[str, int]:
    """Write raw_{customers,orders,items,products,stores}.csv into directory; return row counts."""
    rng = random.Random(seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    stores = [(_uuid(rng), f"Store {i}", start + timedelta(days=7 * i), 0.04 + 0.01 * i) for i in range(size.stores)]
    customers = [(_uuid(rng), f"Customer {i}") for i in range(size.customers)]
    orders, items = [], []
    for customer_id, _ in customers:
        home = rng.choice(stores)
        rate = size.orders_per_customer_per_week * rng.uniform(0.2, 2.5) / 7
        first_day = rng.randrange(0, max(1, size.days - 7))
        quit_day = first_day + rng.randrange(10, size.days + 30)  # some customers churn
        for day in range(first_day, min(size.days, quit_day)):
            n = 1 if rng.random() < rate else 0
            if day == first_day:
                n = 1
            for _ in range(n):
                store = home if rng.random() < 0.85 else rng.choice(stores)
                # whole minutes, and sometimes exactly midnight, to exercise window edges
                minute = 0 if rng.random() < 0.05 else rng.randrange(7 * 60, 22 * 60)
                ordered_at = start + timedelta(days=day, minutes=minute)
                if ordered_at < store[2]:
                    store = stores[0]
                order_id = _uuid(rng)
                subtotal = 0
                for _ in range(rng.randint(1, 4)):
                    sku, _, _, price = rng.choice(PRODUCTS)
                    items.append((_uuid(rng), order_id, sku))
                    subtotal += price
                tax = round(subtotal * store[3])
                orders.append((order_id, customer_id, ordered_at.isoformat(), store[0], subtotal, tax, subtotal + tax,
                               (ordered_at + LOAD_DELAY).isoformat()))

    _write(out / "raw_customers.csv", ["id", "name"], customers)
    _write(out / "raw_stores.csv", ["id", "name", "opened_at", "tax_rate"],
           [(s[0], s[1], s[2].isoformat(), s[3]) for s in stores])
    _write(out / "raw_products.csv", ["sku", "name", "type", "price", "description"],
           [(sku, name, kind, price, f"a {kind}") for sku, name, kind, price in PRODUCTS])
    _write(out / "raw_orders.csv", ORDER_COLUMNS, orders)
    _write(out / "raw_items.csv", ["id", "order_id", "sku"], items)
    write_seed_pushes(out)
    return {"customers": len(customers), "stores": len(stores), "orders": len(orders), "items": len(items)}


def write_seed_pushes(directory: str | Path, count: int = 20) -> Path:
    """The carts the shop "pushed" before its latest orders (the push view's first rows), as the
    server would have landed them: <project>/landing/customer_live_features/push-seed.parquet, for
    the raw files in <project>/data/raw. Without it the push view of a fresh demo is empty."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = Path(directory)
    with open(raw / "raw_orders.csv", newline="", encoding="utf-8") as handle:
        orders = sorted(csv.DictReader(handle), key=lambda row: row["ordered_at"])
    latest: dict[str, dict] = {}
    for order in reversed(orders):
        latest.setdefault(order["customer"], order)
        if len(latest) == count:
            break
    rows = sorted(latest.values(), key=lambda row: row["customer"])
    events = [datetime.fromisoformat(row["ordered_at"]) - timedelta(minutes=10) for row in rows]
    table = pa.table({
        "customer_id": [row["customer"] for row in rows],
        "event_at": pa.array(events, pa.timestamp("us")),
        "pushed_at": pa.array([moment + timedelta(seconds=1) for moment in events], pa.timestamp("us")),
        "cart_items": pa.array([1 + int(row["subtotal"]) % 4 for row in rows], pa.int64()),
        "cart_value": [int(row["subtotal"]) / 100 for row in rows],
    })
    landing = raw.parent.parent / "landing" / "customer_live_features"
    landing.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, landing / "push-seed.parquet")
    return landing / "push-seed.parquet"


def _write(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def shift_to_recent(directory: str | Path, today: date | None = None) -> int:
    """Move every timestamp of the raw files by whole days so the last order falls yesterday.

    jafgen simulates from 2018; the demo's online reads apply TTLs against the clock, so the demo
    data is made recent once, when it is generated. Returns the number of days shifted.
    """
    import pandas as pd

    folder = Path(directory)
    orders = pd.read_csv(folder / "raw_orders.csv")
    ordered_at = pd.to_datetime(orders["ordered_at"])
    days = ((today or date.today()) - ordered_at.max().date()).days - 1
    if days == 0 and "loaded_at" in orders.columns:
        return 0
    orders["ordered_at"] = (ordered_at + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%dT%H:%M:%S")
    orders["loaded_at"] = (pd.to_datetime(orders["ordered_at"]) + LOAD_DELAY).dt.strftime("%Y-%m-%dT%H:%M:%S")
    orders.to_csv(folder / "raw_orders.csv", index=False)
    stores = pd.read_csv(folder / "raw_stores.csv")
    stores["opened_at"] = (pd.to_datetime(stores["opened_at"]) + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%dT%H:%M:%S")
    stores.to_csv(folder / "raw_stores.csv", index=False)
    return days


def append_late_orders(directory: str | Path, orders: list[dict], name: str, loaded_at: datetime | None = None) -> Path:
    """Write `raw_orders_<name>.csv`: orders that arrive late (an id not seen before) or correct
    earlier ones (an id already loaded), all loaded at `loaded_at` (default: now). Each dict
    has the raw_orders columns but loaded_at."""
    # naive UTC, as every timestamp of the demo: a load is never stamped after the build's clock
    stamp = (loaded_at or datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)).isoformat()
    path = Path(directory) / f"raw_orders_{name}.csv"
    _write(path, ORDER_COLUMNS, [[order[c] for c in ORDER_COLUMNS[:-1]] + [stamp] for order in orders])
    return path


def late_and_corrected_orders(directory: str | Path, count: int = 3, seed: int = 1) -> list[dict]:
    """Some late orders (new ids, dated in the past) and corrections (existing ids, a new total)."""
    import pandas as pd

    rng = random.Random(seed)
    orders = pd.read_csv(Path(directory) / "raw_orders.csv").to_dict("records")
    chosen = rng.sample(orders, 2 * count)
    late = [dict(order, id=_uuid(rng), order_total=order["order_total"] + 100000) for order in chosen[:count]]
    corrected = [dict(order, order_total=order["order_total"] * 3, subtotal=order["subtotal"] * 3) for order in chosen[count:]]
    return late + corrected


def load_raw(store, directory: str | Path) -> dict[str, int]:
    """Load the raw CSV files (every `<table>*.csv`) into the warehouse's `raw` schema
    (FEATURESTORE_RAW_SCHEMA), for
    warehouses that cannot read them in place. Returns row counts."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    folder = Path(directory)
    counts = {}
    schema = store.project.getenv("FEATURESTORE_RAW_SCHEMA", "raw")  # the sources' schema (_sources.yml)
    with store.connect(read_only=False) as warehouse:
        warehouse.execute(f"create schema if not exists {warehouse.quote(schema)}")
        for name in RAW_TABLES:
            files = sorted(folder.glob(f"{name}*.csv"))
            if not files:
                raise SystemExit(f"{folder} has no {name}.csv; run `make data` first.")
            table = pa.concat_tables([pacsv.read_csv(path) for path in files], promote_options="default")
            warehouse.load_arrow(f"{warehouse.quote(schema)}.{warehouse.quote(name)}", table)
            counts[name] = table.num_rows
    return counts


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    shift = commands.add_parser("shift", help="make jafgen's data end yesterday and give orders a load time")
    shift.add_argument("directory")
    late = commands.add_parser("late", help="append late and corrected orders, loaded now")
    late.add_argument("directory")
    late.add_argument("--name", default=datetime.now().strftime("late_%Y%m%dT%H%M%S"))
    pushes = commands.add_parser("pushes", help="write the push view's seed rows to the landing area")
    pushes.add_argument("directory")
    load = commands.add_parser("load-raw", help="load the raw files into the warehouse's raw schema")
    load.add_argument("--dir", default="data/raw")
    load.add_argument("--target", "-t", default=None)
    load.add_argument("--project-dir", "-p", default=str(Path(__file__).resolve().parent))
    arguments = parser.parse_args()
    if arguments.command == "shift":
        print(f"shifted the Jaffle Shop by {shift_to_recent(arguments.directory)} days so it ends yesterday")
    elif arguments.command == "pushes":
        print(f"wrote {write_seed_pushes(arguments.directory)}: carts pushed before the latest orders")
    elif arguments.command == "late":
        path = append_late_orders(arguments.directory, late_and_corrected_orders(arguments.directory), arguments.name)
        print(f"wrote {path}: late and corrected orders, loaded now")
    else:
        from featurestore import FeatureStore

        project = FeatureStore(arguments.project_dir, arguments.target, strict=False)
        for table, rows in load_raw(project, project.project.resolve_path(arguments.dir)).items():
            print(f"raw.{table}: {rows} rows")
        sys.exit(0)
