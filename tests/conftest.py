"""Shared fixtures: the demo project built once per run (DuckDB), servers started once per run,
and the suite's one way to a demo of other data (built_demo, shared_demo, copied_demo) and to
hand-made tables (DuckDBTables, PostgresTables).

Projects are copied into temporary folders, each with its profiles.yml at its root and this
repository installed as a dbt package (`packages.yml` → the repository's absolute path), the
way a user's project installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "jaffle_shop"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROFILES = REPO / "profiles" / "profiles.yml"  # the profile of the package's own development and tests
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "profiles.yml")

sys.path.insert(0, str(EXAMPLE))  # the demo's data module: jaffle_data

# A suite started in the background by a shell without job control (`cmd &` in a script, nohup)
# inherits SIGINT ignored, and so would every process it starts: the Ctrl-C tests would send
# SIGINTs nobody receives. A handler here (not "ignore") is reset to the default in each child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from featurestore.dbt import DbtProject  # noqa: E402
from jaffle_data import JaffleSize, write_raw_files  # noqa: E402

# The tests choose their own warehouses, raw files and endpoints: ignore the caller's settings —
# but for how dbt is invoked (FEATURESTORE_DBT), which CI sets to run the suite with dbt as a command.
for _name in [name for name in os.environ if (name.startswith("FEATURESTORE_") and name != "FEATURESTORE_DBT")
              or name == "DBT_PROFILES_DIR"]:
    del os.environ[_name]
# dbt's usage tracking posts to a collector with a 5 s timeout: on a network that drops packets
# rather than refusing them, every dbt process (every `dbt` command in test-compat) would wait for it.
os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"


def copy_project(source: Path, destination: Path, package: bool = True) -> Path:
    """Copy the dbt parts of a project (no target/, no warehouse) so a test cannot touch the
    repository's; give it the package's profile (profiles/profiles.yml) unless it has its own, and install this
    repository as a package."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        path = source / part
        if path.is_dir():
            shutil.copytree(path, destination / part, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, destination / part)
    if not (destination / "profiles.yml").exists():
        shutil.copy2(PROFILES, destination / "profiles.yml")
    if package:
        (destination / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    return destination


def build_demo(project_dir: Path, size: JaffleSize = JaffleSize(), seed: int = 7, target: str | None = None,
               **env: str) -> Path:
    """The suite's one way to a built demo: copy it to `project_dir`, write its raw data (`size`,
    `seed`), load the data into warehouses that cannot read the files in place (a `target` such
    as postgres or spark), and `dbt build` with `env` (its endpoint, prefix, schemas)."""
    project_dir = copy_project(EXAMPLE, project_dir)
    raw = project_dir / "data" / "raw"
    write_raw_files(raw, size, seed=seed)
    if target is not None:
        from featurestore import FeatureStore
        from jaffle_data import load_raw

        load_raw(FeatureStore(project_dir, target, env=env, strict=False), raw)
    project_env(project_dir, target, **env).run("build", "--quiet")
    return project_dir


def duckdb_path(project_dir: Path) -> Path:
    """Where a copied project's DuckDB file is (its profile's relative path)."""
    name = "jaffle_shop.duckdb" if (project_dir / "models" / "features").is_dir() else "featurestore.duckdb"
    return project_dir / name


def project_env(project_dir: Path, target: str | None = None, **extra: str) -> DbtProject:
    """A project, with environment overrides for this project only."""
    return DbtProject.at(project_dir, target, {"FEATURESTORE_DUCKDB_PATH": str(duckdb_path(project_dir)), **extra})


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory):
    """build_demo in a new temporary folder per call: `built_demo(size, seed, target=None,
    name="demo", **env)`, a build of its own. For a demo on another warehouse, or one built with
    an environment of its own; else a test reads `shared_demo` or changes a `copied_demo`."""

    def build(size: JaffleSize = JaffleSize(), seed: int = 7, target: str | None = None, name: str = "demo",
              **env: str) -> Path:
        return build_demo(tmp_path_factory.mktemp(name) / "project", size, seed, target, **env)

    return build


@pytest.fixture(scope="session")
def shared_demo(built_demo):
    """`shared_demo(size, seed)`: the DuckDB demo on that data, built once per run and shared by
    every test that asks for it, so a test only reads it (demo_project is the default one)."""
    builds: dict[tuple[JaffleSize, int], Path] = {}

    def shared(size: JaffleSize = JaffleSize(), seed: int = 7) -> Path:
        if (size, seed) not in builds:
            builds[size, seed] = built_demo(size, seed, name="shared")
        return builds[size, seed]

    return shared


