"""Sync throughput side by side (issue 22): ours vs raw BatchWriteItem vs Feast, on one emulator at a time.

    .venv/bin/python benchmarks/bench_sync.py [--rows 100000[,1000000]] [--rounds 2] [--store moto|dynalite|both]
                                              [--feast-python .venv-feast-aws/bin/python]

For each store (moto's server started the way `featurestore online up` starts it; dynalite from
$DYNALITE_BIN, in memory) and each size N: a dbt project (benchmarks/snapshot_project, the view
made online) whose source holds one version of each of N keys with a double, an integer and a
string feature, built once with `FeatureStore.build`. Then, on the same current rows, each
contender into tables of its own (deleted after it, so the emulator holds one copy at a time),
each in a fresh subprocess that is timed around the write only, the order alternating over
--rounds; medians reported:

  ours                 FeatureStore(project).sync(full=True)  (result's `phases`, when it has them:
                       "where the time goes")
  raw, 1 / 8 threads   boto3 batch_write_item, 25 items a request, UnprocessedItems resent; the
                       items (the same attributes ours writes, checked against ours' stored item)
                       encoded before the clock starts
  Feast                Feast 0.67 `materialize` of the same current rows (a Parquet file, file
                       offline store) into its DynamoDB online store on the same endpoint; `apply`
                       (which creates the table) is not timed. Runs with --feast-python, a venv
                       with `pip install 'feast[aws]==0.67.0'` (without it, Feast is skipped).

Deltas, after the rounds, on ours' last tables: new versions (a later event and created time) of
1% of the keys, then of every key, are appended to the source; the incremental `dbt build` is
timed apart, then `FeatureStore(project).sync()` (incremental) is timed; once per round.

Printed per store: the table (contender, rows, median s, rows/s, rate over raw 8-thread, rate
over Feast), each run's seconds, where ours' time goes, the load average at start and end, and
the issue's aims: full sync >= 0.8x raw 8-thread's rate, >= 2x Feast's rate, a 1% delta <= 0.1x
the full sync's time.

The Feast child (--feast-child) imports only the standard library and Feast, so it runs under
the Feast venv's python.
"""

from __future__ import annotations

import argparse
import json
import os
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
VIEW = "bench_view"
FEATURES = ["f_double", "f_int", "f_str"]
CURRENT_ROWS = f"select entity_id, ev as event_timestamp, created as created_timestamp, {', '.join(FEATURES)} " \
               f"from main.{VIEW} where valid_to is null"
OURS, RAW1, RAW8, FEAST = "ours sync(full=True)", "raw BatchWriteItem, 1 thread", "raw BatchWriteItem, 8 threads", \
    "Feast 0.67 materialize"
DELTA = "ours sync() delta {share}%"
CHILD_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
             "FEAST_USAGE": "False"}
REGION = "us-east-1"


# -- emulators -------------------------------------------------------------------------------------

class Moto:
    name = "moto"

    def __init__(self, work: Path):
        from featurestore.online.local import LocalDynamoDB, free_port

        self.server = LocalDynamoDB(work / "moto", free_port())

    def start(self) -> str:
        import moto

        self.version = f"moto {moto.__version__}"
        return self.server.start()

    def stop(self) -> None:
        self.server.stop()


