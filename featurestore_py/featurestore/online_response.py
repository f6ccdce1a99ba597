"""What `get_online_features` returns: columns of values, in the order of the entity rows."""

from __future__ import annotations

from typing import Any, Mapping


class OnlineResponse:
    def __init__(self, columns: dict[str, list[Any]], dtypes: Mapping[str, str | None] | None = None):
        self._columns = columns
        self._dtypes = dict(dtypes or {})  # feature column -> declared data_type

    def to_dict(self) -> dict[str, list[Any]]:
        """{column: [value per entity row]}: the entity keys, then every feature (None when missing)."""
        return {name: list(values) for name, values in self._columns.items()}

    def to_arrow(self):
        """The values as an Arrow table, each feature typed as declared in its YAML."""
        import pyarrow as pa

        from .frames import arrow_type

        arrays = {}
        for name, values in self._columns.items():
            kind = arrow_type(self._dtypes.get(name))
            if kind is not None and pa.types.is_floating(kind):
                values = [None if v is None else float(v) for v in values]
            arrays[name] = pa.array(values, type=kind) if kind is not None else pa.array(values)
        return pa.table(arrays)

    def to_df(self):
        """pandas with the same ML-ready dtypes as a training set's `to_df()` (featurestore.frames)."""
        from .frames import ml_dataframe

        return ml_dataframe(self.to_arrow())

    def __repr__(self) -> str:
        return f"OnlineResponse({self._columns!r})"
