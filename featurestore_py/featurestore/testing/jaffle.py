"""A seeded, deterministic Jaffle Shop generator with jafgen's file layout.

jafgen's output differs run to run; tests need the same rows every time, and benchmarks need
sizes jafgen does not offer. Same columns and units as jafgen (amounts in cents).
"""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

PRODUCTS = [
    ("JAF-001", "nutellaphone who dis?", "jaffle", 1100),
    ("JAF-002", "doctor stew", "jaffle", 1100),
    ("JAF-003", "the krautback", "jaffle", 1200),
    ("BEV-001", "tangaroo", "beverage", 600),
    ("BEV-002", "chai and mighty", "beverage", 500),
    ("BEV-003", "vanilla ice", "beverage", 600),
]


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
                orders.append((order_id, customer_id, ordered_at.isoformat(), store[0], subtotal, tax, subtotal + tax))

    _write(out / "raw_customers.csv", ["id", "name"], customers)
    _write(out / "raw_stores.csv", ["id", "name", "opened_at", "tax_rate"],
           [(s[0], s[1], s[2].isoformat(), s[3]) for s in stores])
    _write(out / "raw_products.csv", ["sku", "name", "type", "price", "description"],
           [(sku, name, kind, price, f"a {kind}") for sku, name, kind, price in PRODUCTS])
    _write(out / "raw_orders.csv", ["id", "customer", "ordered_at", "store_id", "subtotal", "tax_paid", "order_total"], orders)
    _write(out / "raw_items.csv", ["id", "order_id", "sku"], items)
    return {"customers": len(customers), "stores": len(stores), "orders": len(orders), "items": len(items)}


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
    if days == 0:
        return 0
    orders["ordered_at"] = (ordered_at + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%dT%H:%M:%S")
    orders.to_csv(folder / "raw_orders.csv", index=False)
    stores = pd.read_csv(folder / "raw_stores.csv")
    stores["opened_at"] = (pd.to_datetime(stores["opened_at"]) + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%dT%H:%M:%S")
    stores.to_csv(folder / "raw_stores.csv", index=False)
    return days


if __name__ == "__main__":  # python -m featurestore.testing.jaffle shift DIR
    import sys

    if sys.argv[1:2] == ["shift"] and len(sys.argv) == 3:
        print(f"shifted the Jaffle Shop by {shift_to_recent(sys.argv[2])} days so it ends yesterday")
    else:
        sys.exit("usage: python -m featurestore.testing.jaffle shift DIR")
