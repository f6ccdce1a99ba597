"""Training and serving results as pandas frames with the dtypes ML code expects, the same
online and offline: integers as pandas' nullable `Int64` (a missing value does not turn a column
into float64), decimals as float64 (not Python `Decimal` objects), booleans as `boolean`,
timestamps as datetime64 with their zone, strings as objects. `.to_arrow()` keeps the exact
warehouse types."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

_INTEGER = re.compile(r"^(tiny|small|big|huge|u)?int(eger)?\d*\b|^(u)?bigint|^long", re.IGNORECASE)


def arrow_type(declared: str | None) -> pa.DataType | None:
    """The Arrow type of a declared dbt data_type (None: infer from the values)."""
    text = (declared or "").strip().lower()
    if not text:
        return None
    if _INTEGER.match(text):
        return pa.int64()
    if text.startswith(("double", "float", "real", "numeric", "decimal")):
        return pa.float64()
    if text.startswith(("bool",)):
        return pa.bool_()
    if text.startswith(("timestamp", "datetime")):
        return pa.timestamp("us", tz="UTC")
    if text == "date":
        return pa.date32()
    if text.startswith(("varchar", "text", "string", "char")):
        return pa.string()
    return None


def ml_dataframe(table: pa.Table):
    """A pandas DataFrame with ML-ready dtypes (see the module docstring)."""
    import pandas as pd

    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_decimal(field.type):
            # through the exact decimal text: Arrow's direct cast is not correctly rounded (61.48 -> 61.480000000000004)
            column = pc.cast(pc.cast(column, pa.string()), pa.float64())
        columns.append(column)
    table = pa.table(columns, names=table.schema.names)
    mapping = {pa.int8(): pd.Int64Dtype(), pa.int16(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype(),
               pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.Int64Dtype(), pa.uint16(): pd.Int64Dtype(),
               pa.uint32(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get)
