"""The entity frame: whatever the user passes as `entity_df`, made into one Arrow table or one
warehouse query, with its timestamp column chosen and normalised to naive UTC.

Accepted: a pandas DataFrame, a pyarrow Table, a path to a .parquet or .csv file, a SQL query
(`select ...` / `with ...`) or a relation name already in the warehouse. Frames and files are
loaded into the warehouse as a temporary relation; queries and relations never leave it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import FeatureStoreError
from .types import DATE, DECIMAL, FLOAT, INTEGER, NULL, TIMESTAMP, family

DEFAULT_TIMESTAMP = "event_timestamp"
ROW_COLUMN = "_fs_row"
_RELATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
_COMPARABLE_NUMBERS = {INTEGER, FLOAT, DECIMAL}  # families a join key may mix (SQL compares them by value)
_SQL_START = re.compile(r"^\s*(\(\s*)*(select|with|values|from)\b", re.IGNORECASE)


class EntityFrameError(FeatureStoreError):
    """The entity frame cannot be used: a missing or mistyped column, an unreadable file."""


@dataclass(frozen=True)
class EntitySource:
    """Either rows to load (`table`) or SQL that yields them inside the warehouse: the user's
    `sql`, or one of our templates (`template`: name and context) rendered by the warehouse."""

    table: pa.Table | None
    sql: str | None
    description: str  # for messages: "DataFrame", "file train.csv", "query", "relation x"
    parameters: tuple = ()  # bind parameters of the SQL
    template: tuple[str, dict] | None = None
    pandas_dtypes: dict | None = None  # a DataFrame's dtypes, which to_df gives back
    spine: tuple[int, int] | None = None  # a time spine's points and row limit (0: none), checked before it runs


    def sql_for(self, warehouse) -> str:
        if self.template is not None:
            name, context = self.template
            return warehouse.render(name, **context)
        return self.sql


def entity_source(entity_df: Any) -> EntitySource:
    """Recognise the kind of entity frame without touching the warehouse."""
    if isinstance(entity_df, pa.Table):
        return EntitySource(entity_df, None, "Arrow table")
    pd = sys.modules.get("pandas")  # not imported: then it cannot be a DataFrame (and importing costs 0.15 s)
    if pd is not None and isinstance(entity_df, pd.DataFrame):
        return EntitySource(_from_pandas(entity_df), None, "DataFrame",
                            pandas_dtypes={str(name): dtype for name, dtype in entity_df.dtypes.items()})
    if isinstance(entity_df, Path) or (isinstance(entity_df, str) and Path(entity_df).suffix.lower() in (".parquet", ".csv")):
        return EntitySource(_read_file(Path(entity_df)), None, f"file {entity_df}")
    if isinstance(entity_df, str):
        text = entity_df.strip().rstrip(";").strip()
        if _SQL_START.match(text):
            return EntitySource(None, text, "query")
        if _RELATION_NAME.match(text):
            return EntitySource(None, None, f"relation {text}",
                                template=("relation_probe", {"probe": "rows", "parts": text.split(".")}))
        raise EntityFrameError(
            f"entity_df '{entity_df[:80]}' is neither a .parquet/.csv path, a SQL query (select/with ...) "
            "nor a relation name (schema.table)."
        )
    raise EntityFrameError(
        f"entity_df of type {type(entity_df).__name__} is not supported; pass a pandas DataFrame, a pyarrow "
        "Table, a .parquet/.csv path, a SQL query or a relation name."
    )


def _from_pandas(frame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise EntityFrameError(f"The entity DataFrame cannot be converted to Arrow: {exc}") from None


def check_column_names(names: list[str], description: str) -> None:
    """Column names must be unique (compared without case, as SQL compares them)."""
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise EntityFrameError(f"The entity {description} has the column '{name}' twice"
                                   f"{'' if seen[name.lower()] == name else ' (as ' + repr(seen[name.lower()]) + ')'}; "
                                   "rename one of them.")
        seen[name.lower()] = name


def _read_file(path: Path) -> pa.Table:
    if path.is_dir():
        raise EntityFrameError(f"Entity file {path} is a directory; give a .parquet or .csv file.")
    if not path.is_file():
        raise EntityFrameError(f"Entity file {path} does not exist.")
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pacsv

            # an empty cell is a missing value (NULL), in text columns too, as in a DataFrame read by pandas
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise EntityFrameError(f"Cannot read entity file {path}: {str(exc).splitlines()[0]}") from None
    if table.num_rows == 0:
        raise EntityFrameError(f"Entity file {path} has no rows (columns: {', '.join(table.schema.names) or 'none'}).")
    return table


def choose_timestamp_column(schema: pa.Schema, requested: str | None, description: str) -> str:
    """The explicit column; else `event_timestamp`; else the one timestamp-typed column."""
    names = schema.names
    if requested:
        if requested not in names:
            raise EntityFrameError(
                f"The entity {description} has no timestamp column '{requested}'; its columns: {', '.join(names)}."
            )
        return requested
    if DEFAULT_TIMESTAMP in names:
        return DEFAULT_TIMESTAMP
    candidates = [f.name for f in schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
    if len(candidates) == 1:
        return candidates[0]
    raise EntityFrameError(
        f"Cannot tell which column of the entity {description} is the point in time "
        f"({'several: ' + ', '.join(candidates) if candidates else 'none is a timestamp'}); "
        f"pass timestamp_column=..."
    )


def normalise_timestamp(table: pa.Table, column: str, description: str) -> pa.Table:
    """Make the timestamp column naive UTC microseconds: tz-aware values are converted to UTC,
    naive values are taken as UTC, dates are midnight, strings must parse as ISO 8601."""
    index = table.schema.get_field_index(column)
    values = table.column(index)
    kind = values.type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            import pandas as pd

            texts = values.to_pandas()
            try:
                parsed = pd.to_datetime(texts, utc=True, format="ISO8601")
            except ValueError:  # pandas' own words advise options a caller of ours cannot pass: name the row
                found = _first_unparsable(texts)
                holds = f"row {found[0]} holds {found[1]!r}, which is" if found else "its values are"
                raise EntityFrameError(
                    f"The timestamp column '{column}' of the entity {description}: {holds} not an ISO 8601 time "
                    "(e.g. 2024-01-31, 2024-01-31 12:00:00 or 2024-01-31T12:00:00Z)."
                ) from None
            values = pa.chunked_array([pa.array(parsed.dt.tz_localize(None), type=pa.timestamp("us"))])
        elif pa.types.is_date(kind):
            values = pc.cast(values, pa.timestamp("us"))
        elif pa.types.is_timestamp(kind):
            # Arrow keeps tz-aware values as UTC instants; dropping the zone leaves naive UTC
            values = pc.cast(values, pa.timestamp(kind.unit)) if kind.tz is not None else values
            values = pc.cast(values, pa.timestamp("us"), safe=False)
        else:
            raise EntityFrameError(
                f"The timestamp column '{column}' of the entity {description} has type {kind}; "
                "use timestamps, dates or ISO 8601 strings."
            )
    except (ValueError, pa.ArrowInvalid) as exc:
        raise EntityFrameError(
            f"The timestamp column '{column}' of the entity {description} has values that are not timestamps: {exc}"
        ) from None
    return table.set_column(index, pa.field(column, pa.timestamp("us")), values)


def _first_unparsable(texts) -> tuple[int, str] | None:
    """The first row (0-based) whose text is no ISO 8601 time; None if none is (one pass)."""
    import pandas as pd

    parsed = pd.to_datetime(texts, utc=True, format="ISO8601", errors="coerce")
    bad = (parsed.isna() & texts.notna()).to_numpy().nonzero()[0]
    return (int(bad[0]), texts.iloc[bad[0]]) if len(bad) else None


def output_timestamp_type(kind: pa.DataType) -> pa.DataType:
    """The type the result's timestamp column has for an entity timestamp of type `kind`: the
    same (naive stays naive, a zone stays, dates stay dates); strings parsed as ISO 8601 become
    UTC timestamps."""
    return kind if pa.types.is_timestamp(kind) or pa.types.is_date(kind) else pa.timestamp("us", tz="UTC")


def with_row_numbers(table: pa.Table) -> pa.Table:
    """Number the rows so the result keeps the input's order and duplicates."""
    check_column_names(table.schema.names, "frame")
    if ROW_COLUMN in table.schema.names:
        raise EntityFrameError(f"The entity frame has a column named {ROW_COLUMN}, which featurestore uses itself.")
    # numpy's arange: Arrow converting a Python range goes int by int (~30 ms per 100,000 rows)
    return table.append_column(ROW_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64)))


# -- key types ------------------------------------------------------------------------------------


def check_key_types(entity_schema: pa.Schema, view_name: str, view_schema: pa.Schema,
                    keys: list[tuple[str, str]], description: str) -> None:
    for entity_key, view_key in keys:
        if entity_key not in entity_schema.names:
            raise EntityFrameError(
                f"The entity {description} has no column '{entity_key}', a join key of feature view "
                f"'{view_name}'; its columns: {', '.join(n for n in entity_schema.names if n != ROW_COLUMN)}."
            )
        mine = family(entity_schema.field(entity_key).type)
        theirs = family(view_schema.field(view_key).type)
        if mine not in (theirs, NULL) and not {mine, theirs} <= _COMPARABLE_NUMBERS and {mine, theirs} != {TIMESTAMP, DATE}:
            raise EntityFrameError(
                f"Join key '{entity_key}' of the entity {description} is {entity_schema.field(entity_key).type} "
                f"but '{view_name}.{view_key}' is {view_schema.field(view_key).type}; convert the column "
                f"(e.g. df['{entity_key}'] = df['{entity_key}'].astype(str))."
            )
