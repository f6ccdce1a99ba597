"""Point-in-time training-set export vs the best hand-written DuckDB query, same data, same run.

    .venv/bin/python benchmarks/bench_training.py [--sizes 100000:1000000,1000000:10000000] [--repeats 3]

Data (seeded, generated inside DuckDB): feature rows with an event time over one year, a
created time an hour later, 5% of rows restated (same key and event, created later), and
entity rows at random times over the same year, 5% of them with unknown keys. Two shapes:
"many keys" (10 feature rows per key) and "few keys" (2,000 keys, hundreds to thousands of
rows per key). The feature view is built by dbt with the feature_view materialization; TTL 30d.

Measured, each in a fresh subprocess (so peak RSS is that query's alone), median of --repeats:
  ours/relation   store.get_historical_features(<entity relation in the warehouse>).to_arrow()
  ours/DataFrame  the same from a pandas DataFrame (loaded into the warehouse first)
  asof            hand-written: ASOF LEFT JOIN over the snapshot's winning rows, TTL by CASE
  interval        hand-written: LEFT JOIN on the key, filtered by the validity interval and TTL
Both hand-written queries read the same snapshot table and return Arrow; the ratio is against
the faster. Also: the CLI export end to end (process start to Parquet written).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TTL_DAYS = 30
FEATURES = ["bench_view:f_double", "bench_view:f_int", "bench_view:f_str"]

HAND_WRITTEN = {
    "asof": f"""
        select e.entity_id, e.event_timestamp, e.label,
            case when f.valid_from >= e.event_timestamp - interval {TTL_DAYS} day then f.f_double end as f_double,
            case when f.valid_from >= e.event_timestamp - interval {TTL_DAYS} day then f.f_int end as f_int,
            case when f.valid_from >= e.event_timestamp - interval {TTL_DAYS} day then f.f_str end as f_str
        from main.bench_entities e
        asof left join (select * from main.bench_view where valid_to is null or valid_to > valid_from) f
            on f.entity_id = e.entity_id and e.event_timestamp >= f.valid_from""",
    "interval": f"""
        select e.entity_id, e.event_timestamp, e.label, f.f_double, f.f_int, f.f_str
        from main.bench_entities e
        left join main.bench_view f
            on f.entity_id = e.entity_id
            and f.valid_from <= e.event_timestamp
            and (f.valid_to is null or f.valid_to > e.event_timestamp)
            and f.valid_from >= e.event_timestamp - interval {TTL_DAYS} day""",
}


# -- the measured child process --------------------------------------------------------------------

def child(kind: str, project_dir: str, db_path: str) -> None:
    """Run one measurement and print {"seconds", "rss_mb", "rows"} as JSON."""
    import duckdb

    started = time.perf_counter()
    if kind in HAND_WRITTEN:
        with duckdb.connect(db_path, read_only=True) as con:
            con.execute("set threads = 2")
            started = time.perf_counter()
            rows = con.sql(HAND_WRITTEN[kind]).to_arrow_table().num_rows
    else:
        from featurestore import FeatureStore

        store = FeatureStore(project_dir, env={"FEATURESTORE_DUCKDB_PATH": db_path})
        store.registry  # reading the manifest is not part of the query
        if kind == "ours/DataFrame":
            with duckdb.connect(db_path, read_only=True) as con:
                frame = con.sql("select * from main.bench_entities").to_df()
            started = time.perf_counter()
            rows = store.get_historical_features(frame, FEATURES).to_arrow().num_rows
        else:
            started = time.perf_counter()
            rows = store.get_historical_features("main.bench_entities", FEATURES).to_arrow().num_rows
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(), "rows": rows}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, project_dir: Path, db_path: Path) -> dict:
    output = subprocess.run([sys.executable, __file__, "--child", kind, str(project_dir), str(db_path)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# -- data ------------------------------------------------------------------------------------------

def generate(db_path: Path, entity_rows: int, feature_rows: int, keys: int, seed: int = 1) -> None:
    import duckdb

    year = 365 * 86400
    with duckdb.connect(str(db_path)) as con:
        con.execute(f"""
            create or replace table main.events as
            with base as (
                select i % {keys} as entity_id,
                       timestamp '2024-01-01' + to_seconds(hash(i, {seed}) % {year}) as ev,
                       i
                from range({feature_rows * 20 // 21}) t(i)
            )
            select entity_id, ev,
                   ev + interval 1 hour + case when hash(i, {seed} + 9) % 20 = 0 then interval 2 day else interval 0 day end as created,
                   (hash(i, {seed} + 1) % 100000) / 100.0 as f_double,
                   hash(i, {seed} + 2) % 1000 as f_int,
                   'v' || (hash(i, {seed} + 3) % 50) as f_str
            from base
            union all  -- restatements: same key and event, created a day later
            select entity_id, ev, ev + interval 1 day, 0.5, -1, 'restated'
            from base where hash(i, {seed} + 4) % 20 = 0""")
        con.execute(f"""
            create or replace table main.bench_entities as
            select case when hash(j, {seed} + 5) % 20 = 0 then {keys} + j else hash(j, {seed} + 6) % {keys} end as entity_id,
                   timestamp '2024-01-01' + to_seconds(hash(j, {seed} + 7) % {year}) as event_timestamp,
                   hash(j, {seed} + 8) % 2 as label
            from range({entity_rows}) t(j)""")


def prepare_project(work: Path) -> Path:
    project_dir = work / "project"
    shutil.copytree(HERE / "snapshot_project", project_dir)
    shutil.copy2(REPO / "tests" / "fixtures" / "profiles.yml", project_dir / "profiles.yml")
    (project_dir / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    schema = project_dir / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("owner: bench@example.com", f"owner: bench@example.com\n          ttl: {TTL_DAYS}d"))
    return project_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000:1000000,1000000:10000000", help="entity_rows:feature_rows,...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from featurestore.dbt import DbtProject

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    project_dir = prepare_project(work)
    print(f"{'size':>18} {'shape':>9} {'measure':>15} {'median s':>9} {'peak MB':>8} {'x best s':>9} {'x its MB':>9}")
    for size in args.sizes.split(","):
        entity_rows, feature_rows = (int(n) for n in size.split(":"))
        for shape, keys in (("many keys", feature_rows // 10), ("few keys", 2000)):
            db_path = work / f"bench-{entity_rows}-{feature_rows}-{keys}.duckdb"
            generate(db_path, entity_rows, feature_rows, keys)
            dbt = DbtProject.at(project_dir, env={"FEATURESTORE_DUCKDB_PATH": str(db_path)})
            dbt.run("deps", "--quiet")
            dbt.run("run", "--select", "bench_view", "--full-refresh", "--quiet")
            results = {}
            for kind in ("asof", "interval", "ours/relation", "ours/DataFrame"):
                runs = [measure(kind, project_dir, db_path) for _ in range(args.repeats)]
                assert len({r["rows"] for r in runs}) == 1 and runs[0]["rows"] == entity_rows, runs
                results[kind] = (statistics.median(r["seconds"] for r in runs), statistics.median(r["rss_mb"] for r in runs))
            best = min(("asof", "interval"), key=lambda k: results[k][0])
            for kind, (seconds, rss) in results.items():
                ratio = f"{seconds / results[best][0]:.2f}" if kind.startswith("ours") else ("best" if kind == best else "")
                mem = f"{rss / results[best][1]:.2f}" if kind.startswith("ours") else ""
                print(f"{entity_rows:>8}x{feature_rows:<9} {shape:>9} {kind:>15} {seconds:9.3f} {rss:8.0f} {ratio:>9} {mem:>9}")
            out = work / "export.parquet"
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "featurestore"), "export", "-p", str(project_dir),
                            "--entities", "main.bench_entities", *sum((["-f", f] for f in FEATURES), []),
                            "--out", str(out)], check=True, capture_output=True,
                           env={**__import__("os").environ, "FEATURESTORE_DUCKDB_PATH": str(db_path)})
            print(f"{'':>18} {shape:>9} {'CLI export e2e':>15} {time.perf_counter() - started:9.3f}")
            db_path.unlink()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
