"""ML-ready dtypes: exact decimal → float, nullable integers, declared types for online values."""

from decimal import Decimal

import pyarrow as pa

from featurestore.frames import arrow_type, ml_dataframe


def test_decimals_become_the_nearest_float_and_integers_stay_integers():
    table = pa.table({"money": pa.array([Decimal("61.48"), None], type=pa.decimal128(18, 2)),
                      "n": pa.array([3, None], type=pa.int32()), "flag": pa.array([True, None])})
    frame = ml_dataframe(table)
    assert frame["money"].tolist()[0] == 61.48 and str(frame["money"].dtype) == "float64"
    assert str(frame["n"].dtype) == "Int64" and frame["n"].isna().tolist() == [False, True]
    assert str(frame["flag"].dtype) == "boolean"


def test_declared_types_map_to_the_same_arrow_types_as_the_warehouse_gives():
    assert arrow_type("bigint") == pa.int64() and arrow_type("integer") == pa.int64()
    assert arrow_type("decimal(18,2)") == pa.float64() and arrow_type("double") == pa.float64()
    assert arrow_type("varchar") == pa.string() and arrow_type("struct") is None
