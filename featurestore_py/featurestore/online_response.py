"""What `get_online_features` returns: columns of values, in the order of the entity rows."""

from __future__ import annotations

from typing import Any


class OnlineResponse:
    def __init__(self, columns: dict[str, list[Any]]):
        self._columns = columns

    def to_dict(self) -> dict[str, list[Any]]:
        """{column: [value per entity row]}: the entity keys, then every feature (None when missing)."""
        return {name: list(values) for name, values in self._columns.items()}

    def to_df(self):
        import pandas as pd

        return pd.DataFrame(self._columns)

    def __repr__(self) -> str:
        return f"OnlineResponse({self._columns!r})"
