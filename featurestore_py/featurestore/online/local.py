"""The local DynamoDB endpoint: moto's server on 127.0.0.1, started in the background.

`featurestore online up` / `down` use LocalDynamoDB with a pid file under .featurestore/;
tests start one per run on a free port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..errors import FeatureStoreError


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


class LocalDynamoDB:
    def __init__(self, state_dir: Path, port: int | None = None):
        self.state_dir = Path(state_dir)
        self.pid_file = self.state_dir / "moto.pid"
        self.port_file = self.state_dir / "moto.port"
        self.log_file = self.state_dir / "moto.log"
        self.port = port
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 20.0) -> str:
        """Start moto's server unless one of ours runs; wait until it answers; return its URL."""
        if self.running_pid():
            self.port = int(self.port_file.read_text())
            return self.url
        executable = shutil.which("moto_server", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        if executable is None:
            raise FeatureStoreError("moto_server is not installed; `pip install 'moto[server]'` (make demo does).")
        self.port = self.port or free_port()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._process = process
        self.pid_file.write_text(str(process.pid))
        self.port_file.write_text(str(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FeatureStoreError(f"moto_server exited at start (port {self.port} in use?); see {self.log_file}.")
            if _answers(self.url):
                return self.url
            time.sleep(0.1)
        self.stop()
        raise FeatureStoreError(f"moto_server did not answer on {self.url} within {timeout:.0f} s; see {self.log_file}.")

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid:
            os.killpg(pid, signal.SIGTERM)
            if self._process is not None:  # our child: reap it
                self._process.wait(timeout=10)
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None