@pytest.fixture(scope="session")
def copied_demo(shared_demo, tmp_path_factory):
    """`copied_demo(size, seed)`: a private copy of shared_demo(size, seed), for a test that
    changes its project (rows, tables, files, online state) without a build of its own. The copy
    leaves target/ behind, so its first command parses the project again (seconds, not a build)."""

    def copy(size: JaffleSize = JaffleSize(), seed: int = 7) -> Path:
        destination = tmp_path_factory.mktemp("copy") / "project"
        shutil.copytree(shared_demo(size, seed), destination, symlinks=True,
                        ignore=shutil.ignore_patterns("target", "logs"))
        return destination

    return copy


@pytest.fixture(scope="session")
def demo_project(shared_demo) -> Path:
    """The demo project on deterministic synthetic Jaffle Shop data, `dbt build` run once."""
    return shared_demo(JaffleSize(), seed=7)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL on 127.0.0.1 for the whole run."""
    from throwaway_postgres import PostgresServer, find_bin_dir

    if find_bin_dir() is None:
        message = "PostgreSQL server binaries not found: install Debian's postgresql (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the second-adapter tests
        pytest.skip(message)
    server = PostgresServer().start()
    yield server
    server.stop()


def require(found: bool, message: str) -> None:
    """Skip a test whose tools are missing here; in CI, which installs them, fail it instead."""
    if not found:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def require_spark(connect: bool = False) -> None:
    import importlib.util

    require(shutil.which("java") is not None and importlib.util.find_spec("pyspark") is not None,
            "Spark needs a JDK and pyspark (.ci/run installs both)")
    if connect:
        require(all(importlib.util.find_spec(name) for name in ("grpc", "grpc_status", "zstandard")),
                "Spark Connect's client needs pyspark[connect] (grpcio, grpcio-status, zstandard): "
                "pip install 'featurestore[spark]'")


@pytest.fixture(scope="session")
def spark_dir(tmp_path_factory):
    """The warehouse directory and Derby metastore every Spark test of this run shares. dbt runs
    in this process, so dbt-spark and the SDK share the one Spark session (one JVM) the first
    Spark test starts; each project uses its own schema."""
    require_spark()
    path = tmp_path_factory.mktemp("spark")
    os.environ["FEATURESTORE_SPARK_DIR"] = str(path)
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # dbt-spark, run in this process, starts the session: its Python tasks run this interpreter
    os.environ["PYSPARK_PYTHON"] = sys.executable
    yield path
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


class Tables:
    """Load and read a project's tables in one schema of its warehouse: the one loader of the
    suite's hand-made tables (events, spines). `ddl` and `sql` name the schema `{schema}`; a
    DDL may name its table `{table}`."""

    schema: str
    mark: str  # the driver's parameter marker

    def _cursor(self):
        raise NotImplementedError

    def _create(self, ddl: str, table: str) -> str:
        return ddl

    def load(self, ddl: str, table: str, rows) -> None:
        """Run `ddl` (create or replace: the rows replace the table's; create if not exists:
        they are added), then insert the rows."""
        with self._cursor() as cur:
            cur.execute(f"create schema if not exists {self.schema}")
            cur.execute(self._create(ddl.format(schema=self.schema, table=table), table))
            if rows:
                marks = ", ".join([self.mark] * len(rows[0]))
                cur.executemany(f"insert into {self.schema}.{table} values ({marks})", rows)

    def fetch(self, sql: str):
        with self._cursor() as cur:
            cur.execute(sql.format(schema=self.schema))
            return cur.fetchall()


class DuckDBTables(Tables):
    """The tables of a DuckDB file (schema `main`)."""

    schema, mark = "main", "?"

    def __init__(self, path: str | Path):
        self.path = str(path)

    @contextmanager
    def _cursor(self):
        with duckdb.connect(self.path) as con:
            yield con

    def table_id(self, table: str):
        return self.fetch(f"select table_oid from duckdb_tables() where schema_name = '{{schema}}' and table_name = '{table}'")


class PostgresTables(Tables):
    """The tables of one schema of the throwaway PostgreSQL server."""

    mark = "%s"

    def __init__(self, server, schema: str):
        self.server, self.schema = server, schema

    @contextmanager
    def _cursor(self):
        import psycopg2

        connection = psycopg2.connect(host=self.server.host, port=self.server.port, user=self.server.user,
                                      dbname=self.server.database)
        connection.autocommit = True
        try:
            with connection.cursor() as cur:
                yield cur
        finally:
            connection.close()

    def _create(self, ddl: str, table: str) -> str:
        return ddl.replace("create or replace table", f"drop table if exists {self.schema}.{table}; create table")

    def table_id(self, table: str):
        return self.fetch(f"select '{{schema}}.{table}'::regclass::oid")


@pytest.fixture(scope="session")
def demo_on_postgres(built_demo, postgres_server):
    """The demo on PostgreSQL, on the same rows as demo_project (schema `demo`): its tables."""
    env = {**postgres_server.env(), "FEATURESTORE_PG_SCHEMA": "demo", "FEATURESTORE_RAW_SCHEMA": "raw_demo"}
    built_demo(JaffleSize(), seed=7, target="postgres", name="pgdemo", **env)  # the same rows as demo_project
    return PostgresTables(postgres_server, "demo")


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A Spark standalone master and two workers (1 core each) on 127.0.0.1 for the whole run
    (tests/spark_cluster.py): `.master_url`, `.status()` (the master's JSON), and
    `.connect_server(folder, spark_dir)` for a Spark Connect server on it. A process holds one
    SparkContext (this one may hold the local session of the other Spark tests): drivers on the
    cluster run in processes of their own, with spark_cluster.driver_env() (tests/spark_driver.py)."""
    require_spark()
    from spark_cluster import SparkCluster

    with SparkCluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def demo_on_spark(spark_dir, built_demo):
    """The demo on Spark, on the same rows as demo_project (schema `demo`): its FeatureStore."""
    from featurestore import FeatureStore

    # dbt in-process, as in test_spark.py (IN_PROCESS): this process holds the Derby metastore
    env = {"FEATURESTORE_SPARK_SCHEMA": "demo", "FEATURESTORE_SPARK_DIR": str(spark_dir), "FEATURESTORE_DBT": "inprocess"}
    project_dir = built_demo(JaffleSize(), seed=7, target="spark", name="sparkdemo", **env)
    return FeatureStore(project_dir, "spark", env=env)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's DynamoDB server on 127.0.0.1 and a free port, for the whole run."""
    from featurestore.online.local import LocalDynamoDB, free_port

    server = LocalDynamoDB(tmp_path_factory.mktemp("moto"), free_port())
    url = server.start()
    yield url
    server.stop()


