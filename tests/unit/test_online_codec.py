"""The DynamoDB item codec and entity keys, without a server."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from featurestore.online.dynamodb import decode, encode, entity_key, format_timestamp, parse_timestamp


def test_values_round_trip_with_their_declared_types():
    cases = [(2 ** 53 + 1, "bigint"), (0.1, "double"), (Decimal("12.30"), "decimal(18,2)"), ("héllo", "varchar"),
             (True, "boolean"), (None, "integer"), (["a", "b"], "varchar[]"), ({"k": 1}, "struct"),
             (date(2024, 5, 1), "date")]
    for value, dtype in cases:
        assert decode(encode(value), dtype) == value, (value, dtype)
    moment = datetime(2024, 5, 1, 12, 30, 15, 123456)
    assert decode(encode(moment), "timestamp") == moment.replace(tzinfo=timezone.utc)


def test_timestamps_are_fixed_width_utc_and_sort_as_strings():
    early, late = datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 5, 1)
    assert format_timestamp(early) < format_timestamp(late)
    assert len(format_timestamp(early)) == len(format_timestamp(late))
    assert parse_timestamp(format_timestamp(early)) == early.replace(tzinfo=timezone.utc)


def test_entity_keys_escape_their_separators():
    key = entity_key(("user_id", "region"), {"user_id": 1, "region": "eu|west=1%"})
    assert key == "user_id=1|region=eu%7Cwest%3D1%25"
    assert entity_key(("a",), {"a": "x|b=y"}) != entity_key(("a", "b"), {"a": "x", "b": "y"})


@pytest.mark.parametrize("dtype, text, expected, kind", [
    ("bigint", "42", 42, int), ("hugeint", "170141183460469231731687303715884105727",
                                170141183460469231731687303715884105727, int),
    ("long", "7", 7, int), ("decimal(10,0)", "5", Decimal("5"), Decimal), ("decimal(18,2)", "1.10", Decimal("1.10"), Decimal),
    ("numeric", "3.5", Decimal("3.5"), Decimal), ("double", "2.5", 2.5, float), ("real", "2", 2.0, float),
    (None, "3", 3, int), (None, "3.25", 3.25, float), ("interval", "3", 3, int),
])
def test_numbers_decode_as_their_declared_family(dtype, text, expected, kind):
    """types.py decides: integers (and DuckDB's HUGEINT) as int, decimals as Decimal, floats as float."""
    value = decode({"N": text}, dtype)
    assert value == expected and type(value) is kind
