"""The local DynamoDB endpoint: moto's server on 127.0.0.1, started in the background.

`featurestore online up` starts it and records it in `.featurestore/local_dynamodb.json` (PID,
the process's start time, port, URL); the other commands use the recorded URL while that
server runs, so `online up --port X` is what `sync` and `get` then talk to. With the endpoint
`auto` (the default) `up` takes a free port, so each project (each checkout) has its own
server and two never compete for one fixed port. A server counts as
ours only when the recorded PID is alive, started at the recorded time, runs moto_server and
owns the listening socket: `up` refuses a port another program holds (naming it), and `down`
never signals a process it cannot prove it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from ..errors import FeatureStoreError
from ..processes import command_line, start_ticks

RECORD = "local_dynamodb.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):
            return True
    except OSError as exc:  # an HTTP error status still means the server answers
        return hasattr(exc, "code")


def port_holder(port: int) -> int | None:
    """The PID whose socket listens on a local TCP port (from /proc/net/tcp and /proc/*/fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return -1  # listening, but by a process we may not inspect


def describe_pid(pid: int | None) -> str:
    if pid is None:
        return "nothing"
    if pid == -1:
        return "a process this user cannot inspect"
    return f"PID {pid} ({command_line(pid) or 'command unknown'})"


class LocalDynamoDB:
    def __init__(self, state_dir: Path, port: int | None = None):
        self.state_dir = Path(state_dir)
        self.record_file = self.state_dir / RECORD
        self.log_file = self.state_dir / "moto.log"
        self.port = port
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self) -> dict | None:
        """The recorded server, if it is still the process we started; else None."""
        try:
            record = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return None
        if _is_ours(record):
            return record
        return None

    @contextmanager
    def _locked(self):
        """One `online up`/`down` of a project at a time (two at once would start two servers and
        record one: the other could never be stopped)."""
        import fcntl

        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "local_dynamodb.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def start(self, timeout: float = 20.0) -> str:
        """Start moto's server unless ours runs; wait until it answers from our own process."""
        with self._locked():
            return self._start(timeout)

    def _start(self, timeout: float) -> str:
        running = self.record()
        if running:
            if self.port and self.port != running["port"]:
                raise FeatureStoreError(f"The local DynamoDB already runs on port {running['port']} (PID "
                                        f"{running['pid']}); run `featurestore online down` before starting it on {self.port}.")
            self.port = running["port"]
            return running["url"]
        executable = shutil.which("moto_server", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        if executable is None:
            raise FeatureStoreError("moto_server is not installed; `pip install 'moto[server]'` (make demo does).")
        self.port = self.port or free_port()
        holder = port_holder(self.port)
        if holder is not None:
            raise FeatureStoreError(f"Port {self.port} is in use by {describe_pid(holder)}; stop it or start the local "
                                    "DynamoDB on another port (`featurestore online up --port N`).")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._process = process
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FeatureStoreError(f"moto_server exited at start; port {self.port} is held by "
                                        f"{describe_pid(port_holder(self.port))}. See {self.log_file}.")
            if port_holder(self.port) == process.pid and _answers(self.url):
                record = {"pid": process.pid, "start": start_ticks(process.pid), "port": self.port, "url": self.url,
                          "command": command_line(process.pid)}
                written = self.record_file.with_suffix(".tmp")
                written.write_text(json.dumps(record))
                os.replace(written, self.record_file)  # readers never see half a record
                return self.url
            time.sleep(0.1)
        self._terminate(process.pid)
        raise FeatureStoreError(f"moto_server did not answer on {self.url} within {timeout:.0f} s; see {self.log_file}.")

    def stop(self) -> bool:
        """Stop the server we started; False when none runs. A recorded PID that is not our
        server (it exited and the PID was reused) is never signalled."""
        with self._locked():
            return self._stop()

    def _stop(self) -> bool:
        try:
            record = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return False
        if not _is_ours(record):
            self.record_file.unlink(missing_ok=True)
            pid = record.get("pid") if isinstance(record, dict) else None
            if isinstance(pid, int) and start_ticks(pid) is not None:
                raise FeatureStoreError(f"{self.record_file} names {describe_pid(pid)}, which is not the local DynamoDB "
                                        "featurestore started; not stopping it (the stale record is removed).")
            return False
        self._terminate(record["pid"])
        self.record_file.unlink(missing_ok=True)
        return True

    def _terminate(self, pid: int) -> None:
        """SIGTERM, then SIGKILL after 10 s (a busy server may not stop at once)."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pid, sig)
            except OSError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self._process is not None and self._process.pid == pid:
                    if self._process.poll() is not None:  # our child: reaped
                        return
                elif start_ticks(pid) is None:
                    return
                time.sleep(0.1)


def _is_ours(record) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return False
    pid = record["pid"]
    return (start_ticks(pid) is not None and start_ticks(pid) == record.get("start")
            and "moto_server" in command_line(pid))


def recorded_url(state_dir: Path) -> str | None:
    """The URL of the local DynamoDB `online up` started for this project, while it runs."""
    record = LocalDynamoDB(state_dir).record()
    return record["url"] if record else None
