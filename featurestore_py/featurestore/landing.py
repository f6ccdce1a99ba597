"""The landing area (`landing_dir`): Parquet files written atomically under a folder, which the warehouse reads
by glob. Pushed rows land in `<landing>/<view>/`, served vectors in `<landing>/_served/`.

A file is written to a temporary name in the same folder, flushed to disk (fsync), renamed, and
the folder is fsynced: once `write_file` returns, the rows survive a crash of the process or the
machine, and a reader never sees half a file (it globs `*.parquet`; temporary names end `.tmp`).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import pyarrow as pa
import yaml

SERVED_FOLDER = "_served"
SERVED_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("request_time", pa.timestamp("us", tz="UTC")),
    ("feature_service", pa.string()),
    ("row", pa.int32()),
    ("keys", pa.string()),  # JSON object: join key -> value
    ("feature", pa.string()),  # view:feature
    ("output", pa.string()),  # the response's column name
    ("value", pa.string()),  # JSON of the value served
    ("status", pa.string()),
    ("event_timestamp", pa.string()),  # as served (ISO 8601, Z)
])


def landing_dir(project_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """The landing folder: FEATURESTORE_LANDING_DIR, else `vars: featurestore_landing` of
    dbt_project.yml (the path the `pushed_rows` macro reads), else `landing`; relative to the project."""
    env = {**os.environ, **(env or {})}
    raw = env.get("FEATURESTORE_LANDING_DIR")
    if not raw:
        project_file = Path(project_dir) / "dbt_project.yml"
        settings = (yaml.safe_load(project_file.read_text()) or {}) if project_file.is_file() else {}
        raw = (settings.get("vars") or {}).get("featurestore_landing") or "landing"
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else Path(project_dir) / path


def write_file(folder: Path, prefix: str, table: pa.Table) -> Path:
    """Write `table` as `<folder>/<prefix>-<time>-<random>.parquet`, durably and atomically."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
    final, temporary = folder / name, folder / f".{name}.tmp"
    try:
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


class ServedLog:
    """What the server served, sampled (`fraction` of requests), buffered in memory and written to
    the landing area every `flush_seconds` and at shutdown by a background thread: a request
    only appends to a list. Rows: one per entity row and feature (SERVED_SCHEMA)."""

    def __init__(self, folder: Path, fraction: float = 1.0, flush_seconds: float = 5.0, max_buffer_rows: int = 1_000_000):
        if not 0 <= fraction <= 1:
            raise ValueError("the served-log fraction must be between 0 and 1")
        self.folder = Path(folder) / SERVED_FOLDER
        self.fraction = fraction
        self.flush_seconds = flush_seconds
        self.max_buffer_rows = max_buffer_rows
        self.dropped = 0  # rows not logged because the buffer was full (the disk cannot keep up)
        self._buffer: list[tuple] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, served) -> None:
        if self.fraction < 1 and random.random() >= self.fraction:
            return
        now = getattr(served, "request_time", None) or datetime.now(timezone.utc)
        request = uuid.uuid4().hex
        keys = [(name, result) for name, ref, result in zip(served.names, served.references, served.results) if ref is None]
        rows = []
        for index in range(served.rows):
            key_json = json.dumps({name: result["values"][index] for name, result in keys}, sort_keys=True)
            for name, ref, result in zip(served.names, served.references, served.results):
                if ref is not None:
                    rows.append((request, now, served.feature_service, index, key_json, ref, name,
                                 json.dumps(result["values"][index]), result["statuses"][index],
                                 result["event_timestamps"][index]))
        with self._lock:
            if len(self._buffer) + len(rows) > self.max_buffer_rows:
                self.dropped += len(rows)
                return
            self._buffer.extend(rows)

    def flush(self) -> Path | None:
        with self._lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return None
        columns = list(zip(*rows))
        table = pa.table([pa.array(values, type=field.type) for values, field in zip(columns, SERVED_SCHEMA)],
                         schema=SERVED_SCHEMA)
        return write_file(self.folder, "served", table)

    def start(self) -> None:
        def loop():
            while not self._stop.wait(self.flush_seconds):
                try:
                    self.flush()
                except Exception:  # a full disk must not stop serving; the next flush retries
                    import logging

                    logging.getLogger("featurestore.server").exception("writing the served-vector log failed")

        self._thread = threading.Thread(target=loop, name="featurestore-served-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()


def read_folder(folder: Path) -> pa.Table | None:
    """Every complete file of a landing folder as one table (None when there is none)."""
    import pyarrow.parquet as pq

    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(path) for path in files], promote_options="permissive")

