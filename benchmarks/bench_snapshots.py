"""Incremental feature_view run for 1% new rows vs a full build, on DuckDB.

    .venv/bin/python benchmarks/bench_snapshots.py [--rows 5000000] [--keys 500000] [--repeats 3]

Times are each model's own `execution_time` from target/run_results.json, so dbt's start-up
is not counted; where that time goes is read from dbt's debug log (each statement and its
"SQL status: OK in N seconds"), by phase: `statement_phases`. Each repeat: full build (--full-refresh) of everything loaded so far, then
1% new rows arrive (80% newer than the key's latest event, 15% late, 5% corrections of an
existing event), then the incremental run. At the end the incremental table is compared
with a full refresh of the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
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


# what a statement of the feature_view materialization does, recognised by how it starts
# (after dbt's /* comment */) and what it names; the first match wins
STATEMENT_PHASES = (
    (("create", "insert", "delete", "select", "with"), "__build", "build record"),
    (("delete",), "", "delete affected rows"),
    (("create",), "__fs_stage", "stage the touched buckets (Spark)"),
    (("insert",), "partition (_fs_bucket)", "overwrite the touched buckets (Spark)"),
    (("cache",), "__fs_new", "cache the batch (Spark)"),
    (("cache",), "__fs_bounds", "cache the batch bounds per key (Spark)"),
    (("cache",), "__fs_recomputed", "cache the recomputed rows (Spark)"),
    (("cache",), "", "compute a cached batch relation (Spark)"),
    (("select",), "select distinct pmod(hash(", "the batch's buckets (Spark)"),
    (("select",), "_fs_watermark", "the watermark's value (Spark)"),
    (("create", "drop"), "__fs_swapping", "swap marker (Spark)"),
    (("insert",), "__rejected", "rejected rows"),
    (("insert",), "", "insert recomputed rows"),
    (("create",), "__fs_recomputed", "recompute touched keys (rank versions + intervals)"),
    (("create",), "__fs_bounds", "batch bounds per key"),
    (("create",), "__fs_new", "select the batch"),
    (("create",), "lead(", "rank versions + intervals (one window sort)"),
    (("create",), "__rejected", "rejected rows"),
    (("select", "with"), "_fs_repeats", "repeated-version check"),
)


def _phase_of(text: str) -> str:
    body = text.split("*/", 1)[1] if text.lstrip().startswith("/*") else text
    first = body.strip().split(None, 1)[0].lower() if body.strip() else ""
    for starts, needle, name in STATEMENT_PHASES:
        if first in starts and needle in body:
            return name
    return "dbt bookkeeping"


def statement_phases(log_text: str, node: str = ".bench_view") -> dict[str, float]:
    """Seconds per materialization phase of one model, from a dbt debug log: every statement
    run `On model...<node>:` with the "SQL status: ... in N seconds" that follows it. What the
    statements do not account for of the model's execution_time is dbt's own work (rendering,
    catalog queries, renames and commits counted under "dbt bookkeeping")."""
    phases: dict[str, float] = {}
    current = None
    for line in log_text.splitlines():
        marker = "On model" in line and f"{node}:" in line
        if marker:
            current = [line.split(f"{node}:", 1)[1]]
        elif "SQL status:" in line and current is not None:
            seconds = float(line.rsplit(" in ", 1)[1].split()[0])
            phase = _phase_of("\n".join(current))
            phases[phase] = phases.get(phase, 0.0) + seconds
            current = None
        elif current is not None:
            current.append(line)
    return phases


def run_logged(dbt, project_dir: Path, *args: str) -> dict[str, float]:
    """Run dbt with a fresh debug log; return its statement phases plus "model total"."""
    log = project_dir / "logs" / "dbt.log"
    log.unlink(missing_ok=True)
    dbt.run(*args, "--quiet", "--log-level-file", "debug")
    phases = statement_phases(log.read_text())
    phases["model total"] = model_time(project_dir)
    return phases


def print_phases(title: str, runs: list[dict[str, float]]) -> None:
    print(f"  {title} (median s over {len(runs)}):")
    names = sorted({name for run in runs for name in run} - {"model total"}, key=lambda n: -statistics.median(r.get(n, 0.0) for r in runs))
    for name in names + ["model total"]:
        print(f"    {name:<52} {statistics.median(r.get(name, 0.0) for r in runs):8.3f}")
    statements = {name for _, _, name in STATEMENT_PHASES} | {"dbt bookkeeping"}
    unaccounted = statistics.median(r["model total"] - sum(v for k, v in r.items() if k in statements) for r in runs)
    print(f"    {'(dbt: rendering, adapter calls between statements)':<52} {unaccounted:8.3f}")


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
    shutil.copy2(REPO / "profiles" / "profiles.yml", project_dir / "profiles.yml")
    (project_dir / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    db_path = work / "bench.duckdb"
    dbt = DbtProject.at(project_dir, env={"FEATURESTORE_DUCKDB_PATH": str(db_path)})
    dbt.run("deps", "--quiet")

    batch_rows = args.rows // 100
    with duckdb.connect(str(db_path)) as con:
        generate(con, args.rows, args.keys)
    print(f"{args.rows:,} feature rows over {args.keys:,} keys; batches of {batch_rows:,} new rows (1%)")
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")

    full_runs, incremental_runs = [], []
    for repeat in range(args.repeats):
        full_runs.append(run_logged(dbt, project_dir, "run", "--select", "bench_view", "--full-refresh"))
        with duckdb.connect(str(db_path)) as con:
            add_batch(con, repeat, batch_rows, args.keys)
        incremental_runs.append(run_logged(dbt, project_dir, "run", "--select", "bench_view"))
        print(f"  repeat {repeat + 1}: full {full_runs[-1]['model total']:.2f} s, "
              f"incremental {incremental_runs[-1]['model total']:.2f} s")
    full_times = [run["model total"] for run in full_runs]
    incremental_times = [run["model total"] for run in incremental_runs]
    print_phases("full build", full_runs)
    print_phases("incremental build", incremental_runs)

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
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"median full build {full:.3f} s, median incremental {incremental:.3f} s, ratio {incremental / full:.3f} (aim <= 0.1)")
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
