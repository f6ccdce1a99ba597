"""Training sets as Parquet: one file written atomically and streamed (hash and fingerprint on a
worker thread beside the write), or — on an engine whose executors write (Spark) — a directory of
Parquet files. Both carry the export manifest (featurestore.retrieval.manifest) that replay reads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..digest import ContentHasher
from ..errors import FeatureStoreError
from .manifest import MANIFEST_FILE, MANIFEST_KEY

if TYPE_CHECKING:
    from .job import RetrievalJob

ROW_GROUP_ROWS = 131_072  # rows per Parquet row group written by to_parquet
# rows (and bytes) to_parquet may hold unwritten, so that the fingerprint (which needs every
# row) overlaps the write: results up to this size are fingerprinted while they are written;
# larger ones stream. The bytes bound wide rows: a result's size in memory, not only its rows.
WRITE_BUFFER_ROWS = 4_194_304
WRITE_BUFFER_BYTES = 134_217_728


PARQUET_SUFFIXES = ("", ".parquet", ".pq", ".parq")


def write_file(job: "RetrievalJob", target: Path, save_stats: bool = True) -> Path:
    """The training set as one Parquet file at `target` (RetrievalJob.to_parquet)."""
    if target.suffix.lower() not in PARQUET_SUFFIXES:
        raise FeatureStoreError(f"--out {target}: an export is a Parquet file; name it .parquet (a "
                                f"{target.suffix} name would hold Parquet that other tools misread).")
    if target.is_dir():
        raise FeatureStoreError(f"--out {target} is a directory; give a file name, e.g. {target / 'train.parquet'}.")
    columns = {f"{r.view.name}:{name}": output for r in job.requests for name, output in r.features}
    _write_atomically(target, lambda temporary: job._export(
        lambda schema, batches: _write_parquet(job, temporary, schema, batches, columns if save_stats else None)))
    return target


def write_directory(job: "RetrievalJob", target: Path) -> Path:
    """On an engine with executors (Spark): the executors write the rows, in the entity
    frame's order, as a directory of Parquet files (part-00000 first); nothing is collected on
    the driver. Written to a temporary directory beside `target`, then renamed into place (an
    existing export directory is replaced only once the new one is complete). The manifest is
    `_featurestore_manifest.json` inside it; its content hash is empty and no fingerprint is
    computed (they would need the rows on the driver)."""
    if target.is_file():
        raise FeatureStoreError(f"--out {target} is a file; on this engine an export is a directory of Parquet files.")
    _make_parent(target)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    temporary.rmdir()  # the engine creates it
    try:
        job._run(lambda warehouse, query: warehouse.write_parquet(query, str(temporary)),
                  match_columns=False, ordered=True)
        rows = sum(pq.ParquetFile(part).metadata.num_rows for part in sorted(temporary.glob("*.parquet")))
        (temporary / MANIFEST_FILE).write_text(json.dumps(job.manifest(rows, ""), default=str, indent=1))
        job.rows_written = rows
        previous = target.with_name(f".{target.name}.previous") if target.exists() else None
        if previous is not None:
            os.replace(target, previous)
        os.replace(temporary, target)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    job.content_sha256 = ""
    return target


def _write_parquet(job: "RetrievalJob", path: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch],
               stats_columns: dict[str, str] | None) -> None:
    """Write batches in row groups of ROW_GROUP_ROWS, holding at most WRITE_BUFFER_ROWS rows
    and about WRITE_BUFFER_BYTES unwritten. The content hash and the fingerprint run on one
    worker thread beside the write (hashlib, numpy and the Parquet writer release the GIL), in
    batch order; the write waits for them only at the end, to put their results in the footer.
    timings: "hash" and "fingerprint" are the worker's time, "waited" what the writer spent
    waiting for it."""
    from ..quality.stats import STATS_METADATA_KEY, frame_stats

    timings = job.timings if job._table is None else dict.fromkeys(job.timings, 0.0)
    if stats_columns is not None:  # an on-demand feature's inputs are read, then dropped from the rows
        stats_columns = {reference: column for reference, column in stats_columns.items() if column in schema.names}
    hasher = ContentHasher(schema)
    kept: list[pa.RecordBatch] = []  # the feature columns, for the fingerprint
    pending: list[pa.RecordBatch] = []  # batches for the next row group

    def digest(batch: pa.RecordBatch) -> None:
        started = time.perf_counter()
        hasher.update(batch)
        if stats_columns:
            kept.append(batch.select(list(stats_columns.values())))
        timings["hash"] += time.perf_counter() - started

    def fingerprint() -> dict:
        started = time.perf_counter()
        features = pa.Table.from_batches(kept, schema=pa.schema([schema.field(c) for c in stats_columns.values()]))
        stats = frame_stats(features, stats_columns)
        timings["fingerprint"] += time.perf_counter() - started
        return stats

    # store_schema=False: the metadata added at the end then shows as the schema's metadata
    # (pq.read_table(path).schema.metadata) instead of being shadowed by the Arrow schema
    # stored at the start; the types we write read back the same (tests/integration/test_training.py)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="featurestore-digest") as worker, \
            pq.ParquetWriter(path, schema, store_schema=False) as writer:
        def write_row_group() -> None:
            started = time.perf_counter()
            group, count = [], 0
            while pending and count < ROW_GROUP_ROWS:
                group.append(pending.pop(0))
                count += group[-1].num_rows
            writer.write_table(pa.Table.from_batches(group, schema))
            timings["write"] += time.perf_counter() - started

        rows = buffered = buffered_bytes = 0
        digests = []  # their results are checked: a failure on the worker must not pass silently
        for batch in batches:
            digests.append(worker.submit(digest, batch))
            pending.append(batch)
            rows += batch.num_rows
            buffered += batch.num_rows
            buffered_bytes += batch.nbytes
            while buffered >= ROW_GROUP_ROWS + WRITE_BUFFER_ROWS \
                    or (buffered >= ROW_GROUP_ROWS and buffered_bytes >= WRITE_BUFFER_BYTES):
                write_row_group()
                buffered = sum(b.num_rows for b in pending)
                buffered_bytes = sum(b.nbytes for b in pending)
        # the fingerprint starts now, beside the writes still buffered
        stats = worker.submit(fingerprint) if stats_columns is not None else None
        while pending:
            write_row_group()
        if not rows:
            writer.write_table(schema.empty_table())
        started = time.perf_counter()
        for done in digests:
            done.result()  # re-raises what digest() raised
        stats = stats.result() if stats is not None else None
        timings["waited"] += time.perf_counter() - started
        metadata = {MANIFEST_KEY: json.dumps(job.manifest(hasher.rows, hasher.hexdigest()), default=str)}
        if stats is not None:
            metadata[STATS_METADATA_KEY] = json.dumps({
                **stats, "summary": job.summary.as_dict() if job.summary else None, "service": job.feature_service,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}, default=str)
        writer.add_key_value_metadata(metadata)
    job.content_sha256 = hasher.hexdigest()


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeatureStoreError(f"Cannot create the folder of {target}: {exc}") from None


def _write_atomically(target: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file in the same folder, then rename: never a half file. The
    file gets the permissions any new file would (0666 less the umask), not mkstemp's 0600:
    a training set is for others to read too."""
    _make_parent(target)
    temporary = str(target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise FeatureStoreError(f"Cannot write {target}: {exc}") from None
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