class Dynalite:
    """dynalite on a free port, in memory (as tests/conftest.py starts it)."""
    name = "dynalite"

    def __init__(self, work: Path):
        installed = Path.home() / ".cache" / "featurestore-ci" / "node_modules" / ".bin" / "dynalite"  # where CI puts it
        self.executable = os.environ.get("DYNALITE_BIN") or (str(installed) if installed.exists() else None) \
            or shutil.which("dynalite")
        self.process = None

    def start(self) -> str:
        import urllib.request

        from featurestore.online.local import free_port

        if not self.executable:
            raise SystemExit("dynalite not found: set DYNALITE_BIN (npm install dynalite)")
        package = Path(os.path.realpath(self.executable)).parent / "package.json"
        self.version = f"dynalite {json.loads(package.read_text())['version']}" if package.is_file() else "dynalite"
        port = free_port()
        self.process = subprocess.Popen([self.executable, "--port", str(port)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=0.5)
                return url
            except OSError as exc:
                if hasattr(exc, "code"):  # an HTTP error status: it answers
                    return url
                time.sleep(0.1)
        raise SystemExit(f"dynalite did not answer on {url}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def admin_client(endpoint: str):
    import boto3

    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bench",
                        aws_secret_access_key="bench")


def table_names(client, prefix: str) -> list[str]:
    names, start = [], None
    while True:
        page = client.list_tables(**({"ExclusiveStartTableName": start} if start else {}))
        names += [name for name in page["TableNames"] if name.startswith(prefix)]
        start = page.get("LastEvaluatedTableName")
        if not start:
            return names


def drop_tables(client, prefix: str) -> None:
    """Delete every table named with this prefix and wait until they are gone (dynalite deletes
    items in the background; the next contender must not share the server with that)."""
    names = table_names(client, prefix)
    for name in names:
        client.delete_table(TableName=name)
    deadline = time.monotonic() + 300
    while names and time.monotonic() < deadline:
        names = [name for name in names if name in table_names(client, prefix)]
        time.sleep(0.2)


def count_items(client, table: str) -> int:
    pages = client.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(page["Count"] for page in pages)


def sample_item(client, prefix: str) -> dict | None:
    """One stored feature item from any table with this prefix (ours may name its tables as it
    likes: generations, a state table), to check that the raw writer's items are the same."""
    for name in table_names(client, prefix):
        for item in client.scan(TableName=name, Limit=5).get("Items", []):
            if "entity_key" in item and all(feature in item for feature in FEATURES):
                return item
    return None


# -- the project and its data ----------------------------------------------------------------------

def make_project(work: Path, rows: int) -> tuple[Path, Path]:
    """benchmarks/snapshot_project with the view online, a DuckDB source of `rows` keys (one
    version each), built once."""
    import duckdb

    from projects import online_snapshot_project

    project_dir = online_snapshot_project(work / "project")
    db_path = work / "bench.duckdb"
    with duckdb.connect(str(db_path)) as con:
        con.execute(f"""
            create table main.events as
            select i as entity_id, ev, ev + interval 1 hour as created,
                   (hash(i, 2) % 100000) / 100.0 as f_double, (hash(i, 3) % 1000)::bigint as f_int, 'v' || (hash(i, 4) % 50) as f_str
            from (select i, timestamp '2025-12-01' + to_seconds(hash(i, 1) % (30 * 86400)) as ev from range({rows}) t(i))""")
    build(project_dir, db_path)
    return project_dir, db_path


def build(project_dir: Path, db_path: Path) -> float:
    """`dbt build` through the store (incremental once the snapshot exists); its seconds."""
    from featurestore import FeatureStore

    started = time.perf_counter()
    FeatureStore(project_dir, env={"FEATURESTORE_DUCKDB_PATH": str(db_path)}).build("--quiet")
    return time.perf_counter() - started


def append_versions(db_path: Path, rows: int, share: int, step: int) -> int:
    """New versions of `share`% of the keys, each with an event and a created time later than any
    before (step: the how-manieth delta); returns how many."""
    import duckdb

    with duckdb.connect(str(db_path)) as con:
        con.execute(f"""
            insert into main.events
            select i, ev, ev + interval 1 hour, (hash(i, ?) % 100000) / 100.0, (hash(i, ?) % 1000)::bigint, 'd' || (hash(i, ?) % 50)
            from (select i, timestamp '2026-01-01' + to_days(?) as ev from range({rows}) t(i)
                  where ? = 100 or i % 100 < ?)""", [step * 10 + 2, step * 10 + 3, step * 10 + 4, step, share, share])
        return con.execute("select count(*) from main.events where ev = timestamp '2026-01-01' + to_days(?)",
                           [step]).fetchone()[0]


def write_feast_source(db_path: Path, path: Path) -> None:
    """The view's current rows (what ours syncs) as Parquet for Feast's file offline store."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with duckdb.connect(str(db_path), read_only=True) as con:
        table = con.sql(CURRENT_ROWS).to_arrow_table()
    for column in ("event_timestamp", "created_timestamp"):
        table = table.set_column(table.schema.get_field_index(column), column,
                                 pc.cast(table.column(column), pa.timestamp("us", tz="UTC")))
    pq.write_table(table, path)


FEAST_REPO = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64, String

thing = Entity(name="thing", join_keys=["entity_id"])
source = FileSource(path="{path}", timestamp_field="event_timestamp", created_timestamp_column="created_timestamp")
bench_view = FeatureView(name="bench_view", entities=[thing], ttl=timedelta(days=36500), source=source,
    schema=[Field(name="f_double", dtype=Float64), Field(name="f_int", dtype=Int64), Field(name="f_str", dtype=String)])
'''


def feast_repo(work: Path, project: str, source: Path, endpoint: str) -> Path:
    repo = work / project
    repo.mkdir()
    (repo / "repo.py").write_text(FEAST_REPO.format(path=source))
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: {repo / 'registry.db'}\nprovider: local\n"
        f"online_store:\n  type: dynamodb\n  region: {REGION}\n  endpoint_url: {endpoint}\n"
        f"offline_store:\n  type: file\nentity_key_serialization_version: 3\n")
    return repo


# -- the measured children -------------------------------------------------------------------------

def child_ours(project_dir: str, db_path: str, endpoint: str, prefix: str, full: bool) -> dict:
    from featurestore import FeatureStore

    store = FeatureStore(project_dir, env={"FEATURESTORE_DYNAMODB_ENDPOINT": endpoint, "FEATURESTORE_TABLE_PREFIX": prefix,
                                           "FEATURESTORE_DUCKDB_PATH": db_path})
    store.registry  # reading the manifest is not the sync
    started = time.perf_counter()
    results = store.sync(full=full)
    seconds = time.perf_counter() - started
    result = next(r for r in results if r.view == VIEW)
    phases = getattr(result, "phases", None)
    return {"seconds": seconds, "rows": result.rows_read, "written": getattr(result, "written", None),
            "mode": result.mode, "reason": getattr(result, "reason", ""),
            "phases": phases if isinstance(phases, dict) else None}


def child_raw(db_path: str, endpoint: str, table: str, threads: int) -> dict:
    """The floor: plain BatchWriteItem, no ordering guard; items made the way ours lays them out."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    import duckdb
    from botocore.config import Config

    from featurestore.online.codec import encode, entity_key, format_timestamp

    with duckdb.connect(db_path, read_only=True) as con:
        rows = con.sql(CURRENT_ROWS).to_arrow_table().to_pylist()
    items = [{"entity_key": {"S": entity_key(("entity_id",), row)},
              "_event_timestamp": {"S": format_timestamp(row["event_timestamp"])},
              "_created_timestamp": {"S": format_timestamp(row["created_timestamp"])},
              "_written_at": {"N": str(int(time.time()))}, "_build": {"S": "x" * 32},  # as large as ours
              **{name: encode(row[name]) for name in ("entity_id", *FEATURES)}} for row in rows]
    batches = [{table: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]} for i in range(0, len(items), 25)]
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION,
                          config=Config(max_pool_connections=2 * threads))
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "entity_key", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "entity_key", "KeyType": "HASH"}])
    while client.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.05)

    def send(request: dict) -> int:
        requests, delay = 1, 0.01
        while request := client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}:
            requests += 1
            time.sleep(delay)  # the store is saturated: resend the rest after a short pause
            delay = min(1.0, delay * 2)
        return requests

    started = time.perf_counter()
    if threads == 1:
        sent = sum(send(batch) for batch in batches)
    else:
        with ThreadPoolExecutor(threads) as pool:
            sent = sum(pool.map(send, batches))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(items), "requests": sent}


