"""The content hash: the same rows in any batching give the same hash; any change of a value,
a NULL, the row order, a name or a type gives another; what a NULL slot's buffer holds does not count."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore.digest import ContentHasher, content_hash

TABLE = pa.table({
    "key": pa.array(["a", None, "ccc", "", "e"]),
    "n": pa.array([1, 2, None, 4, 5], pa.int64()),
    "x": pa.array([0.5, None, 2.5, float("nan"), -0.0]),
    "d": pa.array([Decimal("1.10"), None, Decimal("3.00"), Decimal("-4.25"), Decimal("0")], pa.decimal128(18, 2)),
    "b": pa.array([True, None, False, True, False]),
    "t": pa.array([datetime(2024, 1, 1), None, datetime(2024, 1, 3), datetime(2024, 1, 4), datetime(2024, 1, 5)],
                  pa.timestamp("us", tz="UTC")),
    "day": pa.array([date(2024, 1, 1), date(2024, 1, 2), None, date(2024, 1, 4), date(2024, 1, 5)]),
    "nothing": pa.nulls(5),
    "tags": pa.array([["x"], [], None, ["y", "z"], ["x"]]),
})


def test_batching_does_not_change_the_hash():
    whole = content_hash(TABLE)
    for size in (1, 2, 3):
        assert content_hash(pa.Table.from_batches(TABLE.to_batches(max_chunksize=size))) == whole
    hasher = ContentHasher(TABLE.schema)
    for batch in TABLE.slice(1).to_batches(max_chunksize=2):  # offsets into shared buffers
        hasher.update(batch)
    assert hasher.hexdigest() == content_hash(TABLE.slice(1).combine_chunks())


@pytest.mark.parametrize("change", ["value", "null", "order", "name", "type", "bool", "string length"])
def test_any_change_changes_the_hash(change):
    table = TABLE
    if change == "value":
        table = table.set_column(1, "n", pa.array([1, 2, None, 4, 6], pa.int64()))
    elif change == "null":
        table = table.set_column(1, "n", pa.array([1, 2, 0, 4, 5], pa.int64()))
    elif change == "order":
        table = table.take([1, 0, 2, 3, 4])
    elif change == "name":
        table = table.rename_columns(["key2", *table.column_names[1:]])
    elif change == "type":
        table = table.set_column(1, "n", pc.cast(table.column("n"), pa.int32()))
    elif change == "bool":
        table = table.set_column(4, "b", pa.array([True, None, True, True, False]))
    elif change == "string length":  # the same bytes split differently
        table = table.set_column(0, "key", pa.array(["ac", None, "cc", "", "e"]))
    assert content_hash(table) != content_hash(TABLE)


def test_what_a_null_slot_holds_does_not_count():
    # two int arrays equal as values, different in the buffer under the NULL
    validity = pa.py_buffer(bytes([0b101]))
    first = pa.Array.from_buffers(pa.int64(), 3, [validity, pa.py_buffer(pa.array([1, 111, 3], pa.int64()).buffers()[1])])
    second = pa.Array.from_buffers(pa.int64(), 3, [validity, pa.py_buffer(pa.array([1, 999, 3], pa.int64()).buffers()[1])])
    assert first.to_pylist() == second.to_pylist() == [1, None, 3]
    assert content_hash(pa.table({"n": first})) == content_hash(pa.table({"n": second}))
