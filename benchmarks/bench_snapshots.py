"""Incremental feature_view run for 1% new rows vs a full build, on DuckDB.

    .venv/bin/python benchmarks/bench_snapshots.py [--rows 5000000] [--keys 500000] [--repeats 3]

Times are each model's own `execution_time` from target/run_results.json, so dbt's start-up
is not counted. Each repeat: full build (--full-refresh) of everything loaded so far, then
1% new rows arrive (80% newer than the key's latest event, 15% late, 5% corrections of an
existing event), then the incremental run. At the end the incremental table is compared
with a full refresh of the same rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import duckdb

from featurestore.dbt import DbtProject

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
T0 = "timestamp '2024-01-01'"
YEAR_SECONDS = 365 * 86400


def generate(con, rows: int, keys: int) -> None:
    con.execute(f"""
        create or replace table main.events as
        select
            i % {keys} as entity_id,
            {T0} + to_seconds(hash(i, 1) % {YEAR_SECONDS}) as ev,
            {T0} + to_seconds(hash(i, 1) % {YEAR_SECONDS}) + interval 1 hour as created,
            (hash(i, 2) % 100000) / 100.0 as f_double,
            hash(i, 3) % 1000 as f_int,
            'v' || (hash(i, 4) % 50) as f_str
        from range({rows}) as t(i)""")


def add_batch(con, batch: int, rows: int, keys: int) -> None:
    """1% new rows, loaded a day after everything before them."""
    con.execute(f"""
        insert into main.events
        with loaded as (select max(created) as at from main.events),
        fresh as (
            select
                hash(j, 10 + {batch}) % {keys} as entity_id,
                case when j % 20 < 16 then loaded.at + to_seconds(j % 86400)            -- newer than all
                     else {T0} + to_seconds(hash(j, 20 + {batch}) % {YEAR_SECONDS})     -- late
                end as ev,
                loaded.at + interval 1 day as created,
                (hash(j, 30) % 100000) / 100.0 as f_double,
                hash(j, 31) % 1000 as f_int,
                'n' || (hash(j, 32) % 50) as f_str
            from range({rows - rows // 20}) as t(j), loaded
        ),
        corrections as (
            select e.entity_id, e.ev, loaded.at + interval 1 day, e.f_double + 1, e.f_int, e.f_str
            from main.events e, loaded
            where hash(e.entity_id, e.ev, {batch}) % {max(1, 100 * 20)} = 0
            limit {rows // 20}
        )
        select * from fresh union all select * from corrections""")


def model_time(project_dir: Path) -> float:
    results = json.loads((project_dir / "target" / "run_results.json").read_text())
    return next(r["execution_time"] for r in results["results"] if r["unique_id"].endswith(".bench_view"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keys", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (dbt logs, database)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-snapshots-"))
    project_dir = work / "project"
    shutil.copytree(HERE / "snapshot_project", project_dir)
    shutil.copy2(REPO / "tests" / "fixtures" / "profiles.yml", project_dir / "profiles.yml")
    (project_dir / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    db_path = work / "bench.duckdb"
    dbt = DbtProject.at(project_dir, env={"FEATURESTORE_DUCKDB_PATH": str(db_path)})
    dbt.run("deps", "--quiet")

    batch_rows = args.rows // 100
    with duckdb.connect(str(db_path)) as con:
        generate(con, args.rows, args.keys)
    print(f"{args.rows:,} feature rows over {args.keys:,} keys; batches of {batch_rows:,} new rows (1%)")

    full_times, incremental_times = [], []
    for repeat in range(args.repeats):
        dbt.run("run", "--select", "bench_view", "--full-refresh", "--quiet")
        full_times.append(model_time(project_dir))
        with duckdb.connect(str(db_path)) as con:
            add_batch(con, repeat, batch_rows, args.keys)
        dbt.run("run", "--select", "bench_view", "--quiet")
        incremental_times.append(model_time(project_dir))
        print(f"  repeat {repeat + 1}: full {full_times[-1]:.2f} s, incremental {incremental_times[-1]:.2f} s")

    with duckdb.connect(str(db_path)) as con:
        con.execute("create table main.after_incremental as select * from main.bench_view")
        total = con.execute("select count(*) from main.events").fetchone()[0]
    dbt.run("run", "--select", "bench_view", "--full-refresh", "--quiet")
    with duckdb.connect(str(db_path)) as con:
        diff = con.execute("""select count(*) from (
            (select * from main.after_incremental except all select * from main.bench_view)
            union all
            (select * from main.bench_view except all select * from main.after_incremental))""").fetchone()[0]
        late = con.execute("select count(*) from main.bench_view where valid_to is not null and created > valid_to").fetchone()[0]

    full, incremental = statistics.median(full_times), statistics.median(incremental_times)
    print(f"rows at the end: {total:,}; rows differing between incremental and full refresh: {diff}")
    print(f"rows loaded after a later event (late or corrected): {late:,}")
    print(f"median full build {full:.3f} s, median incremental {incremental:.3f} s, ratio {incremental / full:.3f} (aim <= 0.1)")
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
