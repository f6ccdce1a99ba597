"""Point-in-time training-set export vs the best hand-written DuckDB query, same data, same run.

    .venv/bin/python benchmarks/bench_training.py [--sizes 100000:1000000,1000000:10000000] [--repeats 3]

Data (seeded, generated inside DuckDB): feature rows with an event time over one year, a
created time an hour later, 5% of rows restated (same key and event, created later), and
entity rows at random times over the same year, 5% of them with unknown keys. Two shapes:
"many keys" (10 feature rows per key) and "few keys" (2,000 keys, hundreds to thousands of
rows per key). The feature view is built by dbt with the feature_view materialization; TTL 30d.

Measured, each in a fresh subprocess (so peak RSS is that query's alone), median of --repeats
(the kinds in turn, round after round, so a change in the machine's load falls on all alike):
  ours/relation   store.get_historical_features(<entity relation in the warehouse>).to_arrow()
  ours/DataFrame  the same from a pandas DataFrame (loaded into the warehouse first)
  asof            hand-written: ASOF LEFT JOIN over the snapshot's winning rows, TTL by CASE
  interval        hand-written: LEFT JOIN on the key, filtered by the validity interval and TTL
Both hand-written queries read the same snapshot table and return Arrow; the ratio is against
the faster. Also: the CLI export end to end (process start to Parquet written). --compare REV
adds then/relation and then/DataFrame: the same two calls with REV's package (a git worktree),
measured in the same rounds.

--phases: where an export to Parquet spends its time (many-keys shape), this code ("after",
RetrievalJob.timings) against an earlier commit ("before", --before REV, run from a git
worktree and timed step by step the way its to_parquet ran them): entity load, checks, the
query, order, summary, hash, fingerprint, write. The overhead ratio is the Python steps on the
critical path over the warehouse's (entity load + checks + query).

--cold: the first build of the snapshot plus the first export, against a hand-written DuckDB
ASOF query over the raw rows (latest version per key and event, then the ASOF join and the TTL)
written to Parquet in one process. The build is `featurestore build` (the documented path, dbt
in-process) and, for comparison, the `dbt run` command; each process is timed from its spawn to
its exit, per phase (imports, dbt's start-up, parse, run set-up, model and finish from its log,
the model's statements via bench_snapshots.statement_phases, the export's RetrievalJob.timings),
with its CPU seconds (the figure to compare when other work shares the machine: the load
average is printed). Run it against another tree's package with PYTHONPATH=<tree>/featurestore_py.
"""

from __future__ import annotations

import argparse
import atexit
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
sys.path.insert(0, str(HERE))  # bench_snapshots
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


RAW_ASOF = f"""
    with latest as (
        select * from main.events
        qualify row_number() over (partition by entity_id, ev order by created desc, f_double desc, f_int desc, f_str desc) = 1
    )
    select e.entity_id, e.event_timestamp, e.label,
        case when f.ev >= e.event_timestamp - interval {TTL_DAYS} day then f.f_double end as f_double,
        case when f.ev >= e.event_timestamp - interval {TTL_DAYS} day then f.f_int end as f_int,
        case when f.ev >= e.event_timestamp - interval {TTL_DAYS} day then f.f_str end as f_str
    from main.bench_entities e
    asof left join latest f on f.entity_id = e.entity_id and e.event_timestamp >= f.ev"""
BEFORE = "7383c6a"  # the last commit before exports streamed (issue 15)


# -- the measured child process --------------------------------------------------------------------

def child_phases(kind: str, project_dir: str, db_path: str) -> None:
    """One Parquet export, timed per phase; prints JSON."""
    from featurestore import FeatureStore

    store = FeatureStore(project_dir, env={"FEATURESTORE_DUCKDB_PATH": db_path})
    store.registry
    job = store.get_historical_features("main.bench_entities", FEATURES)
    out = Path(tempfile.mkdtemp()) / "export.parquet"
    started = time.perf_counter()
    if kind == "after":
        job.to_parquet(out)
        phases = dict(job.timings)
    else:  # the earlier commit's to_parquet, step by step
        import pyarrow.parquet as pq

        from featurestore import training
        from featurestore.quality import frame_stats

        phases = {}
        clock = time.perf_counter()
        raw = job._run(lambda warehouse, query: warehouse.fetch_arrow(query), match_columns=True, ordered=False)
        phases["warehouse (load, checks, query)"] = time.perf_counter() - clock
        clock = time.perf_counter()
        raw = training._restore_order(raw)
        phases["order"] = time.perf_counter() - clock
        clock = time.perf_counter()
        table, job.summary = job._finish(raw)
        phases["summary"] = time.perf_counter() - clock
        clock = time.perf_counter()
        frame_stats(table, {f: f.split(":")[1] for f in FEATURES})
        phases["fingerprint"] = time.perf_counter() - clock
        clock = time.perf_counter()
        training.content_hash(table)
        phases["hash"] = time.perf_counter() - clock
        clock = time.perf_counter()
        pq.write_table(table, out)
        phases["write"] = time.perf_counter() - clock
    phases["total"] = time.perf_counter() - started
    print(json.dumps({"phases": phases, "rss_mb": peak_rss_mb()}))


