"""The content hash of a training set: a SHA-256 of its column names and types and of every
value, row by row in the table's order, that does not depend on how the rows are split into
batches or chunks. It is fed batch by batch (an export hashes while it streams to Parquet) and
reads Arrow buffers directly: no per-row Python, no sort.

Each column keeps its own running hashes (validity, then the values; for strings also the
lengths), so batch boundaries never show in the bytes hashed; a NULL's slot hashes as zero,
whatever the buffer holds there.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class ContentHasher:
    def __init__(self, schema: pa.Schema):
        self._header = "\n".join(f"{field.name}\t{field.type}" for field in schema)
        self._columns = [_ColumnHasher(field.type) for field in schema]
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        for hasher, column in zip(self._columns, batch.columns):
            for chunk in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]):
                hasher.update(chunk)
        self.rows += batch.num_rows

    def hexdigest(self) -> str:
        total = hashlib.sha256(f"{self._header}\nrows {self.rows}\n".encode())
        for hasher in self._columns:
            total.update(hasher.digest())
        return total.hexdigest()


def content_hash(table: pa.Table) -> str:
    """The content hash of a whole table (see the module's description)."""
    hasher = ContentHasher(table.schema)
    hasher.update(table)
    return hasher.hexdigest()


class _ColumnHasher:
    def __init__(self, kind: pa.DataType):
        self.kind = kind
        self.validity = hashlib.sha256()
        self.lengths = hashlib.sha256()
        self.values = hashlib.sha256()

    def digest(self) -> bytes:
        return self.validity.digest() + self.lengths.digest() + self.values.digest()

    def update(self, array: pa.Array) -> None:
        # no Python values are converted to Arrow here: pyarrow imports pandas for that (0.3 s)
        if not len(array):
            return
        valid = _bits(pc.is_valid(array))
        self.validity.update(valid)
        valid = valid.view(bool)
        kind = array.type
        if pa.types.is_boolean(kind):
            self.values.update(_bits(array) & valid)
        elif _fixed_width(kind):
            width = kind.bit_width // 8
            data = np.frombuffer(array.buffers()[1], dtype=np.uint8, count=len(array) * width,
                                 offset=array.offset * width).reshape(len(array), width)
            if array.null_count:
                data = data.copy()
                data[~valid] = 0
            self.values.update(np.ascontiguousarray(data))
        else:
            self._update_binary(array, valid)

    def _update_binary(self, array: pa.Array, valid: np.ndarray) -> None:
        if array.null_count == len(array):
            self.lengths.update(np.zeros(len(array), dtype=np.int64))
            return
        kind = array.type
        if not (pa.types.is_string(kind) or pa.types.is_binary(kind)
                or pa.types.is_large_string(kind) or pa.types.is_large_binary(kind)):
            try:
                array = array.cast(pa.large_string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # nested values: their text form, the slow way (no feature type we build has these)
                array = pa.array([None if v is None else repr(v) for v in array.to_pylist()], pa.large_string())
            kind = array.type
        lengths = np.diff(_offsets(array)).astype(np.int64)
        if array.null_count:
            lengths[~valid] = 0
            array = pc.drop_null(array)  # the values' bytes without whatever NULL slots hold
        self.lengths.update(lengths)
        offsets = _offsets(array)
        data = array.buffers()[2]
        if data is not None and offsets[-1] > offsets[0]:
            self.values.update(memoryview(data)[offsets[0]:offsets[-1]])


def _offsets(array: pa.Array) -> np.ndarray:
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    kind = np.dtype(np.int64 if large else np.int32)
    return np.frombuffer(array.buffers()[1], dtype=kind, count=len(array) + 1, offset=array.offset * kind.itemsize)


def _bits(array: pa.BooleanArray) -> np.ndarray:
    """A boolean array (without NULLs) as one byte per value, 0 or 1 (numpy only: Arrow's
    to_numpy of booleans goes through pandas)."""
    packed = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    return np.unpackbits(packed, bitorder="little", count=array.offset + len(array))[array.offset:]


def _fixed_width(kind: pa.DataType) -> bool:
    try:
        width = kind.bit_width
    except ValueError:
        return False
    return width >= 8 and width % 8 == 0