def child_feast(repo: str) -> dict:
    """`feast apply` (not timed) and `materialize` (timed) in this process, under Feast's python."""
    from feast import FeatureStore
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    repo_path = Path(repo).resolve()
    sys.path.insert(0, str(repo_path))  # the definitions are imported as top-level modules, as `feast apply` does
    apply_total(load_repo_config(repo_path, repo_path / "feature_store.yaml"), repo_path, skip_source_validation=False)
    store = FeatureStore(repo_path=str(repo_path))
    started = time.perf_counter()
    store.materialize(start_date=datetime(2000, 1, 1, tzinfo=timezone.utc), end_date=datetime(2100, 1, 1, tzinfo=timezone.utc))
    return {"seconds": time.perf_counter() - started}


def run_child(python: str, *args: str) -> dict:
    done = subprocess.run([python, __file__, *args], capture_output=True, text=True, env={**os.environ, **CHILD_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def feast_usable(python: str | None) -> str | None:
    """None when this python has Feast 0.67 with its DynamoDB store; else why not."""
    if not python or not Path(python).exists():
        return f"no Feast python at {python} (python3 -m venv .venv-feast-aws && .venv-feast-aws/bin/pip install 'feast[aws]==0.67.0')"
    done = subprocess.run([python, "-c", "import feast, feast.infra.online_stores.dynamodb; print(feast.__version__)"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return f"{python} cannot import Feast's DynamoDB store ({done.stderr.strip().splitlines()[-1]}): pip install 'feast[aws]==0.67.0'"
    if not done.stdout.startswith("0.67"):
        return f"{python} has Feast {done.stdout.strip()}, not 0.67"
    return None


# -- one store -------------------------------------------------------------------------------------

def bench_store(emulator, rows: int, rounds: int, feast_python: str | None, work: Path) -> None:
    load_start = os.getloadavg()
    endpoint = emulator.start()
    try:
        print(f"\n== {emulator.version} at {endpoint}; {rows:,} current rows; {os.cpu_count()} cores; "
              f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}", flush=True)
        started = time.perf_counter()
        project_dir, db_path = make_project(work, rows)
        print(f"   project built in {time.perf_counter() - started:.1f} s", flush=True)
        feast_missing = feast_usable(feast_python)
        if feast_missing is None:
            write_feast_source(db_path, work / "current_rows.parquet")
        else:
            print(f"   Feast not measured: {feast_missing}")
        contenders = Contenders(project_dir, db_path, endpoint, None if feast_missing else feast_python, work)
        runs = full_rounds(contenders, admin_client(endpoint), rows, rounds)
        deltas, builds = delta_runs(project_dir, db_path, endpoint, contenders.prefix(OURS, rounds - 1), rows, rounds)
        report(runs, deltas, builds, feast_missing)
    finally:
        emulator.stop()
    print(f"   load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


class Contenders:
    """How each contender is run on this project and endpoint, and where its tables go."""

    def __init__(self, project_dir: Path, db_path: Path, endpoint: str, feast_python: str | None, work: Path):
        self.project_dir, self.db_path, self.endpoint = str(project_dir), str(db_path), endpoint
        self.feast_python, self.work = feast_python, work
        self.names = [OURS, RAW1, RAW8] + ([FEAST] if feast_python else [])

    @staticmethod
    def prefix(name: str, round_: int) -> str:
        """Every table a contender makes in a round starts with this (Feast's: its project name and a dot)."""
        return {OURS: f"ours{round_}_", RAW1: f"raw1r{round_}_", RAW8: f"raw8r{round_}_", FEAST: f"feastr{round_}."}[name]

    def run(self, name: str, prefix: str) -> dict:
        if name == OURS:
            return run_child(sys.executable, "--ours", self.project_dir, self.db_path, self.endpoint, prefix, "full")
        if name in (RAW1, RAW8):
            return run_child(sys.executable, "--raw", self.db_path, self.endpoint, prefix + VIEW, "1" if name == RAW1 else "8")
        repo = feast_repo(self.work, prefix[:-1], self.work / "current_rows.parquet", self.endpoint)
        return run_child(self.feast_python, "--feast-child", str(repo))


def full_rounds(contenders: Contenders, client, rows: int, rounds: int) -> dict[str, list[dict]]:
    """Every contender once a round, the order reversed every other round; each checked, then its
    tables dropped (but ours' last, which the deltas continue from)."""
    runs: dict[str, list[dict]] = {name: [] for name in contenders.names}
    reference = None  # one item ours stored, to compare the raw writer's with
    for r in range(rounds):
        for name in contenders.names if r % 2 == 0 else reversed(contenders.names):
            prefix = contenders.prefix(name, r)
            result = contenders.run(name, prefix)
            runs[name].append(result)
            print(f"   round {r + 1} {name}: {result['seconds']:.2f} s", flush=True)
            if name == OURS:
                if result["rows"] != rows or result["written"] not in (rows, None):
                    print(f"   !! ours read {result['rows']} and wrote {result['written']} of {rows:,} rows")
                reference = reference or sample_item(client, prefix)
                if reference is None:
                    print("   !! no item of ours found to compare the raw writer's items with")
            elif name in (RAW1, RAW8) and reference is not None and r == 0:
                compare_items(client, prefix + VIEW, reference)
            elif name == FEAST:
                result["rows"] = stored = count_items(client, prefix + VIEW)
                if stored != rows:
                    print(f"   !! Feast's table holds {stored:,} items, not {rows:,}")
            if not (name == OURS and r == rounds - 1):
                drop_tables(client, prefix)
    return runs


def compare_items(client, table: str, reference: dict) -> None:
    """The raw writer's item for the reference key must be ours, attribute for attribute."""
    stored = client.get_item(TableName=table, Key={"entity_key": reference["entity_key"]}).get("Item")
    key = reference["entity_key"]["S"]
    stamps = ("_written_at", "_build")  # the time and the build id differ by nature
    stored = {name: value for name, value in (stored or {}).items() if name not in stamps}
    reference = {name: value for name, value in reference.items() if name not in stamps}
    if stored == reference:
        print(f"   checked: {table}'s item for {key} equals ours")
    else:
        extra = sorted(set(reference) - set(stored or {}))
        print(f"   !! {table}'s item for {key} differs from ours"
              + (f" (ours also has {', '.join(extra)})" if extra else f": {stored} vs {reference}"))


def delta_runs(project_dir: Path, db_path: Path, endpoint: str, prefix: str, rows: int, rounds: int):
    """Per round, a 1% and a 100% delta: append, incremental build (timed apart), incremental sync."""
    deltas: dict[str, list[dict]] = {DELTA.format(share=1): [], DELTA.format(share=100): []}
    builds: dict[str, list[float]] = {name: [] for name in deltas}
    step = 0
    for _ in range(rounds):
        for share in (1, 100):
            name, step = DELTA.format(share=share), step + 1
            appended = append_versions(db_path, rows, share, step)
            builds[name].append(build(project_dir, db_path))
            result = run_child(sys.executable, "--ours", str(project_dir), str(db_path), endpoint, prefix, "incremental")
            if result["mode"] != "incremental" or result["rows"] != appended:
                print(f"   !! {name}: {result['mode']} sync ({result['reason']}) read {result['rows']:,} rows, "
                      f"{appended:,} appended")
            print(f"   {name}: {appended:,} rows in {result['seconds']:.2f} s (build {builds[name][-1]:.1f} s)", flush=True)
            deltas[name].append(result)
    return deltas, builds


# -- the report ------------------------------------------------------------------------------------

def report(runs: dict[str, list[dict]], deltas: dict[str, list[dict]], builds: dict[str, list[float]],
           feast_missing: str | None) -> None:
    everything = {**runs, **deltas}
    median = {name: statistics.median(r["seconds"] for r in results) for name, results in everything.items()}
    count = {name: results[0]["rows"] for name, results in everything.items()}
    rate = {name: count[name] / median[name] for name in median}
    print(f"\n   {'contender':<32} {'rows':>10} {'median s':>9} {'rows/s':>9} {'/raw 8-thr':>10} {'/Feast':>7}   runs (s)")
    for name in median:
        versus_feast = f"{rate[name] / rate[FEAST]:.2f}" if FEAST in rate else "-"
        each = ", ".join(f"{r['seconds']:.2f}" for r in everything[name])
        print(f"   {name:<32} {count[name]:>10,} {median[name]:>9.2f} {rate[name]:>9,.0f} "
              f"{rate[name] / rate[RAW8]:>10.2f} {versus_feast:>7}   {each}")
    print("   (/raw 8-thr, /Feast: the contender's rows/s over theirs)")
    for name, seconds in builds.items():
        print(f"   incremental dbt build before {name} (not in its time): median {statistics.median(seconds):.2f} s")
    for name in (OURS, *deltas):
        phases = [r["phases"] for r in everything[name] if r.get("phases")]
        if phases:
            names = list(dict.fromkeys(phase for p in phases for phase in p))
            medians = {phase: median_of([p.get(phase) for p in phases]) for phase in names}
            print(f"   where the time goes, {name} (median s): " + ", ".join(f"{k} {v}" for k, v in medians.items()))
        else:
            print(f"   where the time goes, {name}: the SyncResult has no `phases`")
    delta_share = median[DELTA.format(share=1)] / median[OURS]
    aims = [(f"full sync >= 0.8x raw 8-thread BatchWriteItem's rate: {rate[OURS] / rate[RAW8]:.2f}x",
             rate[OURS] / rate[RAW8] >= 0.8)]
    if FEAST in rate:
        aims.append((f"full sync >= 2x Feast's rate: {rate[OURS] / rate[FEAST]:.2f}x", rate[OURS] / rate[FEAST] >= 2))
    else:
        aims.append((f"full sync >= 2x Feast's rate: not measured ({feast_missing})", None))
    aims.append((f"1% delta <= 0.1x the full sync's time: {delta_share:.3f}x", delta_share <= 0.1))
    print("   aims (issue 22):")
    for text, met in aims:
        print(f"     {text} — {'met' if met else 'not met' if met is False else 'unknown'}")


def median_of(values: list) -> str:
    """A phase's median in seconds over the runs that have it, or its values as given when they are not numbers."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) for v in present):
        return f"{statistics.median(present):.2f}"
    return "/".join(map(str, present))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000", help="current rows (keys), comma-separated sizes")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", choices=["moto", "dynalite", "both"], default="moto")
    parser.add_argument("--feast-python", default=str(REPO / ".venv-feast-aws" / "bin" / "python"),
                        help="python of a venv with feast[aws]==0.67.0")
    parser.add_argument("--ours", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--raw", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--feast-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours:
        project_dir, db_path, endpoint, prefix, mode = args.ours
        print(json.dumps(child_ours(project_dir, db_path, endpoint, prefix, mode == "full")))
        return
    if args.raw:
        db_path, endpoint, table, threads = args.raw
        print(json.dumps(child_raw(db_path, endpoint, table, int(threads))))
        return
    if args.feast_child:
        print(json.dumps(child_feast(args.feast_child)))
        return

    sizes = [int(size) for size in args.rows.split(",")]
    emulators = {"moto": [Moto], "dynalite": [Dynalite], "both": [Moto, Dynalite]}[args.store]
    print(f"bench_sync: sizes {', '.join(f'{n:,}' for n in sizes)}; {args.rounds} round(s); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for make in emulators:
        for rows in sizes:
            work = Path(tempfile.mkdtemp(prefix=f"bench-sync-{make.name}-{rows}-"))
            try:
                bench_store(make(work), rows, args.rounds, args.feast_python, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
