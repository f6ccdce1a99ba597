"""A Spark cluster on this machine, from the installed pyspark's own scripts and jars: a
standalone master and workers (`bin/spark-class` with the deploy Master and Worker classes) and
a Spark Connect server attached to the master (`sbin/start-connect-server.sh`), all bound to
127.0.0.1 on free ports, their logs and work directories in one directory.

    with SparkCluster(tmp_dir) as cluster:              # master + 2 workers (1 core, 1g each)
        cluster.master_url                               # spark://127.0.0.1:<port>
        with cluster.connect_server(tmp_dir / "connect") as server:
            server.url                                   # sc://127.0.0.1:<port>

Readiness is waited for by events (the master's JSON at /json/ saying ALIVE and listing the
workers ALIVE, the Connect server's log line and port), under generous deadlines for a loaded
machine; every process started is stopped on exit, also when a start fails. Each daemon runs in
a process group of its own, so stopping it stops what it started (a worker's executors, the
Connect server's JVM under its shell scripts).

An application holds its executors while it lives: with one core per worker, a running Connect
server leaves no core to another application, so start it only for the tests that use it.
The executors run Python tasks with the driver's `PYSPARK_PYTHON`: drivers should set it to
their own interpreter (`driver_env()`), else the executors run the first `python3` on the PATH.

`python tests/spark_cluster.py [--connect]` runs a cluster until Ctrl-C (for benchmarks).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from featurestore.online.local import free_port

HOST = "127.0.0.1"
START_DEADLINE = 180.0  # seconds for a daemon to be ready: JVM starts take ~5-20 s, more on a loaded machine


def spark_home() -> Path:
    """The installed pyspark's directory: it ships bin/spark-class, sbin/ and the jars."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def driver_env() -> dict[str, str]:
    """What a driver process of this cluster should have in its environment: Spark bound to
    127.0.0.1, and the executors' Python tasks run by this interpreter (with its packages)."""
    return {"SPARK_LOCAL_IP": HOST, "PYSPARK_PYTHON": sys.executable}


