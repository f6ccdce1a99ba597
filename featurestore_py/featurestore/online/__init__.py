"""The online store: one interface, one DynamoDB implementation, and a local DynamoDB endpoint.

Items are plain attributes any DynamoDB client can read; see dynamodb.py for the layout.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import FeatureStoreError


PROBE_SECONDS = 5.0  # a probe's deadline at most (readiness, a status): a prober waits no longer
# how often a caller waiting for a pool wakes to see a Ctrl-C: the kernel may hand the signal to a
# worker thread, and Python raises KeyboardInterrupt in the main thread only once that thread runs
WAKE_SECONDS = 0.2


class OnlineStoreError(FeatureStoreError):
    """The online store refused or failed a request, after retries."""


class NotSent(OnlineStoreError):
    """A request not sent at all: its deadline had passed first (nothing learnt of the store)."""


class TableGone(OnlineStoreError):
    """A table named by a pointer read earlier is not there (a retired generation, dropped)."""


def back_off(attempt: int, deadline: float, failure: str, base: float = 0.05, cap: float = 5.0,
             last_try: bool = False) -> None:
    """Sleep an exponentially growing, jittered delay; raise if it would pass the deadline (with
    last_try: sleep until the deadline instead, for one more attempt there)."""
    delay = min(cap, base * 2 ** attempt) * random.uniform(0.5, 1.0)
    if time.monotonic() + delay > deadline:
        if not last_try or time.monotonic() >= deadline:
            raise OnlineStoreError(failure)
        delay = deadline - time.monotonic()
    time.sleep(max(0.0, delay))


def run_all(task: Callable[[Any], None], items: Sequence[Any], workers: int, stop: threading.Event) -> None:
    """task(item) for every item, across a pool of `workers` threads when there is more than one:
    the one way this package waits for a pool of writers. A failure, or Ctrl-C in the caller,
    sets `stop` (the tasks check it: those queued return at once, those running after their
    current request) before it propagates: the pool's exit would otherwise wait for every
    queued task."""
    if len(items) <= 1:
        for item in items:
            task(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            pending = {pool.submit(task, item) for item in items}
            while pending:  # a wait that wakes by itself (WAKE_SECONDS), failing at the first failure
                done, pending = wait(pending, timeout=WAKE_SECONDS, return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()
        except BaseException:
            stop.set()
            raise


@dataclass(frozen=True)
class OnlineTable:
    """What the online store needs to know of a feature view (nothing of dbt)."""

    view: str
    join_keys: tuple[str, ...]
    features: Mapping[str, str | None]  # feature -> declared data_type
    ttl_seconds: int | None
    stream: Any = None  # a streaming view's StreamSpec (featurestore/streaming.py): its events are the state


@dataclass(frozen=True)
class Rejected:
    """A row the online store cannot hold, set aside so the rest of the view syncs."""

    view: str
    key: str
    feature: str  # the feature (or "entity key") whose value broke a rule
    reason: str

    def as_dict(self) -> dict:
        return {"view": self.view, "key": self.key, "feature": self.feature, "reason": self.reason}


@dataclass
class WriteReport:
    written: int = 0  # items put
    skipped_stale: int = 0  # items not written because the stored version is as new or newer
    rejected: list[Rejected] = field(default_factory=list)
    requests: int = 0
    retries: int = 0

    def add(self, other: "WriteReport") -> None:
        self.written += other.written
        self.skipped_stale += other.skipped_stale
        self.rejected += other.rejected
        self.requests += other.requests
        self.retries += other.retries


class OnlineStore(ABC):
    # times the store moved to another server since it was made (a project's local DynamoDB that
    # `online up` started again on another port): work begun before a move is not recorded after it
    moves = 0

    @abstractmethod
    def ensure_table(self, table: OnlineTable) -> None:
        """Create the view's table if missing (and accept it if it exists)."""

    @abstractmethod
    def write(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]], should_stop=None, on_batch=None,
              force: bool = False, build: str | None = None) -> WriteReport:
        """Put rows (join keys, event_timestamp, created_timestamp, features). Each write carries its
        own condition: a stored item is replaced only by a newer event, or the same event created
        later (force: or created at the same time). Rows the store cannot hold are set aside in
        the report's `rejected`. build: the snapshot build the rows come from (None: a push)."""

    def refused(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]]) -> list[Rejected]:
        """The rows `write` would set aside because the store cannot hold them (its own rule, run
        without writing): a push checks its rows whole with it before anything is written."""
        return []

    def begin_load(self, table: OnlineTable, build: str):
        """A bulk load of the view's current rows (a context manager with write(rows), writer()
        and finish(); see online/bulk.py), or None when the store has none, or another load runs:
        then the caller writes conditionally."""
        return None

    def write_events(self, table: OnlineTable, events, delay: float) -> list:
        """Put a streaming view's events exactly once each (see online/events.py)."""
        raise OnlineStoreError(f"This online store keeps no events, so the streaming view {table.view} cannot be pushed.")

    def drop_retired(self, view: str) -> list[str]:
        """Drop what earlier bulk loads left behind and readers no longer need."""
        return []

    @abstractmethod
    def read(self, table: OnlineTable, keys: Sequence[Mapping[str, Any]], features: Sequence[str],
             now=None, with_expired: bool = False) -> list[dict | None]:
        """Feature values per key (None for a missing key), with `_event_timestamp`; values past
        the TTL are None, unless with_expired: then they come with `_expired` true."""

    def read_many(self, reads: Sequence[tuple[OnlineTable, Sequence[Mapping[str, Any]], Sequence[str]]],
                  now=None, with_expired: bool = False, asked_at: float | None = None) -> list[list[dict | None]]:
        """`read` for several views at once (a store may batch them into fewer requests). asked_at:
        when the read was asked for (time.monotonic(); a server's request arriving), which its
        deadline counts from (default now)."""
        return [self.read(table, keys, features, now=now, with_expired=with_expired) for table, keys, features in reads]

    @abstractmethod
    def ping(self, deadline: float | None = None) -> None:
        """Raise unless the store answers (by `deadline`, time.monotonic(); default PROBE_SECONDS from now)."""

    @abstractmethod
    def missing_tables(self, views: Sequence[str], deadline: float | None = None) -> list[str]:
        """The views (of `views`) whose live table the store does not hold: never synced, or the
        store lost it (an emulator restarted empty). Their reads answer NOT_FOUND for every key.
        Raises when the store does not answer by `deadline` (as `ping`)."""

    @abstractmethod
    def get_state(self, key: str) -> dict | None:
        """A sync state (watermark, build id, rows last pushed, ...), None before the first sync."""

    @abstractmethod
    def put_state(self, key: str, state: Mapping[str, Any]) -> bool:
        """Save a sync state unless the stored one, of the same build, has a later watermark (then
        return False and keep it): watermarks never move backwards."""