def child(kind: str, project_dir: str, db_path: str) -> None:
    """Run one measurement and print {"seconds", "rss_mb", "rows"} as JSON."""
    import duckdb

    started = time.perf_counter()
    opening = 0.0
    if kind in HAND_WRITTEN:
        with duckdb.connect(db_path, read_only=True) as con:
            con.execute("set threads = 2")
            opening = time.perf_counter() - started  # not counted: ours opens its connection inside the call
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
    print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(), "rows": rows, "opening": opening}))


def load_average() -> str:
    """The 1-minute load average: other work on the machine makes every figure of the run slower."""
    return f"{os.getloadavg()[0]:.2f}"


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, project_dir: Path, db_path: Path, env: dict | None = None) -> dict:
    output = subprocess.run([sys.executable, __file__, "--child", kind, str(project_dir), str(db_path)],
                            check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def before_worktree(work: Path, revision: str, name: str = "before") -> Path:
    """A checkout of `revision` in the work folder, whose package the "before" child imports;
    removed (and the work folder) however the run ends."""
    tree = work / name
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), revision],
                   check=True, capture_output=True)
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # runs after the worktree's removal (last in, first out)
    atexit.register(subprocess.run, ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                    capture_output=True)
    return tree


def report_phases(entity_rows: int, runs: dict[str, list[dict]]) -> None:
    warehouse_keys = ("entity load", "checks", "query", "warehouse (load, checks, query)")
    print(f"  export phases at {entity_rows:,} entity rows (median s; load average {load_average()}):")
    for kind, results in runs.items():
        names = list(results[0]["phases"])
        median = {name: statistics.median(r["phases"][name] for r in results) for name in names}
        warehouse = sum(v for k, v in median.items() if k in warehouse_keys)
        # "after": hash and fingerprint run beside the write; only what the writer waited counts
        python = (median.get("summary", 0) + median.get("waited", 0)) if kind == "after" else \
            sum(median.get(k, 0) for k in ("order", "summary", "fingerprint", "hash"))
        print(f"    {kind:>6}: " + ", ".join(f"{name} {value:.3f}" for name, value in median.items()))
        print(f"    {kind:>6}: python overhead on the critical path {python:.3f} s = {python / warehouse:.1%} of the "
              f"warehouse's {warehouse:.3f} s; peak RSS {statistics.median(r['rss_mb'] for r in results):.0f} MB")


# -- the cold path ---------------------------------------------------------------------------------
# Each process of the cold path is a child of this script, timed from its spawn (epoch seconds
# passed on its command line) to its exit, with marks along the way; dbt's own phases are read
# from the debug log dbt writes by default (logs/dbt.log), its statements by bench_snapshots.

COLD_FEATURE_ARGS = [arg for feature in FEATURES for arg in ("-f", feature)]


