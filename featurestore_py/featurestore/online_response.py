"""What `get_online_features` returns: columns of values, in the order of the entity rows, with a
status and an event timestamp per value (see featurestore.online.reader)."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Sequence

from .types import is_whole_number
from .online.reader import OnlineColumn

TIMESTAMP_SUFFIX = "__ts"  # Feast's name for a column's event timestamps in to_dict(include_event_timestamps=True)


class OnlineResponse:
    def __init__(self, columns: Sequence[OnlineColumn]):
        self.columns = list(columns)

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list[Any]]:
        """{column: [value per entity row]}: the entity keys, then every feature (None when
        missing), as plain Python values like the feature server's JSON: a decimal is a float (an
        integer for an integer column), a timestamp a UTC datetime as Feast's `to_dict` gives it.
        include_event_timestamps adds `<column>__ts` with each value's event time in epoch
        seconds (0 without one), as Feast does."""
        result: dict[str, list[Any]] = {}
        for column in self.columns:
            result[column.name] = [plain_value(value, column.dtype) for value in column.values]
            if include_event_timestamps:
                result[column.name + TIMESTAMP_SUFFIX] = [
                    0 if moment is None else int(moment.timestamp()) for moment in column.event_timestamps]
        return result

    @property
    def statuses(self) -> dict[str, list[str]]:
        """{column: [status per entity row]}: PRESENT, NOT_FOUND, NULL_VALUE or OUTSIDE_MAX_AGE."""
        return {column.name: list(column.statuses) for column in self.columns}

    @property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """{column: [the event time of each value's item, None without one]}."""
        return {column.name: list(column.event_timestamps) for column in self.columns}

    def to_arrow(self):
        """The values as an Arrow table, each feature typed as declared in its YAML."""
        import pyarrow as pa

        from .frames import arrow_type

        arrays = {}
        for column in self.columns:
            kind, values = arrow_type(column.dtype), column.values
            if kind is not None and pa.types.is_floating(kind):
                values = [None if v is None else float(v) for v in values]
            arrays[column.name] = pa.array(values, type=kind) if kind is not None else pa.array(values)
        return pa.table(arrays)

    def to_df(self):
        """pandas with the same ML-ready dtypes as a training set's `to_df()` (featurestore.frames)."""
        from .frames import ml_dataframe

        return ml_dataframe(self.to_arrow())

    def __repr__(self) -> str:
        return f"OnlineResponse({self.to_dict()!r})"


def plain_value(value: Any, dtype: str | None = None) -> Any:
    """A feature value as a plain Python value: decimals as numbers, the rest as decoded."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and is_whole_number(dtype) else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_value(item) for key, item in value.items()}
    return value


def json_value(value: Any, dtype: str | None = None) -> Any:
    """A feature value as JSON (the feature server's): plain values, times as ISO 8601."""
    value = plain_value(value, dtype)
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")  # a blob, as JSON carries bytes
    if isinstance(value, (set, frozenset)):
        return sorted(json_value(item) for item in value)
    if isinstance(value, datetime):
        return iso_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def iso_timestamp(moment: datetime) -> str:
    """`2026-12-01T00:00:00.000000Z`: UTC, naive values taken as UTC."""
    if moment.tzinfo is timezone.utc:  # as the online store reads them
        moment = moment.replace(tzinfo=None)
    elif moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"
