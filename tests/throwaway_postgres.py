"""A throwaway PostgreSQL server for tests and benchmarks: initdb in a temp dir, 127.0.0.1, free port.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from featurestore.online.local import free_port


def find_bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    def __init__(self, database: str = "featurestore"):
        self.bin_dir = find_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (no pg_ctl); .ci/run installs Debian's postgresql.")
        self.database = database
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.data_dir = Path(tempfile.mkdtemp(prefix="featurestore-pg-"))
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> "PostgresServer":
        if self._as_postgres:
            shutil.chown(self.data_dir, "postgres", "postgres")
        pgdata = self.data_dir / "data"
        # C locale: strings compare bytewise, as in DuckDB, so tie-breaking agrees
        self._run("initdb", "-D", str(pgdata), "-U", self.user, "--auth=trust", "--locale=C", "--encoding=UTF8")
        self._run("pg_ctl", "-D", str(pgdata), "-l", str(self.data_dir / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -h {self.host} -k {self.data_dir} -F", "start")
        self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", self.user, self.database)
        return self

    def env(self) -> dict[str, str]:
        """The FEATURESTORE_PG_* variables profiles/profiles.yml reads."""
        return {
            "FEATURESTORE_PG_HOST": self.host,
            "FEATURESTORE_PG_PORT": str(self.port),
            "FEATURESTORE_PG_USER": self.user,
            "FEATURESTORE_PG_DATABASE": self.database,
        }

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