def cold_child(kind: str, project_dir: str, db_path: str, spawned: str) -> None:
    """One process of the cold path; prints {"marks": {name: epoch seconds}, ...} as JSON."""
    marks = {"spawned": float(spawned), "main": time.time()}
    result: dict = {"marks": marks}
    if kind == "baseline":  # the hand-written query over the raw rows, to Parquet
        import duckdb
        import pyarrow.parquet as pq

        marks["imported"] = time.time()
        with duckdb.connect(db_path, read_only=True) as con:
            table = con.sql(RAW_ASOF).to_arrow_table()
        marks["queried"] = time.time()
        pq.write_table(table, Path(tempfile.mkdtemp()) / "raw.parquet")
        marks["written"] = time.time()
        result["rows"] = table.num_rows
    elif kind == "build":  # `featurestore build`, as its console script runs it
        from featurestore.cli import app

        marks["cli imported"] = time.time()
        try:  # featurestore imports dbt on first use; timed apart here, the way it imports it
            from featurestore.dbt import _dbt_runner
        except ImportError:  # before the import was its own step
            import dbt.cli.main as _dbt_runner  # noqa: F401
        else:
            _dbt_runner()

        marks["dbt imported"] = time.time()
        app(["build", "-p", project_dir, "--select", "bench_view", "--full-refresh"], standalone_mode=False)
        marks["done"] = time.time()
    else:  # `featurestore export`, with the registry read and the export's phases observed
        from featurestore.cli import app
        from featurestore.store import FeatureStore

        marks["cli imported"] = time.time()
        registry = FeatureStore.__dict__["registry"]
        read_registry, jobs = registry.func, []

        def timed_registry(store):
            marks["registry start"] = time.time()
            try:
                return read_registry(store)
            finally:
                marks["registry end"] = time.time()

        registry.func = timed_registry
        plan = FeatureStore.get_historical_features
        FeatureStore.get_historical_features = lambda *a, **k: jobs.append(plan(*a, **k)) or jobs[-1]
        app(["export", "-p", project_dir, "--entities", "main.bench_entities", *COLD_FEATURE_ARGS,
             "--out", str(Path(tempfile.mkdtemp()) / "export.parquet")], standalone_mode=False)
        marks["done"] = time.time()
        result["timings"] = dict(jobs[0].timings)
        result["rows"] = jobs[0].summary.rows
    print(json.dumps(result))