def executor_pids(app_id: str) -> list[int]:
    """The process ids of an application's executors on this machine: the JVMs workers started for it."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in command and app_id.encode() in command:
            pids.append(int(entry.name))
    return sorted(pids)


class SparkStartError(RuntimeError):
    pass


class _Daemon:
    """One process (and its process group) with its output in a log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str], cwd: Path):
        self.name, self.log = name, log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, cwd=cwd, start_new_session=True)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SparkStartError(f"{self.name} exited with status {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_has(self, text: str) -> bool:
        try:
            return text in self.log.read_text(errors="replace")
        except OSError:
            return False

    def stop(self, deadline: float = 60.0) -> None:
        """SIGTERM to the process group (the JVM's shutdown hooks run: a worker stops its
        executors), SIGKILL to what is left of it after the deadline."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            if self._group_gone(deadline):
                break
        self.process.wait(timeout=deadline)

    def _group_gone(self, deadline: float) -> bool:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            self.process.poll()  # reap the leader: a zombie still counts as a member of its group
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False


def _wait_for(what: str, ready, daemon: _Daemon, deadline: float = START_DEADLINE):
    """Poll `ready()` until it returns something true; fail at once if the daemon exits."""
    end = time.monotonic() + deadline
    while True:
        result = ready()
        if result:
            return result
        daemon.check_alive()
        if time.monotonic() > end:
            raise SparkStartError(f"{what} not ready after {deadline:.0f} s; {daemon.name}'s log:\n{daemon.tail()}")
        time.sleep(0.2)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


class SparkCluster:
    """A standalone master and `workers` workers on 127.0.0.1 (see the module's docstring)."""

    def __init__(self, directory: str | os.PathLike, workers: int = 2, cores: int = 1, memory: str = "1g"):
        # 1g per worker: an application's executors have spark.executor.memory (default 1g) and a
        # worker with less memory than that never launches one, so any driver runs here unchanged
        self.directory = Path(directory)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port, self.web_port = free_port(), free_port()
        self.master_url = f"spark://{HOST}:{self.port}"
        self.web_url = f"http://{HOST}:{self.web_port}"
        self._daemons: list[_Daemon] = []

    def _env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **driver_env(), "SPARK_HOME": str(spark_home()),
               "SPARK_DAEMON_MEMORY": "512m",  # the master's and workers' own heaps
               "SPARK_LOG_DIR": str(self.directory / "logs"), "SPARK_PID_DIR": str(self.directory / "pids"),
               **extra}
        env.pop("SPARK_CONF_DIR", None)
        return env

    def _start(self, name: str, command: list[str], **env: str) -> _Daemon:
        daemon = _Daemon(name, command, self.directory / "logs" / f"{name}.log", self._env(**env), self.directory)
        self._daemons.append(daemon)
        return daemon

    def start(self) -> "SparkCluster":
        """Start the master, then the workers; return when the master lists them all ALIVE.
        On failure everything started is stopped and the error carries the failing log's tail."""
        for sub in ("logs", "pids", "work"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        spark_class = str(spark_home() / "bin" / "spark-class")
        try:
            # no REST submission server: it would take the fixed port 6066 (two clusters at once)
            master = self._start("master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", HOST,
                                            "--port", str(self.port), "--webui-port", str(self.web_port)],
                                 SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false")
            _wait_for("the Spark master", lambda: (self.status() or {}).get("status") == "ALIVE", master)
            for number in range(1, self.workers + 1):
                self._start(f"worker{number}", [
                    spark_class, "org.apache.spark.deploy.worker.Worker", "--host", HOST, "--port", "0",
                    "--webui-port", "0", "--cores", str(self.cores), "--memory", self.memory,
                    "--work-dir", str(self.directory / "work" / f"worker{number}"), self.master_url])
            _wait_for(f"{self.workers} Spark workers", lambda: len(self.alive_workers()) == self.workers, master)
        except BaseException:
            self.stop()
            raise
        return self

    def status(self) -> dict | None:
        """The master's state (its web UI's /json/: workers, active and completed applications), or None
        while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None

    def alive_workers(self) -> list[dict]:
        return [worker for worker in (self.status() or {}).get("workers", []) if worker.get("state") == "ALIVE"]

    def connect_server(self, directory: str | os.PathLike, spark_dir: str | os.PathLike | None = None,
                       **conf: str) -> "ConnectServer":
        """A Spark Connect server attached to this master (start it with `with` or `.start()`);
        its catalog is the warehouse directory and Derby metastore under `spark_dir` (the
        profiles' FEATURESTORE_SPARK_DIR layout), by default new ones in `directory`."""
        return ConnectServer(self, Path(directory), Path(spark_dir or directory), conf)

    def stop(self) -> None:
        """Stop every daemon started, last first (whatever state each is in)."""
        while self._daemons:
            self._daemons.pop().stop()

    def __enter__(self) -> "SparkCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ConnectServer:
    """pyspark's Spark Connect server (sbin/start-connect-server.sh --wait), an application of
    the cluster, its catalog a Hive metastore on Derby (embedded: no other process may open that
    database while the server runs) and a warehouse directory, both under `spark_dir`."""

    def __init__(self, cluster: SparkCluster, directory: Path, spark_dir: Path, conf: dict[str, str]):
        self.cluster, self.directory = cluster, directory
        self.port = free_port()
        self.url = f"sc://{HOST}:{self.port}"
        self.conf = {
            "spark.connect.grpc.binding.address": HOST, "spark.connect.grpc.binding.port": str(self.port),
            "spark.ui.enabled": "false", "spark.local.dir": str(directory / "tmp"),
            "spark.sql.catalogImplementation": "hive", "spark.sql.warehouse.dir": str(spark_dir / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL":
                f"jdbc:derby:;databaseName={spark_dir / 'metastore_db'};create=true",
            **conf}
        self._daemon: _Daemon | None = None

    def start(self) -> "ConnectServer":
        (self.directory / "tmp").mkdir(parents=True, exist_ok=True)
        command = [str(spark_home() / "sbin" / "start-connect-server.sh"), "--wait", "--master", self.cluster.master_url]
        for key, value in self.conf.items():
            command += ["--conf", f"{key}={value}"]
        daemon = _Daemon("connect", command, self.cluster.directory / "logs" / f"connect-{self.port}.log",
                         self.cluster._env(), self.directory)  # derby.log lands in its directory
        self._daemon = daemon
        try:
            _wait_for("the Spark Connect server",
                      lambda: daemon.log_has("Spark Connect server started at") and _accepts(self.port), daemon)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None

    def __enter__(self) -> "ConnectServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Run a Spark standalone cluster on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory", default="1g")
    parser.add_argument("--connect", action="store_true", help="and a Spark Connect server")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="spark-cluster-"))
    with SparkCluster(directory, args.workers, args.cores, args.memory) as cluster:
        print(f"master {cluster.master_url} (web {cluster.web_url}); logs in {directory / 'logs'}", flush=True)
        server = cluster.connect_server(directory / "connect").start() if args.connect else None
        if server:
            print(f"Spark Connect {server.url}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
