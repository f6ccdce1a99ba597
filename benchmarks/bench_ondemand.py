"""On-demand features online: the latency they add to a 1-entity `get_online_features` (aim:
at most 1 ms at p50), against one moto server, in one run.

    .venv/bin/python benchmarks/bench_ondemand.py [--reads 300] [--runs 5]

The demo (examples/jaffle_shop) is built in a temporary folder and customer_features synced to
a local moto. Each run times, interleaved, the SDK's read of one customer's inputs
(customer_features: avg_order_value_30d, days_since_last_order) and the same read with the five
on-demand features of order_request_features computed from them and the request's two fields;
p50 and p99 per run, then the median of the runs' figures, the added p50 (the difference of the
two p50s) and the median of the per-pair differences.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = REPO / "examples" / "jaffle_shop"
INPUTS = ["customer_features:avg_order_value_30d", "customer_features:days_since_last_order"]
ON_DEMAND = [f"order_request_features:{name}" for name in ("cart_value_ratio", "is_large_order",
                                                            "value_per_day_since_last_order",
                                                            "typical_order_share_of_cart", "order_hour")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def built_demo(folder: Path) -> Path:
    """The demo copied into folder (this repository as its package), its raw data written, built."""
    project = folder / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb"))
    (project / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    sys.path.insert(0, str(EXAMPLE))
    from jaffle_data import write_raw_files

    write_raw_files(project / "data" / "raw")
    dbt = Path(sys.executable).with_name("dbt")
    for command in (["deps"], ["build", "--quiet"]):
        subprocess.run([str(dbt), *command, "--project-dir", str(project), "--profiles-dir", str(project)],
                       cwd=project, check=True, capture_output=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=300, help="timed reads of each kind per run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from featurestore import FeatureStore
    from featurestore.online.local import LocalDynamoDB, free_port

    work = Path(tempfile.mkdtemp(prefix="bench-ondemand-"))
    server = LocalDynamoDB(work / "moto", free_port())
    url = server.start()
    try:
        project = built_demo(work)
        store = FeatureStore(project, env={"FEATURESTORE_DYNAMODB_ENDPOINT": url,
                                           "FEATURESTORE_DUCKDB_PATH": str(project / "jaffle_shop.duckdb")})
        store.sync(["customer_features"])
        with store.connect() as warehouse:
            keys = [row[0] for row in warehouse.fetch_all("select distinct customer_id from customer_features")]
            newest = warehouse.fetch_all("select max(feature_ts) from customer_features")[0][0]
        now = newest.replace(tzinfo=timezone.utc)
        rng = random.Random(5)

        def request() -> list[dict]:
            return [{"customer_id": rng.choice(keys), "cart_value": rng.uniform(0, 500),
                     "ordered_at": datetime(2024, 3, 15, rng.randrange(24), tzinfo=timezone.utc)}]

        for _ in range(50):  # warm: connections, plans, the transpiled query
            store.get_online_features(INPUTS, request(), now=now)
            store.get_online_features(INPUTS + ON_DEMAND, request(), now=now)
        runs = []
        for run in range(args.runs):
            plain, with_on_demand = [], []
            for _ in range(args.reads):
                rows = request()
                started = time.perf_counter()
                store.get_online_features(INPUTS, rows, now=now)
                plain.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                store.get_online_features(INPUTS + ON_DEMAND, rows, now=now)
                with_on_demand.append((time.perf_counter() - started) * 1000)
            figures = {"plain p50": percentile(plain, 0.5), "plain p99": percentile(plain, 0.99),
                       "on-demand p50": percentile(with_on_demand, 0.5), "on-demand p99": percentile(with_on_demand, 0.99)}
            figures["added p50"] = figures["on-demand p50"] - figures["plain p50"]
            # the same, pair by pair (each pair reads the same key back to back): less of the
            # machine's noise than a difference of two medians
            figures["paired p50"] = statistics.median(b - a for a, b in zip(plain, with_on_demand))
            runs.append(figures)
            print(f"run {run + 1}: " + ", ".join(f"{name} {value:.3f} ms" for name, value in figures.items()))
        median = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
        print(f"\n1-entity get_online_features, {args.reads} reads x {args.runs} runs (median of the runs):")
        print(f"  inputs only ({len(INPUTS)} features):           p50 {median['plain p50']:.3f} ms, p99 {median['plain p99']:.3f} ms")
        print(f"  + {len(ON_DEMAND)} on-demand features:            p50 {median['on-demand p50']:.3f} ms, "
              f"p99 {median['on-demand p99']:.3f} ms")
        verdict = "within" if median["added p50"] <= 1.0 else "OVER"
        print(f"  added p50: {median['added p50']:.3f} ms ({verdict} the aim of 1 ms); "
              f"median added per pair of reads: {median['paired p50']:.3f} ms")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
