"""DynamoDB as the online store.

One table per feature view, partition key `entity_key` (S): the join keys as `name=value`
joined by `|` in the view's key order (`customer_id=1001|product_type=jaffle`; `%`, `|` and `=`
inside values are percent-encoded). Each item also holds the join keys as attributes, every
feature as a native DynamoDB value (N, S, BOOL, NULL, L, M), `_event_timestamp` and
`_created_timestamp` (ISO 8601 UTC strings of fixed width, so they compare as strings), and
`_expires_at` (epoch seconds, DynamoDB's TTL attribute) when the view has a TTL.

Ordering is the store's, not a lease's: every item is written by a PutItem whose condition
admits it only if no item is stored, or the stored one has an older event, or the same event
created earlier. A paused, slow, retried or concurrent writer (two syncs, a push) can therefore
never put an older version over a newer one. A consistent read of the stored versions before
writing skips items that are already current (a cheap pre-filter; the condition is the guarantee).

Rows DynamoDB cannot hold (see codec.py) are set aside with view, key, feature and reason; the
rest of the view is written. DynamoDB's documented limits are enforced here whatever the
endpoint accepts: 100 keys a read request, 400 KB an item, 2,048 bytes a key, numbers of 38
digits within 1e-130..1e126, table names of 3-255 characters.

TTL is made sure on every write (described, enabled when disabled; "already enabled" is fine).
An endpoint without the TTL API (dynalite, some DynamoDB-compatible stores) gets a warning once,
and TTL still applies at read time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import cached_property, partial
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import (
    NotSent, OnlineStore, OnlineStoreError, OnlineTable, Rejected, TableGone, WriteReport, back_off, run_all,
)
from .codec import (  # noqa: F401  (re-exported: the item layout's functions)
    MAX_ITEM_BYTES, ValueRejected, check_key, decode, encode, entity_key, format_timestamp, item_size, parse_timestamp,
    stamp,
)
from .codec import BUILD, LOAD, WRITTEN_AT
from .config import OnlineConfig
from .bulk import BulkLoad
from .generations import READ_CACHE_SECONDS, Generations, pointer_key
from .transport import DynamoDBTransport

log = logging.getLogger("featurestore")
KEY = "entity_key"
EVENT = "_event_timestamp"
CREATED = "_created_timestamp"
EXPIRES = "_expires_at"
RESERVED_ATTRIBUTES = (KEY, EVENT, CREATED, EXPIRES, BUILD, WRITTEN_AT, LOAD)
STAMP_BYTES = 320  # _written_at and _load (a table name of up to 255 characters)
MAX_READ_KEYS = 100
# newer event, or the same event created later; `force` also rewrites the same version
_NEWER = "attribute_not_exists(#k) OR #e < :e OR (#e = :e AND #c < :c)"
_NOT_OLDER = "attribute_not_exists(#k) OR #e < :e OR (#e = :e AND #c <= :c)"
_TTL_UNSUPPORTED: set[str] = set()  # endpoints whose TTL API is missing (warned once per process)


class DynamoDBOnlineStore(DynamoDBTransport, OnlineStore):
    def __init__(self, config: OnlineConfig, workers: int = 8, deadline_seconds: float | None = None, client=None):
        self.config = config
        self.workers = workers
        self.deadline_seconds = config.timeout_seconds if deadline_seconds is None else deadline_seconds
        if client is not None:
            self.client, self._wire = client, None
        self._known_tables: set[str] = set()
        self._lock = threading.Lock()
        self._pointers: dict[str, tuple[Generations, float]] = {}  # view -> (pointer, read at; monotonic)
        self._pointer_locks: dict[str, threading.Lock] = {}  # view -> held while its pointer is read
        self._pointer_failures: dict[str, tuple[str, float]] = {}  # view -> its last read's failure, when (monotonic)
        self._refreshing: set[str] = set()  # views whose pointer a background thread is reading

    @property
    def sibling(self) -> Callable[[], "DynamoDBOnlineStore"]:
        """A picklable maker of a store like this one, with a client of its own (an engine's worker)."""
        return partial(DynamoDBOnlineStore, self.config, self.workers, self.deadline_seconds)

    def _forget_server(self) -> None:
        self._known_tables = set()
        self._pointers.clear()
        self._pointer_failures.clear()

    # -- tables ------------------------------------------------------------------------------
    def _ensure(self, name: str, key: str, sort: str | None = None, deadline: float | None = None) -> None:
        """The table exists (made here with partition key `key`, and sort key `sort` if given),
        by `deadline` (time.monotonic(); default the timeout from now)."""
        if name in self._known_tables:
            return
        from botocore.exceptions import ClientError

        moves = self.moves
        with self._lock:
            deadline = deadline or self._deadline()
            try:
                response, _ = self._call("describe_table", deadline, TableName=name)
                if response["Table"]["TableStatus"] != "ACTIVE":  # another writer is creating it right now
                    self._wait_until_active(name, deadline)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise OnlineStoreError(f"Cannot describe DynamoDB table {name}: {exc}") from None
                attributes = [{"AttributeName": key, "AttributeType": "S"}]
                schema = [{"AttributeName": key, "KeyType": "HASH"}]
                if sort:
                    attributes.append({"AttributeName": sort, "AttributeType": "S"})
                    schema.append({"AttributeName": sort, "KeyType": "RANGE"})
                try:
                    self._call("create_table", deadline, TableName=name, BillingMode="PAY_PER_REQUEST",
                               AttributeDefinitions=attributes, KeySchema=schema)
                except ClientError as create_error:
                    if create_error.response["Error"]["Code"] != "ResourceInUseException":  # created meanwhile
                        raise OnlineStoreError(f"Cannot create DynamoDB table {name}: {create_error}") from None
                self._wait_until_active(name, deadline)
            if self.moves == moves:  # (learnt of the server talked to before a move: not known of the new one)
                self._known_tables.add(name)

    def _wait_until_active(self, name: str, deadline: float) -> None:
        attempt = 0
        while True:
            response, _ = self._call("describe_table", deadline, TableName=name)
            if response["Table"]["TableStatus"] == "ACTIVE":
                return
            attempt += 1
            back_off(attempt, deadline, f"DynamoDB table {name} did not become active in time.", base=0.05, cap=1.0)

    def ensure_table(self, table: OnlineTable) -> None:
        """The view's live table exists (its first one is made here), with TTL when the view has one.
        A streaming view's table is its events table."""
        self._check_reserved(table)
        if table.stream is not None:
            self.events.ensure(table)
            return
        self._pointer_for_writing(table)

    @cached_property
    def events(self):
        """The events tables of streaming views (online/events.py)."""
        from .events import EventTables

        return EventTables(self)

    def write_events(self, table: OnlineTable, events, delay: float):
        """Put a streaming view's events, exactly once each (online/events.py)."""
        return self.events.write(table, table.stream, events, delay)

    def _pointer_for_writing(self, table: OnlineTable, pushing: bool = False) -> Generations:
        """The view's pointer, marked `pushed` before a view's first push (a bulk load then merges
        pushed items). The view's first table is made here, unless a fresh read of the pointer
        shows a later generation is live (a retired table is never made again)."""
        pointer = self.generations(table.view)
        if pushing and not pointer.pushed:
            pointer = self.update_generations(table.view, lambda current: None if current.pushed else current.marked_pushed()) \
                or self.generations(table.view, fresh=True)
        if pointer.live not in self._known_tables:
            moves = self.moves
            pointer = self.generations(table.view, fresh=True)
            if pointer.live == self.config.table_name(table.view):
                self._ensure_view_table(pointer.live, table)
            elif self.moves == moves:  # a generation: its loader made it
                self._known_tables.add(pointer.live)
        return pointer

    def _check_reserved(self, table: OnlineTable) -> None:
        clash = [name for name in table.features if name in RESERVED_ATTRIBUTES]
        if clash:
            raise OnlineStoreError(f"Feature view {table.view} has feature(s) {', '.join(clash)}, names the online "
                                   "store uses itself; rename them (featurestore validate reports this).")

    def _ensure_view_table(self, name: str, table: OnlineTable) -> None:
        self._ensure(name, KEY)
        if table.ttl_seconds:
            self._ensure_ttl(name)

    def _ensure_ttl(self, name: str) -> None:
        """Enable TTL on `_expires_at` unless it is on; every sync checks, so a table created
        earlier (or a failed first attempt) gets it. "Already enabled" from a concurrent sync is fine."""
        from botocore.exceptions import ClientError

        endpoint = self.config.endpoint_url or "AWS"
        if endpoint in _TTL_UNSUPPORTED:
            return
        deadline = self._deadline()
        try:
            response, _ = self._call("describe_time_to_live", deadline, TableName=name)
            description = response.get("TimeToLiveDescription") or {}
            if description.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
                if description.get("AttributeName") not in (None, EXPIRES):
                    log.warning(f"DynamoDB table {name} expires items by '{description['AttributeName']}', "
                                f"not {EXPIRES}; values still expire at read time")
                return
            self._call("update_time_to_live", deadline, TableName=name,
                       TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES})
        except ClientError as exc:
            code, message = exc.response["Error"]["Code"], exc.response["Error"].get("Message", "")
            if code in ("UnknownOperationException", "NotImplementedException", "UnrecognizedClientException") \
                    or "not supported" in message.lower():
                _TTL_UNSUPPORTED.add(endpoint)
                log.warning(f"DynamoDB at {endpoint} has no TTL API ({code}): items will not be deleted when they "
                            "expire; reads still treat values past the view's TTL as missing")
            elif code == "ValidationException" and "already" in message.lower():
                return  # another sync enabled it first
            else:
                raise OnlineStoreError(f"Cannot enable TTL on DynamoDB table {name}: {exc}") from None

    # -- writes ------------------------------------------------------------------------------
    def write(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]], should_stop: Callable[[], bool] | None = None,
              on_batch: Callable[[int], None] | None = None, force: bool = False, build: str | None = None) -> WriteReport:
        """Conditional puts of rows into every table the view's pointer lists (generations.py, rule
        1): the live table, the one a bulk load fills, and any a later read of the pointer adds.
        The report counts the first table's writes. build: the snapshot build the rows come from
        (None for a push); it decides what a later bulk load merges."""
        self._check_reserved(table)
        report = WriteReport()
        pointer = self._pointer_for_writing(table, pushing=build is None)
        items = self._newest_items(table, rows, report, build)
        done: list[str] = []
        gone: set[str] = set()
        while True:
            new = [name for name in pointer.targets() if name not in done]
            if pointer.loading and (pointer.loading in new or not done):  # marked before anything is written
                self.update_generations(table.view, lambda current: current.marked_dirty(pointer.loading))
            stamp(items, pointer.loading)
            if done and new:  # the pointer changed under us: the live table again, stamped for the load
                for name in [name for name in done if name in pointer.targets()]:
                    self._write_to(table.view, name, items, WriteReport(), True, should_stop, None, gone)
            for name in new:
                self._write_to(table.view, name, items, report if not done else WriteReport(), force, should_stop,
                               on_batch if not done else None, gone)
                done.append(name)
            pointer = self.generations(table.view, fresh=True)
            if pointer.live in gone:
                raise OnlineStoreError(f"The DynamoDB table {pointer.live} of {table.view} is missing.")
            if all(name in done for name in pointer.targets()):
                return report

    def refused(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]]) -> list[Rejected]:
        """The rows make_item refuses (the rule `write` sets rows aside by), nothing written."""
        refused = []
        for row in rows:
            try:
                make_item(table, row)
            except ValueRejected as exc:
                feature, _, reason = str(exc).partition("\t")
                refused.append(Rejected(table.view, _key_for_message(table, row), feature, reason))
        return refused

    def _write_to(self, view: str, name: str, items: list[dict], report: WriteReport, force: bool, should_stop,
                  on_batch, gone: set[str]) -> None:
        try:
            self._write_items(view, name, items, report, force, should_stop, on_batch)
        except TableGone:  # retired and dropped meanwhile (the pointer read next lists its successor),
            gone.add(name)  # or a load's table not made yet (its merge takes our write to the live one)

    def _newest_items(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]], report: WriteReport,
                      build: str | None) -> list[dict]:
        """One item per key, the newest version; rows the store cannot hold set aside in the report."""
        newest: dict[str, dict] = {}
        for row in rows:
            try:
                item = make_item(table, row, build)
            except ValueRejected as exc:
                feature, _, reason = str(exc).partition("\t")
                report.rejected.append(Rejected(table.view, _key_for_message(table, row), feature, reason))
                continue
            key = item[KEY]["S"]
            if key not in newest or _version(item) > _version(newest[key]):
                newest[key] = item
        return list(newest.values())

    def _write_items(self, view: str, name: str, items: list[dict], report: WriteReport, force: bool = False,
                     should_stop: Callable[[], bool] | None = None, on_batch: Callable[[int], None] | None = None) -> None:
        """Conditional puts across a thread pool, 100 keys a task (one consistent read of their
        stored versions, then a PutItem each for those that are newer). Raises OnlineStoreError if
        a request still fails at the deadline, TableGone if the table is not there; `should_stop`
        makes it stop submitting tasks (those in flight finish) and raise, so the caller does not
        move its watermark. A failed task, or Ctrl-C, stops the others after their current put."""
        groups = [items[i:i + MAX_READ_KEYS] for i in range(0, len(items), MAX_READ_KEYS)]
        report_lock = threading.Lock()
        stopped = threading.Event()

        def run(group):
            try:
                write_group(group)
            except BaseException:
                stopped.set()  # the other groups stop too: the write fails now, not after every group timed out
                raise

        def write_group(group):
            if stopped.is_set() or (should_stop and should_stop()):
                stopped.set()
                return
            # the timeout is per request (the read of the stored versions, each put), however long the write
            stored = self._stored_versions(name, [item[KEY]["S"] for item in group], self._deadline())
            written = stale = requests = retries = 0
            rejected = []
            for item in group:
                if stopped.is_set():
                    return  # another group failed, or Ctrl-C: this one stops too, after its current put
                current = stored.get(item[KEY]["S"])
                if current is not None and (_version(item) < current or (_version(item) == current and not force)):
                    stale += 1
                    continue
                outcome, tried = self._put_if_newer(name, item, force, self._deadline())
                requests, retries = requests + 1 + tried, retries + tried
                if outcome is True:
                    written += 1
                elif outcome is False:
                    stale += 1
                else:
                    rejected.append(Rejected(view, item[KEY]["S"], "item", outcome))
            with report_lock:
                report.written += written
                report.skipped_stale += stale
                report.rejected += rejected
                report.requests += requests + 1
                report.retries += retries
            if on_batch:
                on_batch(len(group))

        run_all(run, groups, self.workers, stopped)
        if stopped.is_set():
            raise OnlineStoreError(f"Sync of {view} stopped before every row was written.")

    def _put_if_newer(self, table_name: str, item: dict, force: bool, deadline: float) -> tuple[bool | str, int]:
        """(True, retries) when written, (False, ...) when the stored version is as new or newer,
        (reason, ...) when DynamoDB refused the item itself."""
        from botocore.exceptions import ClientError

        try:
            _, tried = self._call(
                "put_item", deadline, TableName=table_name, Item=item,
                ConditionExpression=_NOT_OLDER if force else _NEWER,
                ExpressionAttributeNames={"#k": KEY, "#e": EVENT, "#c": CREATED},
                ExpressionAttributeValues={":e": item[EVENT], ":c": item[CREATED]})
            return True, tried
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                return False, 0
            if code == "ValidationException":  # a rule we do not check ourselves: set aside, not fatal
                return f"DynamoDB refused the item: {exc.response['Error'].get('Message', code)}", 0
            if code == "ResourceNotFoundException":
                raise TableGone(table_name) from None
            raise OnlineStoreError(f"DynamoDB refused a write to {table_name}: {exc}") from None

    def _stored_versions(self, table_name: str, keys: list[str], deadline: float) -> dict[str, tuple[str, str]]:
        names = {"#k": KEY, "#e": EVENT, "#c": CREATED}
        items = self._read_items([(table_name, key) for key in keys], {table_name: ("#k, #e, #c", names)},
                                 deadline, consistent=True)
        return {key: _version(item) for (_, key), item in items.items()}

    # -- generations (generations.py) ---------------------------------------------------------
    def generations(self, view: str, fresh: bool = False, deadline: float | None = None) -> Generations:
        """The view's pointer: read consistently when fresh, else at most READ_CACHE_SECONDS old.
        Past half that age it is read again in the background while readers use the cached one
        (a serving process's reads never wait for it); once expired, one reader reads it and the
        others wait for its outcome instead of each reading it too: its pointer, or its failure
        (the store down: each waiter fails at once instead of trying again in turn). Nobody waits
        past `deadline` (time.monotonic(); default the store's timeout from now)."""
        cached = self._pointers.get(view)
        if not fresh and cached:
            age = time.monotonic() - cached[1]
            if age < READ_CACHE_SECONDS:
                if age >= READ_CACHE_SECONDS / 2:
                    self._refresh_pointer_soon(view)
                return cached[0]
        asked = time.monotonic()
        deadline = asked + self.deadline_seconds if deadline is None else deadline
        lock = self._pointer_lock(view)
        if not lock.acquire(timeout=max(0.0, deadline - asked)):
            raise OnlineStoreError(f"The online pointer of {view} was still being read from DynamoDB at "
                                   f"{self._endpoint_name} by another request at this one's deadline "
                                   f"({deadline - asked:.1f} s).")
        try:
            cached = self._pointers.get(view)
            if not fresh and cached and time.monotonic() - cached[1] < READ_CACHE_SECONDS:
                return cached[0]  # read by the reader this one waited for
            failed = self._pointer_failures.get(view)
            if failed and failed[1] >= asked:  # the read this one waited for failed
                raise OnlineStoreError(failed[0])
            try:
                return self._read_pointer(view, deadline)
            except NotSent:
                raise  # this reader's deadline, not the store's failure: the waiters try for themselves
            except OnlineStoreError as exc:
                self._pointer_failures[view] = (str(exc), time.monotonic())
                raise
        finally:
            lock.release()

    def _read_pointer(self, view: str, deadline: float | None = None) -> Generations:
        read_at, moves = time.monotonic(), self.moves
        state = self.get_state(pointer_key(view), deadline)
        pointer = Generations.from_state(state) if state else Generations(live=self.config.table_name(view))
        self._cache_pointer(view, pointer, read_at, moves)
        return pointer

    def _cache_pointer(self, view: str, pointer: Generations, read_at: float, moves: int) -> None:
        """Keep a pointer read (or saved) at read_at, unless one read later is kept, or the store
        moved to another server since (transport._moved): an answer of the old one in flight then
        is not the new server's pointer."""
        with self._lock:
            cached = self._pointers.get(view)
            if self.moves == moves and (cached is None or cached[1] <= read_at):
                self._pointers[view] = (pointer, read_at)

    def _pointer_lock(self, view: str) -> threading.Lock:
        with self._lock:
            return self._pointer_locks.setdefault(view, threading.Lock())

    def _refresh_pointer_soon(self, view: str) -> None:
        with self._lock:
            if view in self._refreshing:
                return
            self._refreshing.add(view)

        def refresh():
            try:
                with self._pointer_lock(view):
                    cached = self._pointers.get(view)
                    if cached is None or time.monotonic() - cached[1] >= READ_CACHE_SECONDS / 2:
                        self._read_pointer(view)
            except Exception:  # noqa: BLE001 - the reader that finds it expired reads it and reports the error
                pass
            finally:
                with self._lock:
                    self._refreshing.discard(view)

        threading.Thread(target=refresh, name=f"pointer-{view}", daemon=True).start()

    def live_table_name(self, view: str) -> str:
        """The DynamoDB table readers of the view read now (for other DynamoDB clients and tests)."""
        return self.generations(view, fresh=True).live

    def update_generations(self, view: str, change: Callable[[Generations], Generations | None],
                           deadline: float | None = None) -> Generations | None:
        """Apply change to the view's current pointer and store the result, conditional on the
        serial read (retried on a conflicting change). change returns None to change nothing;
        then None is returned. `deadline` (time.monotonic()) bounds the whole update instead of
        the timeout bounding each request."""
        from botocore.exceptions import ClientError

        self._ensure(self.config.state_table, "view", deadline=deadline)
        for attempt in range(1, 1000):
            moves = self.moves
            current = self.generations(view, fresh=True, deadline=deadline or self._deadline())
            updated = change(current)
            if updated is None:
                return None
            item = {"view": {"S": pointer_key(view)}, **{k: encode(v) for k, v in updated.as_state().items()}}
            try:
                self._call("put_item", deadline or self._deadline(), TableName=self.config.state_table, Item=item,
                           ConditionExpression="attribute_not_exists(#s) OR #s = :s",
                           ExpressionAttributeNames={"#s": "serial"},
                           ExpressionAttributeValues={":s": {"N": str(current.serial)}})
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    time.sleep(random.uniform(0, 0.01 * min(attempt, 20)))  # someone changed it: apply ours to theirs
                    continue
                raise OnlineStoreError(f"Cannot save the table pointer of {view}: {exc}") from None
            self._cache_pointer(view, updated, time.monotonic(), moves)
            return updated
        raise OnlineStoreError(f"The table pointer of {view} kept changing under 1,000 attempts to update it.")

    def drop_retired(self, view: str) -> list[str]:
        """Drop the view's retired generations whose time has come (the next sync does it). Each
        is first taken off the pointer (conditionally), then dropped; dropping is housekeeping,
        so a failure is a warning."""
        from botocore.exceptions import ClientError

        taken: list[str] = []

        def take(current: Generations) -> Generations | None:
            taken[:] = current.due_for_drop()
            return current.without(taken) if taken else None

        if not self.generations(view, fresh=True).due_for_drop() or self.update_generations(view, take) is None:
            return []
        for name in taken:
            try:
                self._call("delete_table", self._deadline(), TableName=name)
            except (ClientError, OnlineStoreError) as exc:
                if not isinstance(exc, ClientError) or exc.response["Error"]["Code"] not in (
                        "ResourceNotFoundException", "ResourceInUseException"):
                    log.warning(f"could not drop the retired table {name} of {view}: {exc}")
            self._known_tables.discard(name)
        log.info(f"dropped retired generation(s) of {view}: {', '.join(taken)}")
        return taken

    def begin_load(self, table: OnlineTable, build: str, lease_seconds: float | None = None):
        """A bulk load of a new generation of the view's table (see bulk.py), or None while another
        loader holds a live lease (the caller writes conditionally instead)."""
        return BulkLoad.claim(self, table, build, lease_seconds)

    # -- reads -------------------------------------------------------------------------------
    def ping(self, deadline: float | None = None) -> None:
        self._call("list_tables", deadline or self._probe_deadline(), Limit=1)

    def missing_tables(self, views: Sequence[str], deadline: float | None = None) -> list[str]:
        """One BatchGetItem of a key no item has per 100 live tables (a missing table fails the
        read); a view found missing is checked again through its pointer read afresh (a newer
        generation may have replaced the cached one's table)."""
        deadline = deadline or self._probe_deadline()

        def missing_of(live: dict[str, str]) -> list[str]:
            probe, missing = {name: ("#k", {"#k": KEY}) for name in live.values()}, set()
            names = list(probe)
            for start in range(0, len(names), MAX_READ_KEYS):
                self._read_items([(name, "featurestore-ready-probe") for name in names[start:start + MAX_READ_KEYS]],
                                 probe, deadline, missing=missing)
            return [view for view, name in live.items() if name in missing]

        missing = missing_of({view: self.generations(view, deadline=deadline).live for view in views})
        if missing:
            live = {view: self.generations(view, fresh=True, deadline=deadline).live for view in missing}
            missing = missing_of(live)
            self._known_tables.difference_update(live[view] for view in missing)  # made again when written
        return missing

    def read(self, table: OnlineTable, keys: Sequence[Mapping[str, Any]], features: Sequence[str],
             now: datetime | None = None, with_expired: bool = False) -> list[dict | None]:
        return self.read_many([(table, keys, features)], now, with_expired)[0]

    def read_many(self, reads: Sequence[tuple[OnlineTable, Sequence[Mapping[str, Any]], Sequence[str]]],
                  now: datetime | None = None, with_expired: bool = False,
                  asked_at: float | None = None) -> list[list[dict | None]]:
        """Several views' reads in as few BatchGetItem calls as DynamoDB allows (100 keys each,
        any mix of tables), the calls in parallel: a feature service's vector costs one round trip.
        A table found missing whose view's pointer has moved on (a generation dropped after the
        pointer was cached) is read again from the live one."""
        asked_at = time.monotonic() if asked_at is None else asked_at  # (a request waiting for a thread: its time counts)
        return self._read_all(reads, now, with_expired, asked_at + min(self.deadline_seconds, 30.0))

    def _read_all(self, reads, now, with_expired, deadline: float) -> list[list[dict | None]]:
        """read_many's work, all of it (the pointers, the reads, a read again) within `deadline`."""
        streams = [(index, read) for index, read in enumerate(reads) if read[0].stream is not None]
        if streams:  # Queries of the events tables (streaming views), beside the batch read of the others
            at = now or datetime.now(timezone.utc)
            rest = [read for read in reads if read[0].stream is None]
            inline = not rest and len(streams) == 1 and len(streams[0][1][1]) <= 1  # one Query: no thread handoff
            pending = {index: self.events.start_read(table, table.stream, keys, at, deadline, inline)
                       for index, (table, keys, _) in streams}
            answers = iter(self._read_all(rest, now, with_expired, deadline) if rest else [])
            return [pending[index]() if index in pending else next(answers) for index in range(len(reads))]
        missing: set[str] = set()
        answers = self._read_many(reads, now, with_expired, missing, deadline)
        moved = [table.view for table, _, _ in reads
                 if self.generations(table.view, deadline=deadline).live in missing
                 and self.generations(table.view, fresh=True, deadline=deadline).live not in missing]
        return self._read_many(reads, now, with_expired, set(), deadline) if moved else answers

    def _read_many(self, reads, now, with_expired, missing: set[str], deadline: float) -> list[list[dict | None]]:
        specs: dict[str, tuple[str, dict]] = {}
        plans, wanted_items = [], []
        for table, keys, features in reads:
            name = self.generations(table.view, deadline=deadline).live
            names = {f"#f{i}": feature for i, feature in enumerate(features)}
            names.update({"#k": KEY, "#e": EVENT})
            if name in specs and specs[name][1] != names:
                raise ValueError(f"read_many: {table.view} is read twice with different features")
            specs[name] = (", ".join(["#k", "#e", *[f"#f{i}" for i in range(len(features))]]), names)
            wanted = [entity_key(table.join_keys, key) if all(key.get(k) is not None for k in table.join_keys) else None
                      for key in keys]
            plans.append((name, table, features, wanted))
            wanted_items += [(name, key) for key in sorted({k for k in wanted if k is not None and len(k.encode()) <= 2048})]
        distinct = list(dict.fromkeys(wanted_items))
        chunks = [distinct[i:i + MAX_READ_KEYS] for i in range(0, len(distinct), MAX_READ_KEYS)]
        found: dict[tuple[str, str], dict] = {}

        def fetch(chunk):
            return self._read_items(chunk, specs, deadline, missing=missing)

        if len(chunks) == 1:
            found.update(fetch(chunks[0]))
        elif chunks:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(chunks))) as pool:
                for result in pool.map(fetch, chunks):
                    found.update(result)
        current = now or datetime.now(timezone.utc)
        current = current if current.tzinfo else current.replace(tzinfo=timezone.utc)
        answers = []
        for name, table, features, wanted in plans:
            results = []
            for key in wanted:
                item = found.get((name, key)) if key else None
                if item is None:
                    results.append(None)
                    continue
                event = parse_timestamp(item[EVENT]["S"])
                expired = bool(table.ttl_seconds) and (current - event).total_seconds() > table.ttl_seconds
                if expired and not with_expired:
                    results.append(None)  # past the TTL, even if DynamoDB has not deleted it yet
                    continue
                values = {feature: decode(item[feature], table.features.get(feature)) if feature in item else None
                          for feature in features}
                values["_event_timestamp"] = event
                if with_expired:
                    values["_expired"] = expired
                results.append(values)
            answers.append(results)
        return answers

    def _read_items(self, items: list[tuple[str, str]], specs: Mapping[str, tuple[str, dict]], deadline: float,
                    consistent: bool = False, missing: set[str] | None = None) -> dict[tuple[str, str], dict]:
        """One BatchGetItem of at most 100 (table, key) pairs; UnprocessedKeys resent with backoff
        until the deadline. A table that does not exist yet (never synced) reads as empty."""
        from botocore.exceptions import ClientError

        assert len(items) <= MAX_READ_KEYS
        request: dict = {}
        for name, key in items:
            projection, names = specs[name]
            entry = request.setdefault(name, {"Keys": [], "ProjectionExpression": projection,
                                              "ExpressionAttributeNames": names, "ConsistentRead": consistent})
            entry["Keys"].append({KEY: {"S": key}})
        found, attempt = {}, 0
        while request:
            try:
                response, _ = self._call("batch_get_item", deadline, RequestItems=request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise OnlineStoreError(f"DynamoDB refused a read from {', '.join(request)}: {exc}") from None
                if len(request) == 1:
                    if missing is not None:
                        missing.add(next(iter(request)))
                    return found  # never synced: every key is missing (or a generation dropped: see read_many)
                for name in list(request):  # which table is missing: one request each
                    found.update(self._read_items([(n, k) for n, k in items if n == name], specs, deadline, consistent,
                                                  missing))
                return found
            for name, rows in response.get("Responses", {}).items():
                for item in rows:
                    found[(name, item[KEY]["S"])] = item
            asked = sum(len(entry["Keys"]) for entry in request.values())
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            # part of the work done (a store caps a response's size): ask for the rest at once;
            # back off only when a call made no progress (the store is throttling)
            progressed = sum(len(entry["Keys"]) for entry in request.values()) < asked
            attempt = 0 if progressed else attempt + 1
            if attempt:
                back_off(attempt, deadline, f"Reads from {', '.join(request)} still unprocessed at the deadline.",
                          base=0.02, cap=1.0)
            elif time.monotonic() > deadline:
                raise OnlineStoreError(f"Reads from {', '.join(request)} still unprocessed at the deadline.")
        return found

    # -- sync state ----------------------------------------------------------------------------
    def get_state(self, key: str, deadline: float | None = None) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            response, _ = self._call("get_item", deadline or self._deadline(), TableName=self.config.state_table,
                                     Key={"view": {"S": key}}, ConsistentRead=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise OnlineStoreError(f"Cannot read the sync state {key}: {exc}") from None
        item = response.get("Item")
        return {name: decode(value) for name, value in item.items() if name != "view"} if item else None

    def put_state(self, key: str, state: Mapping[str, Any]) -> bool:
        from botocore.exceptions import ClientError

        self._ensure(self.config.state_table, "view")
        item = {"view": {"S": key}, **{name: encode(value) for name, value in state.items()}}
        try:
            self._call("put_item", self._deadline(), TableName=self.config.state_table, Item=item,
                       ConditionExpression="attribute_not_exists(#w) OR #w <= :w OR #b <> :b",
                       ExpressionAttributeNames={"#w": "watermark", "#b": "build_id"},
                       ExpressionAttributeValues={":w": encode(state.get("watermark") or ""),
                                                  ":b": encode(state.get("build_id") or "")})
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # a later watermark of the same build is stored: keep it
            raise OnlineStoreError(f"Cannot save the sync state {key}: {exc}") from None


def make_item(table: OnlineTable, row: Mapping[str, Any], build: str | None = None) -> dict:
    """The item of a row; ValueRejected names the feature whose value DynamoDB cannot hold. build:
    the snapshot build a sync's row comes from (none for a push: a bulk load merges pushed items).
    Room is left for the stamps writers add (_stamp)."""
    key = entity_key(table.join_keys, row)
    try:
        check_key(key)
    except ValueRejected as exc:
        raise ValueRejected(f"entity key\t{exc}") from None
    event = row["event_timestamp"]
    created = row.get("created_timestamp") or event  # without one, the event time orders versions
    item = {KEY: {"S": key}, EVENT: {"S": format_timestamp(event)}, CREATED: {"S": format_timestamp(created)}}
    if table.ttl_seconds:
        epoch = (event if event.tzinfo else event.replace(tzinfo=timezone.utc)).timestamp()
        item[EXPIRES] = {"N": str(int(epoch) + table.ttl_seconds)}
    if build:
        item[BUILD] = {"S": build}
    for name in (*table.join_keys, *table.features):
        try:
            item[name] = encode(row.get(name))
        except ValueRejected as exc:
            raise ValueRejected(f"{name}\t{exc}") from None
    if item_size(item) + STAMP_BYTES > MAX_ITEM_BYTES:
        raise ValueRejected(f"item\tthe item is {item_size(item):,} bytes; DynamoDB's limit is 400 KB")
    return item



def _version(item: dict) -> tuple[str, str]:
    return item[EVENT]["S"], item[CREATED]["S"]


def _key_for_message(table: OnlineTable, row: Mapping[str, Any]) -> str:
    key = entity_key(table.join_keys, row)
    return key if len(key) <= 120 else key[:100] + f"… ({len(key.encode()):,} bytes)"
