"""The events of streaming views in DynamoDB (the rule they serve is in featurestore/streaming.py).

One table per streaming view, `<prefix><view>.events`: partition key `entity_key` (the view's
join keys, as for feature items), sort key `_event`: the event time (fixed-width ISO 8601 UTC)
then `#` and the event id, so one Query reads a key's events of a time range in order. An item
holds the event's values, `_pushed_at` (from when reads count it) and `_expires_at` (event time
plus the longest window plus a day: DynamoDB's TTL deletes it; reads never look that far back).

Exactly once: an event is put only if its item is absent (`attribute_not_exists`), so a retried
push with the same key, time and id changes nothing; the retry gets the stored version back (it
is landed again as it was first counted; the offline side keeps one copy).

When an event counts (`_pushed_at`): the writer stamps it `FEATURESTORE_PUSH_VISIBILITY_DELAY`
(0.2 s) after it sends the put, and the push is answered only after that time and after the
write. A read at t counts the events it finds with `_pushed_at <= t`; the landed copy carries the
same `_pushed_at`, and the offline side counts it from then. Whenever a write is confirmed within
the delay (the normal case: a put takes milliseconds), online and offline therefore count an
event from the same instant — a served value equals the training set's at the request's time,
even with pushes in flight from other servers. A slower write (`slow_writes` in the push's
answer; the landed copy's `_confirmed_at` is later than its `_pushed_at`) may be missed by a read
between its stamp and the moment the store applied it: the served audit reports such a read as
`in_flight`, not as a mismatch. No store-side clock exists to close that gap; a longer delay
makes it rarer.
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

from ..errors import FeatureStoreError
from ..streaming import ITEM_ATTRIBUTES, StreamSpec, aggregate
from . import OnlineStoreError, OnlineTable
from .codec import ValueRejected, check_key, decode, encode, entity_key, format_timestamp, item_size

_, SORT, PUSHED, EXPIRES = ITEM_ATTRIBUTES  # "_event", "_pushed_at", "_expires_at" (refused as event columns)
DELAY_ENV = "FEATURESTORE_PUSH_VISIBILITY_DELAY"
DEFAULT_DELAY = 0.2  # seconds
EXPIRY_MARGIN = timedelta(days=1)


def visibility_delay(env: Mapping[str, str] | None = None) -> float:
    """FEATURESTORE_PUSH_VISIBILITY_DELAY in seconds (0 to 10; default 0.2)."""
    raw = (env if env is not None else os.environ).get(DELAY_ENV, "")
    if not raw.strip():
        return DEFAULT_DELAY
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10:
        raise FeatureStoreError(f"{DELAY_ENV} must be a number of seconds from 0 to 10, not {raw!r}.")
    return value


def table_name(store, view: str) -> str:
    return store.config.table_name(f"{view}.events")


@dataclass(frozen=True)
class Event:
    """One pushed event, checked: its item is ready (values encoded, limits enforced)."""

    key: str
    time: datetime  # naive UTC
    event_id: str
    values: Mapping[str, Any]
    item: Mapping[str, Any]  # without _pushed_at


@dataclass
class EventWrite:
    """What happened to one event online."""

    status: str  # written, duplicate (stored before: `values`/`pushed_at` are the stored ones), closed, failed
    pushed_at: datetime  # from when it counts (naive UTC)
    values: Mapping[str, Any] = field(default_factory=dict)
    confirmed_at: datetime | None = None  # when the put was confirmed (written events)
    error: str | None = None  # why a failed put failed

    @property
    def slow(self) -> bool:
        return self.confirmed_at is not None and self.confirmed_at > self.pushed_at


def answer_after(results: Sequence[EventWrite]) -> float | None:
    """The epoch second from which every written or stored event of a push counts for reads (a
    duplicate's first push may still be in its delay): the push is answered no earlier."""
    stamps = [r.pushed_at for r in results if r.status in ("written", "duplicate")]
    return max(stamps).replace(tzinfo=timezone.utc).timestamp() if stamps else None


def make_event(table: OnlineTable, spec: StreamSpec, row: Mapping[str, Any], event_time: datetime,
               event_id: str | None) -> Event:
    """The event's item; ValueRejected (reason "column\\treason") when DynamoDB cannot hold it."""
    key = entity_key(table.join_keys, row)
    try:
        check_key(key)
    except ValueRejected as exc:
        raise ValueRejected(f"entity key\t{exc}") from None
    identity = event_id if event_id is not None else uuid.uuid4().hex
    sort = f"{format_timestamp(event_time)}#{identity}"
    try:
        expires = int((event_time.replace(tzinfo=timezone.utc) + spec.longest + EXPIRY_MARGIN).timestamp())
    except OverflowError:
        raise ValueRejected(f"event time\t{event_time.isoformat()} is too far in the future") from None
    item = {"entity_key": {"S": key}, SORT: {"S": sort}, EXPIRES: {"N": str(expires)}}
    for name in table.join_keys:
        item[name] = encode(row[name])
    values = {}
    for column in spec.events:
        value = row.get(column)
        try:
            item[column] = encode(value)
        except ValueRejected as exc:
            raise ValueRejected(f"{column}\t{exc}") from None
        values[column] = value
    if len(sort.encode()) > 1024:
        raise ValueRejected(f"event id\tthe event id makes a sort key of {len(sort.encode()):,} bytes; DynamoDB's "
                            "limit is 1,024")
    size = item_size(item) + 64
    if size > 400 * 1024:
        raise ValueRejected(f"item\tthe event is {size:,} bytes; DynamoDB's item limit is 409,600")
    return Event(key, event_time, identity, values, item)


class EventTables:
    """Writes and reads of streaming views' events through a DynamoDBOnlineStore (its client,
    retries, deadlines and table making)."""

    def __init__(self, store):
        self.store = store
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def pool(self, kind: str) -> ThreadPoolExecutor:
        """The process's pool of `kind` (reads, writes): reads never queue behind pushes. Its
        tasks are single requests that wait on nothing, so concurrent callers cannot starve it."""
        with self._lock:
            if kind not in self._pools:
                size = max(4, self.store.workers) * (2 if kind == "reads" else 1)
                self._pools[kind] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"fs-event-{kind}")
            return self._pools[kind]

    def ensure(self, table: OnlineTable) -> str:
        """The view's events table exists, with TTL on `_expires_at` (checked once per process)."""
        name = table_name(self.store, table.view)
        if name not in self.store._known_tables:
            self.store._ensure(name, "entity_key", sort=SORT)
            self.store._ensure_ttl(name)
        return name

    # -- writes ----------------------------------------------------------------------------------
    def write(self, table: OnlineTable, spec: StreamSpec, events: Sequence[Event], delay: float) -> list[EventWrite]:
        """Put each event unless stored (or its windows have all closed), in parallel, every put
        to its end: a failed one is `failed` (its `error` says why) and the others keep their
        outcome, so the caller lands what was written before it reports the failure. The caller
        answers no earlier than `answer_after(results)`."""
        name = self.ensure(table)
        closed_before = datetime.now(timezone.utc).replace(tzinfo=None) - spec.longest

        def put(event: Event) -> EventWrite:
            stamp = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=delay)
            if event.time <= closed_before:
                return EventWrite("closed", stamp, dict(event.values))
            try:
                return self._put(name, table, spec, event, stamp)
            except OnlineStoreError as exc:
                return EventWrite("failed", stamp, dict(event.values), error=str(exc))

        if len(events) == 1:
            return [put(events[0])]
        return list(self.pool("writes").map(put, events))

    def _put(self, name: str, table: OnlineTable, spec: StreamSpec, event: Event, stamp: datetime) -> EventWrite:
        """One conditional put. A condition failure is a duplicate — unless the stored item carries
        this very stamp: then our own put was applied and its answer lost (and retried)."""
        from botocore.exceptions import ClientError

        item = dict(event.item)
        item[PUSHED] = {"S": format_timestamp(stamp)}
        deadline = self.store._deadline()
        try:
            self.store._call("put_item", deadline, TableName=name, Item=item,
                             ConditionExpression="attribute_not_exists(#k)", ExpressionAttributeNames={"#k": "entity_key"})
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code != "ConditionalCheckFailedException":
                raise OnlineStoreError(f"DynamoDB refused an event of {table.view} ({event.key}): {exc}") from None
            stored, _ = self.store._call("get_item", deadline, TableName=name, ConsistentRead=True,
                                         Key={"entity_key": item["entity_key"], SORT: item[SORT]})
            stored = stored.get("Item") or item
            if stored[PUSHED] != item[PUSHED]:
                values = {column: decode(stored[column], dtype) if column in stored else None
                          for column, dtype in spec.events.items()}
                return EventWrite("duplicate", _naive_time(stored[PUSHED]["S"]), values)
        confirmed = datetime.now(timezone.utc).replace(tzinfo=None)
        return EventWrite("written", stamp, dict(event.values), confirmed)

    # -- reads -----------------------------------------------------------------------------------
    def start_read(self, table: OnlineTable, spec: StreamSpec, keys: Sequence[Mapping[str, Any]], at: datetime,
                   deadline: float, inline: bool = False) -> Callable[[], list[dict | None]]:
        """Start the Queries of each key's events (in the pool, unless inline) and return the
        function that waits for them: per key, the aggregates at `at` with `_event_timestamp` =
        at (a window's value is as of the request), or None when the key has no event in the
        longest window. The pool's tasks wait on nothing, so concurrent reads cannot starve it."""
        name = table_name(self.store, table.view)
        at = at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo else at
        wanted = [entity_key(table.join_keys, key) if all(key.get(k) is not None for k in table.join_keys) else None
                  for key in keys]
        distinct = sorted({key for key in wanted if key is not None and len(key.encode()) <= 2048})
        if inline:
            fetched = {key: self._events(name, spec, key, at, deadline) for key in distinct}
            pending = {}
        else:
            fetched, pending = {}, {key: self.pool("reads").submit(self._events, name, spec, key, at, deadline)
                                    for key in distinct}

        def finish() -> list[dict | None]:
            found = {**fetched, **{key: future.result() for key, future in pending.items()}}
            answers = []
            for key in wanted:
                values = aggregate(spec, found.get(key) or (), at) if key is not None else None
                if values is not None:
                    values["_event_timestamp"] = at.replace(tzinfo=timezone.utc)
                answers.append(values)
            return answers
        return finish

    def _events(self, name: str, spec: StreamSpec, key: str, at: datetime, deadline: float) -> list[dict]:
        from botocore.exceptions import ClientError

        low = format_timestamp(at - spec.longest)
        high = format_timestamp(at) + "#\uffff"
        request = {"TableName": name, "ConsistentRead": True,
                   "KeyConditionExpression": "#k = :k AND #s BETWEEN :lo AND :hi",
                   "ExpressionAttributeNames": {"#k": "entity_key", "#s": SORT},
                   "ExpressionAttributeValues": {":k": {"S": key}, ":lo": {"S": low}, ":hi": {"S": high}}}
        events = []
        while True:
            try:
                response, _ = self.store._call("query", deadline, **request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    return []  # nothing pushed yet
                raise OnlineStoreError(f"DynamoDB refused a read of {name}: {exc}") from None
            for item in response.get("Items", []):
                event = {"time": _naive_time(item[SORT]["S"]), "known": _naive_time(item[PUSHED]["S"])}
                for column, dtype in spec.events.items():
                    event[column] = decode(item[column], dtype) if column in item else None
                events.append(event)
            if not response.get("LastEvaluatedKey"):
                return events
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _naive_time(text: str) -> datetime:
    """A fixed-width `format_timestamp` string (possibly followed by `#id`) as naive UTC; 30 times
    faster than strptime, which a read of a hundred events felt."""
    return datetime.fromisoformat(text[:26])