def dynalite_executable() -> str | None:
    """dynalite (npm), a stricter DynamoDB emulator: DYNALITE_BIN, else where .ci/run installs it, else on PATH."""
    installed = Path.home() / ".cache" / "featurestore-ci" / "node_modules" / ".bin" / "dynalite"
    return os.environ.get("DYNALITE_BIN") or (str(installed) if installed.exists() else None) or shutil.which("dynalite")


@pytest.fixture(scope="session")
def dynalite_server(tmp_path_factory):
    """dynalite on 127.0.0.1 and a free port, for the whole run (in memory)."""
    import subprocess
    import time
    import urllib.request

    from featurestore.online.local import free_port

    executable = dynalite_executable()
    if executable is None:
        message = "dynalite not found (npm install dynalite; set DYNALITE_BIN): .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the online suite against a second implementation
        pytest.skip(message)
    port = free_port()
    log = tmp_path_factory.mktemp("dynalite") / "dynalite.log"  # if it dies, why
    command = [executable, "--port", str(port)]
    script, node = Path(executable).resolve(), shutil.which("node")
    if node and script.suffix == ".js":  # survives a client killed mid-request (tests/dynalite_guard.js)
        command = [node, "--require", str(Path(__file__).parent / "dynalite_guard.js"), str(script), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=0.5)
            break
        except OSError as exc:
            if hasattr(exc, "code"):
                break
            time.sleep(0.1)
    yield url
    if process.poll() is not None:
        print(f"dynalite exited early ({process.returncode}): {log.read_text()[-2000:]}", file=sys.stderr)
    process.terminate()
    process.wait(timeout=10)


ONLINE_ENDPOINTS = ["external"] if os.environ.get("TEST_DYNAMODB_ENDPOINT") else ["moto", "dynalite"]


# Which endpoints have DynamoDB's TTL API: moto's server does; dynalite answers DescribeTimeToLive
# (DISABLED) but not UpdateTimeToLive (UnknownOperationException); an external endpoint is taken
# to be DynamoDB (or DynamoDB Local), which has it.
TTL_API = {"moto": True, "dynalite": False, "external": True}


@pytest.fixture(scope="module", params=ONLINE_ENDPOINTS)
def dynamodb(request) -> str:
    """The online suite's endpoint: moto's server and dynalite in turn, or TEST_DYNAMODB_ENDPOINT."""
    if request.param == "external":
        return os.environ["TEST_DYNAMODB_ENDPOINT"]
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def dynamodb_has_ttl(request, dynamodb) -> bool:
    """Whether the endpoint under test can enable TTL: known from the endpoint, not from what the
    online store concluded earlier in the run, so a test asserts TTL whenever the store can have it."""
    return TTL_API[request.node.callspec.params["dynamodb"]]
