"""The online store: one interface, one DynamoDB implementation, and a local DynamoDB endpoint.

Items are plain attributes any DynamoDB client can read; see dynamodb.py for the layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..errors import FeatureStoreError


class OnlineStoreError(FeatureStoreError):
    """The online store refused or failed a request, after retries."""


@dataclass(frozen=True)
class OnlineTable:
    """What the online store needs to know of a feature view (nothing of dbt)."""

    view: str
    join_keys: tuple[str, ...]
    features: Mapping[str, str | None]  # feature -> declared data_type
    ttl_seconds: int | None


@dataclass
class WriteReport:
    written: int = 0  # items put
    skipped_stale: int = 0  # items not written because a newer event is already stored
    requests: int = 0
    retries: int = 0


class OnlineStore(ABC):
    @abstractmethod
    def ensure_table(self, table: OnlineTable) -> None:
        """Create the view's table if missing (and accept it if it exists)."""

    @abstractmethod
    def write(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]], should_stop=None) -> WriteReport:
        """Put rows (join keys, event_timestamp, created_timestamp, features); never replace a
        stored item by one with an older event timestamp."""

    @abstractmethod
    def read(self, table: OnlineTable, keys: Sequence[Mapping[str, Any]], features: Sequence[str],
             now=None) -> list[dict | None]:
        """Feature values per key (None for a missing key); values past the TTL are None."""

    @abstractmethod
    def get_state(self, view: str) -> dict | None:
        """The sync state of a view (watermark, rows last pushed, ...), None before the first sync."""

    @abstractmethod
    def put_state(self, view: str, state: Mapping[str, Any]) -> None: ...