def run_cold(command: list[str], env: dict, child: str | None = None) -> dict:
    """Run one process of the cold path: its wall seconds, CPU seconds (user + system, its threads
    and children) and, for a child of this script, its marks."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    started = time.perf_counter()
    if child:
        command = [sys.executable, __file__, "--cold-child", child, *command, repr(spawned)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = json.loads(output.strip().splitlines()[-1]) if child else {}
    return {"wall": wall, "cpu": cpu, "spawned": spawned, "end": spawned + wall, **found}


DBT_LOG_MARKS = (  # (phase ending at this line, its text), in the order dbt writes them
    ("dbt start-up (flags, profile, project, adapter)", "Registered adapter:"),
    ("dbt parse", "Found "),
    ("dbt run set-up (connections, relation cache)", " START "),
    ("model", " OK created "),
    ("dbt finish (results, artifacts)", "Done. PASS="),
)


def dbt_log_marks(log_text: str, day: float) -> dict[str, float]:
    """Epoch seconds of dbt's milestones in its log (timestamps HH:MM:SS.micro, local time, of
    the day of `day`): {"dbt start": ..., phase name: its end}."""
    import datetime

    date = datetime.date.fromtimestamp(day)
    marks: dict[str, float] = {}
    expected = iter([("dbt start", "Running with dbt="), *DBT_LOG_MARKS])
    name, text = next(expected)
    for line in log_text.splitlines():
        if text not in line or "[info" not in line:
            continue
        clock = line.removeprefix("\x1b[0m").split()[0]
        stamp = datetime.datetime.combine(date, datetime.time.fromisoformat(clock)).timestamp()
        marks[name] = stamp
        name, text = next(expected, (None, "\0"))
    return marks


def cold_phases(kind: str, run: dict, log_text: str | None = None) -> dict[str, float]:
    """Seconds per phase of one cold-path process, in order; "process" is its whole wall time."""
    marks = run.get("marks", {})
    points: list[tuple[str, float]] = [("python start", marks.get("main", run["spawned"]))]
    if kind == "baseline":
        points += [("import duckdb, pyarrow", marks["imported"]), ("query (to Arrow)", marks["queried"]),
                   ("Parquet write", marks["written"])]
    elif kind in ("build", "dbt run"):
        if kind == "build":
            points += [("import featurestore CLI", marks["cli imported"]), ("import dbt", marks["dbt imported"])]
        dbt = dbt_log_marks(log_text or "", run["spawned"])
        if kind == "dbt run":  # the dbt command: its imports and click come before its first line
            points.append(("import dbt, arguments", dbt["dbt start"]))
        points += [(name, dbt[name]) for name, _ in DBT_LOG_MARKS if name in dbt]
        if kind == "build":
            points.append(("featurestore: built types checked", marks["done"]))
    else:
        timings = run["timings"]
        points += [("import featurestore CLI", marks["cli imported"]),
                   ("store, manifest read, registry validated", marks["registry end"])]
        clock = marks["registry end"]
        for name in ("entity load", "checks", "query", "write"):
            if timings.get(name):
                clock += timings[name]
                points.append((f"export: {name}", clock))
        points.append(("export: other (summary, hash, print)", marks["done"]))
    points.append(("exit", run["end"]))
    phases, previous = {}, run["spawned"]
    for name, moment in points:
        phases[name] = max(0.0, moment - previous)
        previous = max(previous, moment)
    phases["process"] = run["wall"]
    phases["process CPU"] = run["cpu"]
    return phases


def cold_path(project_dir: Path, db_path: Path, repeats: int) -> None:
    """The first build of the snapshot + the first export, against the hand-written query over
    the raw rows: `featurestore build` (the documented path; dbt in-process) and, for
    comparison, the `dbt run` command; each a process, repeats interleaved."""
    from bench_snapshots import model_time, print_phases, statement_phases

    env = {**os.environ, "FEATURESTORE_DUCKDB_PATH": str(db_path)}
    log = project_dir / "logs" / "dbt.log"
    args = [str(project_dir), str(db_path)]
    runs: dict[str, list[dict]] = {"build": [], "dbt run": [], "export": [], "baseline": []}
    statements: list[dict] = []
    loads = []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        for kind in ("build", "dbt run"):
            log.unlink(missing_ok=True)
            if kind == "build":
                run = run_cold(args, env, "build")
            else:
                run = run_cold([str(Path(sys.executable).parent / "dbt"), "run", "--select", "bench_view",
                                "--full-refresh", "--quiet", "--project-dir", str(project_dir),
                                "--profiles-dir", str(project_dir)], {**env, "DBT_USE_COLORS": "false"})
            text = log.read_text()
            runs[kind].append(cold_phases(kind, run, text))
            if kind == "build":
                found = statement_phases(text)
                found["model total"] = model_time(project_dir)
                statements.append(found)
        export = run_cold(args, env, "export")
        assert export["rows"] > 0, export
        runs["export"].append(cold_phases("export", export))
        baseline = run_cold(args, env, "baseline")
        assert baseline["rows"] == export["rows"], (baseline["rows"], export["rows"])
        runs["baseline"].append(cold_phases("baseline", baseline))

    def median(kind: str, name: str) -> float:
        return statistics.median(r.get(name, 0.0) for r in runs[kind])

    print(f"  cold path, median of {repeats} (load average at each repeat's start: "
          + ", ".join(f"{load:.1f}" for load in loads) + "; 2 cores)")
    for kind, title in (("build", "featurestore build --select bench_view --full-refresh (process)"),
                        ("dbt run", "dbt run --select bench_view --full-refresh (the command, for comparison)"),
                        ("export", "featurestore export (process)"),
                        ("baseline", "hand-written: ASOF over the raw rows to Parquet (process)")):
        print(f"    {title}")
        for name in runs[kind][0]:
            print(f"      {name:<52} {median(kind, name):8.3f}")
    hand, hand_cpu = median("baseline", "process"), median("baseline", "process CPU")
    for kind in ("build", "dbt run"):
        wall = statistics.median(b["process"] + e["process"] for b, e in zip(runs[kind], runs["export"]))
        cpu = statistics.median(b["process CPU"] + e["process CPU"] for b, e in zip(runs[kind], runs["export"]))
        ratios = [(b["process"] + e["process"]) / h["process"] for b, e, h in zip(runs[kind], runs["export"], runs["baseline"])]
        print(f"  cold path via {kind}: {wall:.2f} s (CPU {cpu:.2f} s) vs hand-written {hand:.2f} s (CPU {hand_cpu:.2f} s): "
              f"ratio {wall / hand:.2f} (median of per-repeat ratios {statistics.median(ratios):.2f}; CPU {cpu / hand_cpu:.2f}; aim <= 1.0)")
    print_phases("the model inside featurestore build", statements)


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
                   cast(hash(i, {seed} + 2) % 1000 as bigint) as f_int,  -- the declared type (hash is unsigned)
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
    shutil.copy2(REPO / "profiles" / "profiles.yml", project_dir / "profiles.yml")
    (project_dir / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    schema = project_dir / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("owner: bench@example.com", f"owner: bench@example.com\n          ttl: {TTL_DAYS}d"))
    return project_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000:1000000,1000000:10000000", help="entity_rows:feature_rows,...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="export phases, before and after")
    parser.add_argument("--before", default=BEFORE, help="the revision --phases compares with")
    parser.add_argument("--compare", metavar="REV", help="also time ours with the package of REV (then/...), in the same rounds")
    parser.add_argument("--cold", action="store_true", help="the cold path against the hand-written query over raw rows")
    parser.add_argument("--only", action="store_true", help="skip the ours-vs-hand-written table")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--cold-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind = args.child[0]
        (child_phases(kind.split("/")[1], *args.child[1:]) if kind.startswith("phases/") else child(*args.child))
        return
    if args.cold_child:
        cold_child(*args.cold_child)
        return

    from featurestore.dbt import DbtProject

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    project_dir = prepare_project(work)
    before_env = None
    if args.phases:
        tree = before_worktree(work, args.before)
        before_env = {**os.environ, "PYTHONPATH": str(tree / "featurestore_py")}
    then_env = None
    if args.compare:
        then_env = {**os.environ, "PYTHONPATH": str(before_worktree(work, args.compare, "compare") / "featurestore_py")}
        print(f"then/...: the same calls with the package of {args.compare}")
    print(f"{'size':>18} {'shape':>9} {'measure':>15} {'median s':>9} {'peak MB':>8} {'x best s':>9} {'x its MB':>9}")
    for size in args.sizes.split(","):
        entity_rows, feature_rows = (int(n) for n in size.split(":"))
        for shape, keys in (("many keys", feature_rows // 10), ("few keys", 2000)):
            db_path = work / f"bench-{entity_rows}-{feature_rows}-{keys}.duckdb"
            generate(db_path, entity_rows, feature_rows, keys)
            dbt = DbtProject.at(project_dir, env={"FEATURESTORE_DUCKDB_PATH": str(db_path)})
            dbt.run("deps", "--quiet")
            dbt.run("run", "--select", "bench_view", "--full-refresh", "--quiet")
            if args.phases and shape == "many keys":
                report_phases(entity_rows, {
                    "before": [measure("phases/before", project_dir, db_path, before_env) for _ in range(args.repeats)],
                    "after": [measure("phases/after", project_dir, db_path) for _ in range(args.repeats)]})
            if args.cold and shape == "many keys":
                cold_path(project_dir, db_path, args.repeats)
            if args.only:
                db_path.unlink()
                continue
            results, opening = {}, {}
            print(f"  load average before: {load_average()}")
            kinds = ("asof", "interval", "ours/relation", "ours/DataFrame") + (("then/relation", "then/DataFrame") if then_env else ())
            # round robin: a change in the machine's load falls on every kind alike
            rounds = [{kind: measure(kind.replace("then/", "ours/"), project_dir, db_path,
                                     then_env if kind.startswith("then/") else None) for kind in kinds}
                      for _ in range(args.repeats)]
            for kind in kinds:
                runs = [measured[kind] for measured in rounds]
                assert len({r["rows"] for r in runs}) == 1 and runs[0]["rows"] == entity_rows, runs
                results[kind] = (statistics.median(r["seconds"] for r in runs), statistics.median(r["rss_mb"] for r in runs))
                if kind in HAND_WRITTEN:
                    opening[kind] = statistics.median(r["opening"] for r in runs)
            best = min(("asof", "interval"), key=lambda k: results[k][0])
            for kind, (seconds, rss) in results.items():
                ratio = f"{seconds / results[best][0]:.2f}" if kind.startswith(("ours", "then")) else ("best" if kind == best else "")
                mem = f"{rss / results[best][1]:.2f}" if kind.startswith(("ours", "then")) else ""
                print(f"{entity_rows:>8}x{feature_rows:<9} {shape:>9} {kind:>15} {seconds:9.3f} {rss:8.0f} {ratio:>9} {mem:>9}")
            print(f"  ratio = ours / the best hand-written query (aim <= 1.1); opening the database, which ours "
                  f"counts and the hand-written does not: {opening[best]:.3f} s; load average after: {load_average()}")
            out = work / "export.parquet"
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "featurestore"), "export", "-p", str(project_dir),
                            "--entities", "main.bench_entities", *sum((["-f", f] for f in FEATURES), []),
                            "--out", str(out)], check=True, capture_output=True,
                           env={**__import__("os").environ, "FEATURESTORE_DUCKDB_PATH": str(db_path)})
            print(f"{'':>18} {shape:>9} {'CLI export e2e':>15} {time.perf_counter() - started:9.3f}")
            db_path.unlink()
    if not (args.phases or args.compare):  # else at exit, after the worktrees
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
