"""Training and serving results as pandas frames with the dtypes ML code expects, the same
online and offline: integers as pandas' nullable `Int64` (a missing value does not turn a column
into float64), decimals as float64 (not Python `Decimal` objects), booleans as `boolean`,
timestamps as datetime64 with their zone, strings as pandas gives them (`str` from pandas 3,
objects before). `.to_arrow()` keeps the exact warehouse types."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from . import types

# the ML dtype of each family (see the module docstring)
_ML_TYPES = {types.INTEGER: pa.int64(), types.FLOAT: pa.float64(), types.DECIMAL: pa.float64(),
             types.BOOLEAN: pa.bool_(), types.TIMESTAMP: pa.timestamp("us", tz="UTC"), types.DATE: pa.date32(),
             types.STRING: pa.string()}


def arrow_type(declared: str | None) -> pa.DataType | None:
    """The ML Arrow type of a declared dbt data_type (None: infer from the values)."""
    return _ML_TYPES.get(types.declared_family(declared))


def ml_dataframe(table: pa.Table, kept: dict | None = None):
    """A pandas DataFrame with ML-ready dtypes (see the module docstring); the columns in `kept`
    (name -> pandas dtype: a training set's entity columns) get exactly those dtypes instead."""
    import pandas as pd

    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_decimal(field.type) and field.name not in (kept or {}):
            # through the exact decimal text: Arrow's direct cast is not correctly rounded (61.48 -> 61.480000000000004)
            column = pc.cast(pc.cast(column, pa.string()), pa.float64())
        columns.append(column)
    table = pa.table(columns, names=table.schema.names)
    mapping = {pa.int8(): pd.Int64Dtype(), pa.int16(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype(),
               pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.Int64Dtype(), pa.uint16(): pd.Int64Dtype(),
               pa.uint32(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    frame = table.to_pandas(types_mapper=mapping.get)
    for name, dtype in (kept or {}).items():
        if name in frame.columns and frame[name].dtype != dtype:
            frame[name] = frame[name].astype(dtype)
    return frame
