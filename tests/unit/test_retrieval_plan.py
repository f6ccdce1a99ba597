"""The join strategy a retrieval picks per view (retrieval.job.choose_strategy): pure arithmetic
over the sizes the warehouse reports, so it is tested here without one."""

from __future__ import annotations

import pytest

from featurestore.retrieval.job import ASOF_CROSSOVER, choose_strategy


@pytest.mark.parametrize("dialect, strategy, guard, expected", [
    ("duckdb", "auto", True, "knowledge"),
    ("postgres", "asof", True, "knowledge"),  # the guard wins over a requested strategy
    ("postgres", "auto", False, "interval"),
    ("spark", "asof", False, "interval"),  # only DuckDB has the ASOF join
    ("duckdb", "asof", False, "asof"),
    ("duckdb", "interval", False, "interval"),
])
def test_what_decides_before_the_sizes(dialect, strategy, guard, expected):
    def no_size():
        raise AssertionError("the view's size was measured for a choice that does not need it")

    assert choose_strategy(dialect, strategy, guard, 10**6, no_size)[0] == expected
    assert choose_strategy(dialect, strategy, guard, 10**6, lambda: (10**7, 10_000.0))[0] == expected


@pytest.mark.parametrize("entity_rows, view_rows, rows_per_key", [
    (100_000, 1_000_000, 10.0), (1_000, 50, 1.0), (0, 0, 0.0), (1, 10**8, 10**8),
])
def test_auto_on_duckdb_is_asof_exactly_above_the_crossover(entity_rows, view_rows, rows_per_key):
    strategy, why = choose_strategy("duckdb", "auto", False, entity_rows, lambda: (view_rows, rows_per_key))
    above = entity_rows * rows_per_key > ASOF_CROSSOVER * (entity_rows + view_rows)
    assert strategy == ("asof" if above else "interval")
    assert f"{entity_rows:,} entity rows" in why and ("> " if above else "<= ") in why


def test_the_crossover_boundary():
    # fan-out equal to the budget stays on the interval join; one row more per key crosses
    entity_rows, view_rows = 1_000, 1_000
    budget = ASOF_CROSSOVER * (entity_rows + view_rows)
    assert choose_strategy("duckdb", "auto", False, entity_rows, lambda: (view_rows, budget / entity_rows))[0] == "interval"
    assert choose_strategy("duckdb", "auto", False, entity_rows, lambda: (view_rows, budget / entity_rows + 1))[0] == "asof"
