"""The one type table: what a declared data_type is on each engine, and when a built column has it."""

import pyarrow as pa
import pytest

from featurestore.types import (DECIMAL, FLOAT, INTEGER, STRING, declared_arrow_type, declared_family, key_range, matches,
                                type_mismatch)


@pytest.mark.parametrize("declared, dialect, arrow", [
    ("bigint", "duckdb", pa.int64()), ("INTEGER", "postgres", pa.int32()), ("int", "spark", pa.int32()),
    ("smallint", None, pa.int16()), ("hugeint", "duckdb", pa.decimal128(38, 0)),
    ("double", "duckdb", pa.float64()), ("double precision", "postgres", pa.float64()), ("float8", None, pa.float64()),
    ("float", "duckdb", pa.float32()), ("float", "spark", pa.float32()), ("float", "postgres", pa.float64()),
    ("real", "postgres", pa.float32()), ("float(53)", "duckdb", pa.float64()),
    ("decimal(18,2)", "postgres", pa.decimal128(18, 2)), ("numeric(18, 2)", None, pa.decimal128(18, 2)),
    ("decimal(10)", None, pa.decimal128(10, 0)), ("decimal", "duckdb", pa.decimal128(18, 3)),
    ("decimal", "spark", pa.decimal128(10, 0)), ("numeric", "postgres", None),
    ("varchar(16)", None, pa.string()), ("text", None, pa.string()), ("string", "spark", pa.string()),
    ("timestamp", None, pa.timestamp("us")), ("timestamp with time zone", None, pa.timestamp("us", tz="UTC")),
    ("timestamp(3)", "postgres", pa.timestamp("us")), ("timestamp(3) with time zone", "postgres", pa.timestamp("us", tz="UTC")),
    ("date", None, pa.date32()), ("boolean", None, pa.bool_()),
    ("struct<a int>", "spark", None), ("json", None, None), ("", None, None), (None, None, None),
])
def test_declared_types_read_as_each_engine_builds_them(declared, dialect, arrow):
    assert declared_arrow_type(declared, dialect) == arrow


def test_the_rule_is_the_same_type_strings_and_timestamp_units_aside():
    assert matches(pa.int64(), pa.int64()) and matches(pa.decimal128(18, 2), pa.decimal128(18, 2))
    assert not matches(pa.int64(), pa.decimal128(38, 0))  # DuckDB's HUGEINT from sum() of integers
    assert not matches(pa.float64(), pa.float32())  # a FLOAT column declared double
    assert not matches(pa.decimal128(18, 2), pa.decimal128(38, 2))  # DuckDB's sum() of decimal(18,2)
    assert not matches(pa.int32(), pa.int64())
    assert matches(pa.string(), pa.large_string())  # varchar(16) vs Spark's string
    assert matches(pa.timestamp("us"), pa.timestamp("ns"))
    assert not matches(pa.timestamp("us"), pa.timestamp("us", tz="UTC"))


def test_a_mismatch_says_what_was_declared_what_was_built_and_what_to_do():
    why = type_mismatch("bigint", pa.decimal128(38, 0), "duckdb")
    assert "`data_type: bigint`" in why and "decimal(38,0)" in why and "HUGEINT" in why and "cast(" in why
    assert "float (single precision)" in type_mismatch("double", pa.float32(), "duckdb")
    assert type_mismatch("float", pa.float64(), "postgres") is None  # PostgreSQL's float is double
    assert type_mismatch("map<string,int>", pa.int64(), "spark") is None  # unknown: not checked


def test_families_ignore_engine_and_precision():
    assert declared_family("numeric") == DECIMAL and declared_family("decimal(18,2)") == DECIMAL
    assert declared_family("bigint") == INTEGER and declared_family("float") == FLOAT
    assert declared_family("varchar(3)") == STRING and declared_family("geometry") is None


def test_duckdbs_timestamps_of_other_units_are_timestamps():
    from featurestore.types import TIMESTAMP, declared_family

    assert {declared_family(name) for name in ("timestamp_ns", "timestamp_ms", "timestamp_s", "timestamp_us")} == {TIMESTAMP}


@pytest.mark.parametrize("declared, bounds", [
    ("bigint", (-(2**63), 2**63 - 1)), ("INTEGER", (-(2**63), 2**63 - 1)), ("int64", (-(2**63), 2**63 - 1)),
    ("ubigint", (0, 2**64 - 1)), ("hugeint", (-(2**127), 2**127 - 1)),
    ("varchar", None), ("double", None), ("decimal(10,0)", None), ("uuid", None), (None, None),
])
def test_an_integer_keys_range_is_bigints_or_the_wider_declared_ones(declared, bounds):
    assert key_range(declared) == bounds
