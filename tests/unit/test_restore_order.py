"""retrieval.job.restore_order: the rows of a result read in the engine's order, put back in the
entity frame's order by their row numbers (_fs_row)."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore.retrieval.job import restore_order


@pytest.mark.parametrize("pyarrow_has_inverse_permutation", [True, False])
def test_a_permutation_is_inverted_over_many_chunks(pyarrow_has_inverse_permutation, monkeypatch):
    """In one pass where pyarrow can (20 and later), else by sorting (the oldest pyarrow we support, 15)."""
    if not pyarrow_has_inverse_permutation:
        monkeypatch.delattr(pc, "inverse_permutation", raising=False)
    rng = random.Random(3)
    positions = list(range(1000))
    rng.shuffle(positions)
    table = pa.Table.from_batches([pa.record_batch({"row": positions[i:i + 128], "text": [f"v{p}" for p in positions[i:i + 128]]})
                                   for i in range(0, 1000, 128)])
    ordered = restore_order(table, table.column("row"))
    assert ordered.column("row").to_pylist() == list(range(1000))
    assert ordered.column("text").to_pylist() == [f"v{p}" for p in range(1000)]


def test_rows_that_are_not_a_permutation_are_all_kept_in_a_stable_order():
    """Should a row repeat (overlapping intervals in a snapshot), every row is kept, by position
    and then as it came."""
    table = pa.table({"row": [2, 0, 1, 0, 2], "seen": ["a", "b", "c", "d", "e"]})
    ordered = restore_order(table, table.column("row"))
    assert ordered.column("row").to_pylist() == [0, 0, 1, 2, 2]
    assert ordered.column("seen").to_pylist() == ["b", "d", "c", "a", "e"]
    gap = pa.table({"row": [3, 0, 1], "seen": ["a", "b", "c"]})  # a number past the count
    assert restore_order(gap, gap.column("row")).column("seen").to_pylist() == ["b", "c", "a"]


def test_an_empty_result_stays_empty_with_its_schema():
    empty = pa.table({"row": pa.array([], pa.int64()), "seen": pa.array([], pa.string())})
    assert restore_order(empty, empty.column("row")).equals(empty)
