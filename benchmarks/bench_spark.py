"""Spark against DuckDB on one machine, in the same run: the feature_view full build, an
incremental build of 1% new rows, and a point-in-time export of N entity rows; the driver's
memory as the view grows; local[1] against local[2].

    .venv/bin/python benchmarks/bench_spark.py [--rows 10000000] [--keys 1000000] [--entities 1000000]
        [--memory-rows 1000000,10000000] [--cores-rows 2000000] [--small-batch 10] [--repeats 1]
        [--masters local[1],local[2],cluster] [--cores-only]
        [--rebuild-rows 2000000] [--rebuild-repeats 3] [--sweep-buckets 1,4,8,16] [--rebuild-only]

`--masters` are the Spark masters compared at --cores-rows: `local[n]`, a `spark://` URL, or
`cluster`: a standalone master and two workers (1 core, 1g each) started on this machine from
pyspark's own scripts for the run (tests/spark_cluster.py), the driver in its own process.
`--cores-only` runs only that comparison.

Incremental against a rebuild (`--rebuild-only` runs only this): 1% new rows spread over all
keys (past the model's `snapshot_rebuild_share`, so the run rebuilds) and 1% on the keys of one
of the 16 buckets, each against the full build of the same table, medians of
`--rebuild-repeats` with the load average. Each worker builds the table, rebuilds it once (the
JVM's first build is slower), then runs incremental, `--full-refresh`, `--full-refresh`,
incremental, each after a new batch of the same shape (A B B A: a JVM still warming up favours
neither; the `--full-refresh` is the rebuild the fallback stands for), and reports the mean of
each kind and the time per statement kind of both (`worker --keep-logs DIR` keeps the dbt debug
logs); `--sweep-buckets` times batches on k of the 16 buckets with the fallback off, which is how
the default share was chosen.

Each measurement runs in its own process (`worker`), so a JVM's start and a process's peak
memory are its own. Times: the model's execution_time from dbt's run_results.json (dbt's and
the JVM's start-up not counted; reported apart as "dbt command"), and the export's wall time
(entity rows from Arrow, point-in-time join, result written as Parquet: one file on DuckDB,
a directory written by the executors on Spark). Memory: the Python process's peak RSS (what
a collect on the driver would grow) and, on Spark, the JVM's (driver and, in local mode, the
executors; capped by spark.driver.memory), read after the export and a sync-style read of
every current row, partition by partition, which writes nowhere.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_snapshots import _phase_of  # noqa: E402  (what a materialization statement does)
REPO = HERE.parent
YEAR_SECONDS = 365 * 86400


def _generate_sql(engine: str, rows: int, keys: int) -> list[str]:
    """The events table: `rows` rows over `keys` keys across a year (the same shape on both)."""
    if engine == "duckdb":
        return [f"""create or replace table main.events as
            select i % {keys} as entity_id,
                   timestamp '2024-01-01' + to_seconds(hash(i, 1) % {YEAR_SECONDS}) as ev,
                   timestamp '2024-01-01' + to_seconds(hash(i, 1) % {YEAR_SECONDS}) + interval 1 hour as created,
                   (hash(i, 2) % 100000) / 100.0 as f_double, cast(hash(i, 3) % 1000 as bigint) as f_int,
                   'v' || (hash(i, 4) % 50) as f_str
            from range({rows}) as t(i)"""]
    return ["create schema if not exists bench", "drop table if exists bench.events", f"""
        create table bench.events using parquet as
        select id % {keys} as entity_id,
               timestamp '2024-01-01' + make_dt_interval(0, 0, 0, pmod(hash(id, 1), {YEAR_SECONDS})) as ev,
               timestamp '2024-01-01' + make_dt_interval(0, 0, 0, pmod(hash(id, 1), {YEAR_SECONDS})) + interval 1 hour as created,
               cast(pmod(hash(id, 2), 100000) / 100.0 as double) as f_double, cast(pmod(hash(id, 3), 1000) as bigint) as f_int,
               concat('v', pmod(hash(id, 4), 50)) as f_str
        from range({rows})"""]


def _batch_sql(engine: str, rows: int, keys: int, buckets: tuple[int, int] | None = None) -> str:
    """New rows (1% by default) over min(rows, keys) keys, loaded a day after everything before:
    80% newer than every event, 20% late. `buckets` (Spark): (k, n) puts them on the keys of k
    of the n snapshot buckets only."""
    if engine == "duckdb":
        return f"""insert into main.events
            with loaded as (select max(created) as at from main.events)
            select hash(j, 10) % {min(rows, keys)}, case when j % 5 < 4 then loaded.at + to_seconds(j % 86400)
                   else timestamp '2024-01-01' + to_seconds(hash(j, 20) % {YEAR_SECONDS}) end,
                   loaded.at + interval 1 day, (hash(j, 30) % 100000) / 100.0, cast(hash(j, 31) % 1000 as bigint),
                   'n' || (hash(j, 32) % 50)
            from range({rows}) as t(j), loaded"""
    if buckets:  # as many rows, drawn from the keys whose bucket (see spark.sql) is one of the first k
        # (hashed as the table's bigint column: pmod() of the generator gives an int, which hashes apart)
        touched, total = buckets
        return f"""insert into bench.events
            select * from ({_batch_sql(engine, rows * total // touched + 1000, keys).split(chr(10), 1)[1]}) as batch
            where pmod(hash(cast(batch.entity_id as bigint)), {total}) < {touched} limit {rows}"""
    return f"""insert into bench.events
        select pmod(hash(id, 10), {min(rows, keys)}) as entity_id, case when id % 5 < 4 then loaded.at + make_dt_interval(0, 0, 0, id % 86400)
               else timestamp '2024-01-01' + make_dt_interval(0, 0, 0, pmod(hash(id, 20), {YEAR_SECONDS})) end,
               loaded.at + interval 1 day, cast(pmod(hash(id, 30), 100000) / 100.0 as double),
               cast(pmod(hash(id, 31), 1000) as bigint), concat('n', pmod(hash(id, 32), 50))
        from range({rows}) cross join (select max(created) as at from bench.events) as loaded"""


def _entities(count: int, keys: int):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(7)
    seconds = rng.integers(0, YEAR_SECONDS, count)
    return pa.table({"entity_id": pa.array(rng.integers(0, keys, count), pa.int64()),
                     "event_timestamp": pa.array(np.datetime64("2024-01-01") + seconds.astype("timedelta64[s]"))
                     .cast(pa.timestamp("us"))})


def statement_phases(log_text: str, node: str = ".bench_view") -> dict[str, float]:
    """Seconds per materialization phase of one model, from a dbt debug log: each statement run
    `On model...<node>:` timed from its start to the next one's (bench_snapshots' phases take
    dbt's "SQL status ... in N seconds", which on Spark stops before a select's rows are
    fetched, and so before its job runs). Includes dbt's own work between statements."""
    starts: list[tuple[float, str]] = []
    current, end = None, None
    for line in log_text.splitlines():
        stamp = line[:15]
        if "On model" in line and f"{node}:" in line:
            current = [_seconds(stamp), [line.split(f"{node}:", 1)[1]]]
        elif "SQL status:" in line and current is not None:
            starts.append((current[0], _phase_of("\n".join(current[1]))))
            end, current = _seconds(stamp), None
        elif current is not None:
            current[1].append(line)
    phases: dict[str, float] = {}
    for (start, phase), (following, _) in zip(starts, starts[1:] + [(end, "")]):
        phases[phase] = phases.get(phase, 0.0) + following - start
    return phases


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _model_seconds(project_dir: Path) -> float:
    results = json.loads((project_dir / "target" / "run_results.json").read_text())
    return next(r["execution_time"] for r in results["results"] if r["unique_id"].endswith(".bench_view"))


def worker(args) -> dict:
    """One engine at one size, in this process: build, incremental, export, partitioned read."""
    from featurestore import FeatureStore
    from featurestore.dbt import DbtProject

    work = Path(tempfile.mkdtemp(prefix=f"bench-spark-{args.engine}-"))
    project_dir = work / "project"
    shutil.copytree(HERE / "snapshot_project", project_dir)
    shutil.copy2(REPO / "profiles" / "profiles.yml", project_dir / "profiles.yml")
    (project_dir / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    schema = "main" if args.engine == "duckdb" else "bench"
    config = (project_dir / "models" / "schema.yml").read_text().replace("schema: main", f"schema: {schema}")
    if args.rebuild_share >= 0:  # else the model's default
        config = config.replace("  # Spark's layout\n", f"\n      snapshot_rebuild_share: {args.rebuild_share}\n")
    (project_dir / "models" / "schema.yml").write_text(config)
    env = {"FEATURESTORE_DUCKDB_PATH": str(work / "bench.duckdb"), "FEATURESTORE_SPARK_DIR": str(work / "spark"),
           "FEATURESTORE_SPARK_SCHEMA": schema, "FEATURESTORE_SPARK_MASTER": args.master,
           "FEATURESTORE_SPARK_PARTITIONS": str(args.partitions), "FEATURESTORE_SPARK_DRIVER_MEMORY": "6g",
           "BENCH_SNAPSHOT_BUCKETS": str(args.buckets)}
    target = None if args.engine == "duckdb" else "spark"
    dbt = DbtProject.at(project_dir, target, env)
    dbt.run("deps", "--quiet")
    if args.engine == "duckdb":
        import duckdb

        with duckdb.connect(env["FEATURESTORE_DUCKDB_PATH"]) as con:
            for statement in _generate_sql("duckdb", args.rows, args.keys):
                con.execute(statement)
    result: dict = {"engine": args.engine, "master": args.master if args.engine == "spark" else "-", "rows": args.rows}
    started = time.perf_counter()
    if args.engine == "spark":  # the session starts here; dbt (in this process) shares it
        store = FeatureStore(project_dir, target, env=env, strict=False)
        with store.connect(read_only=False) as warehouse:
            result["session start s"] = time.perf_counter() - started
            for statement in _generate_sql("spark", args.rows, args.keys):
                warehouse.execute(statement)
    started = time.perf_counter()
    dbt.run("build", "--select", "bench_view", "--quiet")
    result["dbt command s"] = time.perf_counter() - started
    result["full build s"] = _model_seconds(project_dir)
    store = FeatureStore(project_dir, target, env=env)
    log = project_dir / "logs" / "dbt.log"

    def add_batch() -> None:
        with store.connect(read_only=False) as warehouse:
            warehouse.execute(_batch_sql(args.engine, args.batch_rows or args.rows // 100, args.keys,
                                         (args.batch_buckets, args.buckets) if args.batch_buckets else None))

    def logged_run(*extra: str) -> tuple[float, str]:
        log.unlink(missing_ok=True)
        dbt.run("run", "--select", "bench_view", "--quiet", "--log-level-file", "debug", *extra)
        if args.keep_logs:
            shutil.copy2(log, Path(args.keep_logs) / f"{'full-refresh' if extra else 'incremental'}-{time.time():.0f}.log")
        return _model_seconds(project_dir), log.read_text()

    if args.build_only:  # incremental runs against --full-refresh runs of the same table
        # a rebuild first (the JVM's first build is slower), then in the order A B B A, each
        # after a new batch, so that a JVM still warming up favours neither kind of run
        dbt.run("run", "--select", "bench_view", "--full-refresh", "--quiet")
        result["warm-up rebuild s"] = _model_seconds(project_dir)
        runs: dict[str, list] = {"incremental": [], "full refresh": []}
        for kind in ("incremental", "full refresh", "full refresh", "incremental"):
            add_batch()
            runs[kind].append(logged_run(*(["--full-refresh"] if kind == "full refresh" else [])))
        for kind, done in runs.items():
            result[f"{kind} s"] = statistics.mean(seconds for seconds, _ in done)
            phases = [statement_phases(text) for _, text in done]
            result[f"{kind} phases"] = {name: statistics.mean(p.get(name, 0.0) for p in phases)
                                        for name in {name for p in phases for name in p}}
        result["rebuilt"] = sum("a rebuild is cheaper: rebuilding" in text for _, text in runs["incremental"])
        shutil.rmtree(work, ignore_errors=True)
        return result
    add_batch()
    result["incremental s"], log_text = logged_run()
    phases = statement_phases(log_text)
    result["rebuilt"] = int("a rebuild is cheaper: rebuilding" in log_text)
    entities = _entities(args.entities, args.keys)
    started = time.perf_counter()
    job = store.get_historical_features(entities, ["bench_view:f_double", "bench_view:f_int", "bench_view:f_str"])
    job.to_parquet(work / ("export" if args.engine == "spark" else "export.parquet"))
    result["export s"] = time.perf_counter() - started
    started, read = time.perf_counter(), 0
    view = store.registry.view("bench_view")
    with store.connect() as warehouse:  # what sync reads, without the online writes
        for part in warehouse.read_parts(warehouse.render(
                "current_rows", relation=view.relation_name, join_keys=["entity_id"], event="ev", created="created",
                features=["f_double", "f_int", "f_str"], after_watermark=False)):
            read += part.num_rows
    result["current rows read"] = read
    result["current rows read s"] = time.perf_counter() - started
    result["python peak MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.engine == "spark":  # the JVM's high-water mark (driver; in local mode the executors too)
        from pyspark import SparkContext

        status = Path(f"/proc/{SparkContext._gateway.proc.pid}/status").read_text()
        result["jvm peak MB"] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024
    shutil.rmtree(work, ignore_errors=True)
    result["incremental phases"] = phases
    return result


def run_worker(engine: str, rows: int, keys: int, entities: int, master: str, partitions: int,
               batch_rows: int = 0, buckets: int = 16, extra: list[str] = ()) -> dict:
    command = [sys.executable, __file__, "worker", "--engine", engine, "--rows", str(rows), "--keys", str(keys),
               "--entities", str(entities), "--master", master, "--partitions", str(partitions),
               "--batch-rows", str(batch_rows), "--buckets", str(buckets), *extra]
    # the executors of a cluster run Python tasks with the driver's PYSPARK_PYTHON
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable})
    if done.returncode:
        raise SystemExit(f"worker failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["master"] = "cluster" if master.startswith("spark://") else master
    return result


def compare_masters(masters: list[str], rows: int, entities: int, partitions: int) -> None:
    """The same build, incremental run and export on each master; `cluster` is started here."""
    import tempfile
    from contextlib import ExitStack

    sys.path.insert(0, str(REPO / "tests"))
    from spark_cluster import SparkCluster

    with ExitStack() as stack:
        runs = []
        for master in masters:
            if master == "cluster":
                cluster = stack.enter_context(SparkCluster(Path(tempfile.mkdtemp(prefix="bench-spark-cluster-"))))
                master = cluster.master_url
            runs.append(run_worker("spark", rows, max(1, rows // 10), entities, master, partitions))
    _table("Spark masters compared", runs)
    base = runs[0]
    for run in runs[1:]:
        for key in ("full build s", "incremental s", "export s", "current rows read s"):
            print(f"  {key}: {base['master']} / {run['master']} = {base[key] / run[key]:.2f}x")


def compare_with_rebuild(rows: int, keys: int, partitions: int, repeats: int, sweep: list[int]) -> None:
    """Incremental runs against --full-refresh runs of the same table (each worker: see the
    module's docstring), batches of 1% new rows: spread over all keys (the model's default
    snapshot_rebuild_share: it rebuilds), and on the keys of one of the 16 buckets (incremental).
    `sweep`: batches on the keys of k of the 16 buckets with the fallback off (share 1), to find
    the share at which an incremental run costs a rebuild."""
    print(f"\nIncremental against a rebuild: {rows:,} rows over {keys:,} keys, 1% new rows, 16 buckets "
          f"(load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for touched in sweep:
        run = run_worker("spark", rows, keys, 0, "local[2]", partitions, 0, 16, ["--batch-buckets", str(touched),
                                                                              "--rebuild-share", "1", "--build-only"])
        print(f"  fallback off, {touched:>2} of 16 buckets touched: incremental {run['incremental s']:6.2f} s, "
              f"full refresh {run['full refresh s']:6.2f} s, ratio {run['incremental s'] / run['full refresh s']:.2f} "
              f"(load {os.getloadavg()[0]:.2f})")
    for title, extra in (("1% spread over all keys (the default share: falls back to a rebuild)", []),
                         ("1% on the keys of 1 of 16 buckets", ["--batch-buckets", "1"])):
        runs = [run_worker("spark", rows, keys, 0, "local[2]", partitions, 0, 16, [*extra, "--build-only"])
                for _ in range(repeats)]
        ratios = [run["incremental s"] / run["full refresh s"] for run in runs]
        print(f"  {title}: incremental / full refresh = {statistics.median(ratios):.2f} (median of {repeats}: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}); incremental {statistics.median(r['incremental s'] for r in runs):.2f} s, "
              f"full refresh {statistics.median(r['full refresh s'] for r in runs):.2f} s (first build "
              f"{statistics.median(r['full build s'] for r in runs):.2f} s); rebuilt in {sum(r['rebuilt'] for r in runs)} "
              f"of {2 * repeats}; load average {os.getloadavg()[0]:.2f}")
        print(f"    {'statements (s, medians)':<52} {'incremental':>12} {'full refresh':>12}")
        names = {name for run in runs for key in ("incremental phases", "full refresh phases") for name in run[key]}
        median = {key: {name: statistics.median(run[key].get(name, 0.0) for run in runs) for name in names}
                  for key in ("incremental phases", "full refresh phases")}
        for name in sorted(names, key=lambda name: -median["incremental phases"][name]):
            print(f"    {name:<52} {median['incremental phases'][name]:12.3f} {median['full refresh phases'][name]:12.3f}")


def _median(runs: list[dict]) -> dict:
    return {key: (statistics.median(r[key] for r in runs) if isinstance(runs[0][key], (int, float)) else runs[0][key])
            for key in runs[0]}


def _table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    keys = [k for k in rows[0] if k not in ("engine", "master", "rows", "incremental phases")]
    print(f"  {'engine':<8} {'master':<9} {'rows':>11} " + " ".join(f"{k:>20}" for k in keys))
    for row in rows:
        print(f"  {row['engine']:<8} {row['master']:<9} {row['rows']:>11,} "
              + " ".join(f"{row.get(k, float('nan')):>20.2f}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("worker")
    one.add_argument("--engine", choices=["duckdb", "spark"], required=True)
    one.add_argument("--master", default="local[2]")
    one.add_argument("--partitions", type=int, default=8)
    one.add_argument("--batch-rows", type=int, default=0, help="new rows of the incremental run (0: 1%%)")
    one.add_argument("--buckets", type=int, default=16, help="snapshot_buckets (Spark)")
    one.add_argument("--batch-buckets", type=int, default=0,
                     help="put the new rows on the keys of this many buckets only (0: all keys)")
    one.add_argument("--rebuild-share", type=float, default=-1,
                     help="snapshot_rebuild_share (Spark; -1: the default)")
    one.add_argument("--build-only", action="store_true",
                     help="only the full build, a warm-up rebuild, and incremental and --full-refresh runs (A B B A)")
    one.add_argument("--keep-logs", default="",
                     help="a directory to copy the dbt debug logs of the incremental run and the --full-refresh to")
    for p in (parser, one):
        p.add_argument("--rows", type=int, default=10_000_000)
        p.add_argument("--keys", type=int, default=1_000_000)
        p.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", default="1000000,10000000")
    parser.add_argument("--cores-rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--small-batch", type=int, default=10,
                        help="rows of the small batch (over as many keys), against 256 buckets")
    parser.add_argument("--masters", default="local[1],local[2]",
                        help="Spark masters compared at --cores-rows (local[n], spark://..., cluster)")
    parser.add_argument("--cores-only", action="store_true", help="only the comparison of masters")
    parser.add_argument("--rebuild-rows", type=int, default=2_000_000,
                        help="rows of the incremental-against-rebuild comparison (over a tenth as many keys)")
    parser.add_argument("--rebuild-repeats", type=int, default=3)
    parser.add_argument("--sweep-buckets", default="",
                        help="e.g. 1,4,8,16: incremental runs on k of 16 buckets with the fallback off")
    parser.add_argument("--rebuild-only", action="store_true", help="only the incremental-against-rebuild comparison")
    args = parser.parse_args()
    if args.command == "worker":
        print(json.dumps(worker(args)))
        return
    sweep = [int(k) for k in args.sweep_buckets.split(",") if k]
    if args.rebuild_only:
        compare_with_rebuild(args.rebuild_rows, max(1, args.rebuild_rows // 10), args.partitions,
                             args.rebuild_repeats, sweep)
        return
    masters = args.masters.split(",")
    if args.cores_only:
        compare_masters(masters, args.cores_rows, args.entities // 2, args.partitions)
        return

    print(f"{os.cpu_count()} cores; view of {args.rows:,} rows over {args.keys:,} keys; {args.entities:,} entity rows")
    runs = {engine: [run_worker(engine, args.rows, args.keys, args.entities, "local[2]", args.partitions)
                     for _ in range(args.repeats)] for engine in ("duckdb", "spark")}
    duck, spark = _median(runs["duckdb"]), _median(runs["spark"])
    _table("Spark against DuckDB (medians)", [duck, spark])
    for key in ("full build s", "incremental s", "export s"):
        print(f"  {key}: Spark / DuckDB = {spark[key] / duck[key]:.1f}x")
    print(f"  incremental / full: DuckDB {duck['incremental s'] / duck['full build s']:.2f}, "
          f"Spark {spark['incremental s'] / spark['full build s']:.2f}")
    for run in (runs["duckdb"][0], runs["spark"][0]):
        print(f"  where the incremental run's time goes, {run['engine']} (s per statement kind):")
        for name, seconds in sorted(run["incremental phases"].items(), key=lambda item: -item[1]):
            print(f"    {name:<52} {seconds:8.3f}")

    small = [run_worker(engine, args.rows, args.keys, 1000, "local[2]", args.partitions, args.small_batch, 256)
             for engine in ("duckdb", "spark")]
    _table(f"A small batch: {args.small_batch} new rows over as many keys, 256 buckets", small)
    for run in small:
        print(f"  {run['engine']}: incremental / full = {run['incremental s'] / run['full build s']:.2f}")

    sizes = [int(size) for size in args.memory_rows.split(",")]
    memory = [spark if size == args.rows and args.keys == max(1, size // 10) else
              run_worker("spark", size, max(1, size // 10), args.entities, "local[2]", args.partitions) for size in sizes]
    _table("Driver memory as the view grows (Spark, local[2])", memory)

    compare_masters(masters, args.cores_rows, args.entities // 2, args.partitions)
    compare_with_rebuild(args.rebuild_rows, max(1, args.rebuild_rows // 10), args.partitions,
                         args.rebuild_repeats, sweep)


if __name__ == "__main__":
    main()
