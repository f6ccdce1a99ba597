"""DynamoDB as the online store.

One table per feature view, partition key `entity_key` (S): the join keys as `name=value`
joined by `|` in the view's key order (`customer_id=1001|product_type=jaffle`; `%`, `|` and `=`
inside values are percent-encoded). Each item also holds the join keys as attributes, every
feature as a native DynamoDB value (N, S, BOOL, NULL, L, M), `_event_timestamp` and
`_created_timestamp` (ISO 8601 UTC strings of fixed width, so they compare as strings), and
`_expires_at` (epoch seconds, DynamoDB's TTL attribute) when the view has a TTL.

Writes never replace a stored item by an older event (or, for the same event, by an
earlier-created version). BatchWriteItem cannot carry a condition, and per-item conditional
puts cost 25 requests where a batch costs one, so the guarantee comes from two things instead:
a sync holds a per-view lease (a conditional item in the state table, renewed while it runs),
so it is the only writer of that table; and before writing it reads the stored versions of its
keys (BatchGetItem) and drops rows that are not newer. Retries resend the same rows inside the
same lease, so a late retry can never carry an older value than what the lease holder read.
(TransactWriteItems would carry conditions, but moto copies every table on each transaction.)
DynamoDB's documented limits are enforced here whatever the endpoint accepts: 25 items a
write request, 100 keys a read request, 400 KB an item, table names of 3-255 characters.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import OnlineStore, OnlineStoreError, OnlineTable, WriteReport
from .config import OnlineConfig

log = logging.getLogger("featurestore")
KEY = "entity_key"
EVENT = "_event_timestamp"
CREATED = "_created_timestamp"
EXPIRES = "_expires_at"
MAX_WRITE_ITEMS = 25
MAX_READ_KEYS = 100
MAX_ITEM_BYTES = 400 * 1024
RETRYABLE = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "500", "503",
}
INTEGER_TYPES = ("int", "bigint", "smallint", "tinyint", "hugeint", "long", "integer", "int2", "int4", "int8", "ubigint", "uinteger")
FLOAT_TYPES = ("double", "float", "real", "double precision", "float4", "float8")
DECIMAL_TYPES = ("decimal", "numeric")
TIMESTAMP_TYPES = ("timestamp", "datetime")


# -- values ----------------------------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """Fixed-width ISO 8601 in UTC: naive values are UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def encode(value: Any) -> dict:
    """A Python value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"NULL": True} if math.isnan(value) or math.isinf(value) else {"N": repr(value)}
    if isinstance(value, Decimal):
        return {"NULL": True} if not value.is_finite() else {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, datetime):
        return {"S": format_timestamp(value)}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(item) for item in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): encode(v) for k, v in value.items()}}
    raise OnlineStoreError(f"Cannot store a value of type {type(value).__name__} in DynamoDB: {value!r}")


def decode(attribute: Mapping[str, Any], dtype: str | None = None) -> Any:
    """A DynamoDB attribute value as the Python value of the feature's declared type."""
    kind, value = next(iter(attribute.items()))
    declared = (dtype or "").lower()
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(value)
    if kind == "N":
        if declared.startswith(INTEGER_TYPES):
            return int(Decimal(value))
        if declared.startswith(FLOAT_TYPES):
            return float(value)
        if declared.startswith(DECIMAL_TYPES):
            return Decimal(value)
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "S":
        if declared.startswith(TIMESTAMP_TYPES):
            return parse_timestamp(value) if value.endswith("Z") else datetime.fromisoformat(value)
        if declared == "date":
            return date.fromisoformat(value)
        return value
    if kind == "B":
        return bytes(value)
    if kind == "L":
        return [decode(item) for item in value]
    if kind == "M":
        return {k: decode(v) for k, v in value.items()}
    if kind in ("SS", "NS", "BS"):
        return set(value)
    raise OnlineStoreError(f"Unknown DynamoDB attribute type {kind}")


def _escape(value: Any) -> str:
    text = format_timestamp(value) if isinstance(value, datetime) else str(value)
    return text.replace("%", "%25").replace("|", "%7C").replace("=", "%3D")


def entity_key(join_keys: Sequence[str], row: Mapping[str, Any]) -> str:
    """`customer_id=1001|product_type=jaffle`, in the view's join-key order."""
    return "|".join(f"{name}={_escape(row[name])}" for name in join_keys)


def _item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (UTF-8), close enough to enforce 400 KB."""
    def size(value) -> int:
        kind, inner = next(iter(value.items()))
        if kind in ("S", "N"):
            return len(str(inner).encode())
        if kind == "B":
            return len(inner)
        if kind == "L":
            return 3 + sum(size(v) + 1 for v in inner)
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(v) + 1 for k, v in inner.items())
        return 1
    return sum(len(name.encode()) + size(value) for name, value in item.items())


# -- the store -------------------------------------------------------------------------------------


class DynamoDBOnlineStore(OnlineStore):
    def __init__(self, config: OnlineConfig, workers: int = 8, deadline_seconds: float | None = None,
                 lease_seconds: float = 60.0, client=None):
        self.config = config
        self.workers = workers
        self.deadline_seconds = config.timeout_seconds if deadline_seconds is None else deadline_seconds
        self.lease_seconds = lease_seconds
        self.client = client or self._make_client()
        self._known_tables: set[str] = set()
        self._lock = threading.Lock()

    def _make_client(self):
        import boto3
        from botocore.config import Config

        from botocore.exceptions import BotoCoreError

        options = {}
        if self.config.is_local:
            session = boto3.session.Session()
            if session.get_credentials() is None:  # moto accepts any; real AWS uses the standard chain
                options = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        try:
            return boto3.client(
                "dynamodb", region_name=self.config.region, endpoint_url=self.config.endpoint_url or None,
                # our own loop retries (with a deadline and a message); botocore's only once
                config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=20,
                              max_pool_connections=max(10, self.workers * 2)),
                **options,
            )
        except (BotoCoreError, ValueError) as exc:
            raise OnlineStoreError(f"Cannot set up a DynamoDB client for region '{self.config.region}' and endpoint "
                                   f"{self.config.endpoint_url or '(AWS)'}: {exc}") from None

    # -- tables ------------------------------------------------------------------------------
    def _ensure(self, name: str, key: str, ttl_attribute: str | None) -> None:
        if name in self._known_tables:
            return
        from botocore.exceptions import ClientError

        with self._lock:
            deadline = time.monotonic() + self.deadline_seconds
            try:
                self._call("describe_table", deadline, TableName=name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise OnlineStoreError(f"Cannot describe DynamoDB table {name}: {exc}") from None
                try:
                    self._call(
                        "create_table", deadline,
                        TableName=name, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                    )
                except ClientError as create_error:
                    if create_error.response["Error"]["Code"] != "ResourceInUseException":  # created meanwhile
                        raise OnlineStoreError(f"Cannot create DynamoDB table {name}: {create_error}") from None
                self.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
                if ttl_attribute:
                    self.client.update_time_to_live(
                        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute})
            self._known_tables.add(name)

    def ensure_table(self, table: OnlineTable) -> None:
        self._ensure(self.config.table_name(table.view), KEY, EXPIRES if table.ttl_seconds else None)

    # -- writes ------------------------------------------------------------------------------
    def _item(self, table: OnlineTable, row: Mapping[str, Any]) -> dict:
        event = row["event_timestamp"]
        item = {KEY: {"S": entity_key(table.join_keys, row)}, EVENT: {"S": format_timestamp(event)}}
        if row.get("created_timestamp") is not None:
            item[CREATED] = {"S": format_timestamp(row["created_timestamp"])}
        if table.ttl_seconds:
            epoch = (event if event.tzinfo else event.replace(tzinfo=timezone.utc)).timestamp()
            item[EXPIRES] = {"N": str(int(epoch) + table.ttl_seconds)}
        for name in table.join_keys:
            item[name] = encode(row[name])
        for name in table.features:
            item[name] = encode(row.get(name))
        if _item_size(item) > MAX_ITEM_BYTES:
            raise OnlineStoreError(f"Item {item[KEY]['S']} of view {table.view} is over DynamoDB's 400 KB limit.")
        return item

    def write(self, table: OnlineTable, rows: Iterable[Mapping[str, Any]], should_stop: Callable[[], bool] | None = None,
              on_batch: Callable[[int], None] | None = None) -> WriteReport:
        """Put rows under the view's lease, 100 keys a task across a thread pool (one read of the
        stored versions, then 25-item BatchWriteItem requests). Raises OnlineStoreError if a batch
        still fails at the deadline; `should_stop` makes it stop submitting tasks (those in
        flight finish) and raise, so the caller does not move its watermark."""
        self.ensure_table(table)
        name = self.config.table_name(table.view)
        newest: dict[str, dict] = {}
        for row in rows:  # one item per key: keep the newest version of each key
            item = self._item(table, row)
            key = item[KEY]["S"]
            if key not in newest or _version(item) > _version(newest[key]):
                newest[key] = item
        items = list(newest.values())
        groups = [items[i:i + MAX_READ_KEYS] for i in range(0, len(items), MAX_READ_KEYS)]
        report, deadline = WriteReport(), time.monotonic() + self.deadline_seconds
        report_lock = threading.Lock()
        stopped = threading.Event()

        def run(group):
            if stopped.is_set() or (should_stop and should_stop()):
                stopped.set()
                return
            stored = self._stored_versions(name, [item[KEY]["S"] for item in group], deadline)
            fresh = [item for item in group if _version(item) > stored.get(item[KEY]["S"], ("", ""))]
            requests = retries = 0
            for start in range(0, len(fresh), MAX_WRITE_ITEMS):
                sent, tried = self._write_batch(name, fresh[start:start + MAX_WRITE_ITEMS], deadline)
                requests, retries = requests + sent, retries + tried
            with report_lock:
                report.written += len(fresh)
                report.skipped_stale += len(group) - len(fresh)
                report.requests += requests + 1
                report.retries += retries
            if on_batch:
                on_batch(len(group))

        with self.lease(table.view, deadline):
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for future in [pool.submit(run, group) for group in groups]:
                    future.result()
        if stopped.is_set():
            raise OnlineStoreError(f"Sync of {table.view} stopped before every batch was written.")
        return report

    def _call(self, operation: str, deadline: float, **request):
        """One request, retried on throttling and connection errors with backoff and jitter until
        the deadline (FEATURESTORE_ONLINE_TIMEOUT), saying so once while it retries."""
        from botocore.exceptions import BotoCoreError, ClientError

        attempt = 0
        while True:
            try:
                return getattr(self.client, operation)(**request), attempt
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in RETRYABLE:
                    raise
                error = exc
            except BotoCoreError as exc:  # connection refused, reset, timed out
                error = exc
            attempt += 1
            if attempt == 1:
                left = max(0.0, deadline - time.monotonic())
                log.warning(f"DynamoDB at {self.config.endpoint_url or 'AWS'} failed {operation} ({error}); "
                            f"retrying for up to {left:.0f} s")
            _back_off(attempt, deadline, f"DynamoDB at {self.config.endpoint_url or 'AWS'} is unreachable or failing: "
                                         f"{operation} still failed after {self.deadline_seconds:.0f} s ({error}). "
                                         "Is the endpoint up (`featurestore online up` for the local one)?")

    def _write_batch(self, table_name: str, batch: list[dict], deadline: float) -> tuple[int, int]:
        """BatchWriteItem of at most 25 items; UnprocessedItems resent with backoff until the deadline."""
        from botocore.exceptions import ClientError

        assert len(batch) <= MAX_WRITE_ITEMS
        pending = {table_name: [{"PutRequest": {"Item": item}} for item in batch]}
        requests = retries = 0
        while pending:
            try:
                response, tried = self._call("batch_write_item", deadline, RequestItems=pending)
            except ClientError as exc:
                raise OnlineStoreError(f"DynamoDB refused a write to {table_name}: {exc}") from None
            requests, retries = requests + 1 + tried, retries + tried
            pending = response.get("UnprocessedItems") or {}
            if pending:
                retries += 1
                _back_off(retries, deadline, f"{table_name}: items still unprocessed at the deadline.")
        return requests, retries

    def _stored_versions(self, table_name: str, keys: list[str], deadline: float) -> dict[str, tuple[str, str]]:
        names = {"#k": KEY, "#e": EVENT, "#c": CREATED}
        items = self._read_chunk(table_name, keys, "#k, #e, #c", names, deadline)
        return {key: _version(item) for key, item in items.items()}

    @contextmanager
    def lease(self, view: str, deadline: float):
        """Be the only writer of a view's table while the block runs (see the module docstring)."""
        from botocore.exceptions import ClientError

        self._ensure(self.config.state_table, "view", None)
        lease_key = {"view": {"S": f"{view}#lease"}}
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

        def take(condition: str) -> bool:
            now = time.time()
            values = {":now": {"N": str(now)}, ":me": {"S": owner}}
            names = {"#v": "view", "#o": "owner", "#x": "expires"}
            try:
                self.client.put_item(
                    TableName=self.config.state_table,
                    Item={**lease_key, "owner": {"S": owner}, "expires": {"N": str(now + self.lease_seconds)}},
                    ConditionExpression=condition,
                    ExpressionAttributeNames={n: v for n, v in names.items() if n in condition},
                    ExpressionAttributeValues={n: v for n, v in values.items() if n in condition},
                )
                return True
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return False
                raise

        attempt = 0
        while not take("attribute_not_exists(#v) OR #x < :now OR #o = :me"):
            attempt += 1
            _back_off(attempt, deadline, f"Another sync of {view} holds its lease; gave up waiting.", cap=1.0)
        stop = threading.Event()

        def renew():
            while not stop.wait(self.lease_seconds / 3):
                try:
                    take("#o = :me")
                except Exception:  # a failed renewal is retried; the lease outlives a few misses
                    pass

        heartbeat = threading.Thread(target=renew, daemon=True)
        heartbeat.start()
        try:
            yield owner
        finally:
            stop.set()
            heartbeat.join()
            try:
                self.client.delete_item(TableName=self.config.state_table, Key=lease_key,
                                        ConditionExpression="#o = :me", ExpressionAttributeNames={"#o": "owner"},
                                        ExpressionAttributeValues={":me": {"S": owner}})
            except Exception:  # unreachable endpoint: the lease expires by itself
                pass

    # -- reads -------------------------------------------------------------------------------
    def read(self, table: OnlineTable, keys: Sequence[Mapping[str, Any]], features: Sequence[str],
             now: datetime | None = None) -> list[dict | None]:
        name = self.config.table_name(table.view)
        names = {f"#f{i}": feature for i, feature in enumerate(features)}
        names.update({"#k": KEY, "#e": EVENT})
        projection = ", ".join(["#k", "#e", *[f"#f{i}" for i in range(len(features))]])
        wanted = [entity_key(table.join_keys, key) if all(key.get(k) is not None for k in table.join_keys) else None
                  for key in keys]
        distinct = sorted({key for key in wanted if key is not None})
        chunks = [distinct[i:i + MAX_READ_KEYS] for i in range(0, len(distinct), MAX_READ_KEYS)]
        found: dict[str, dict] = {}

        deadline = time.monotonic() + min(self.deadline_seconds, 30.0)

        def fetch(chunk):
            return self._read_chunk(name, chunk, projection, names, deadline)

        if len(chunks) == 1:
            found.update(fetch(chunks[0]))
        elif chunks:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(chunks))) as pool:
                for result in pool.map(fetch, chunks):
                    found.update(result)
        current = now or datetime.now(timezone.utc)
        current = current if current.tzinfo else current.replace(tzinfo=timezone.utc)
        results = []
        for key in wanted:
            item = found.get(key) if key else None
            if item is None:
                results.append(None)
                continue
            event = parse_timestamp(item[EVENT]["S"])
            if table.ttl_seconds and (current - event).total_seconds() > table.ttl_seconds:
                results.append(None)  # past the TTL, even if DynamoDB has not deleted it yet
                continue
            values = {feature: decode(item[feature], table.features.get(feature)) if feature in item else None
                      for feature in features}
            values["_event_timestamp"] = event
            results.append(values)
        return results

    def _read_chunk(self, table_name: str, keys: list[str], projection: str, names: dict,
                    deadline: float) -> dict[str, dict]:
        """BatchGetItem of at most 100 keys; UnprocessedKeys resent with backoff until the deadline."""
        from botocore.exceptions import ClientError

        assert len(keys) <= MAX_READ_KEYS
        request = {table_name: {"Keys": [{KEY: {"S": key}} for key in keys], "ProjectionExpression": projection,
                                "ExpressionAttributeNames": names}}
        found, attempt = {}, 0
        while request:
            try:
                response, _ = self._call("batch_get_item", deadline, RequestItems=request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    return {}  # never synced: every key is missing
                raise OnlineStoreError(f"DynamoDB refused a read from {table_name}: {exc}") from None
            for item in response.get("Responses", {}).get(table_name, []):
                found[item[KEY]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            attempt += 1
            _back_off(attempt, deadline, f"Reads from {table_name} still unprocessed at the deadline.", base=0.02, cap=1.0)
        return found

    # -- sync state ----------------------------------------------------------------------------
    def get_state(self, view: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            response, _ = self._call("get_item", time.monotonic() + self.deadline_seconds,
                                     TableName=self.config.state_table, Key={"view": {"S": view}}, ConsistentRead=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise OnlineStoreError(f"Cannot read the sync state of {view}: {exc}") from None
        item = response.get("Item")
        return {name: decode(value) for name, value in item.items()} if item else None

    def put_state(self, view: str, state: Mapping[str, Any]) -> None:
        self._ensure(self.config.state_table, "view", None)
        from botocore.exceptions import ClientError

        item = {"view": {"S": view}, **{name: encode(value) for name, value in state.items()}}
        try:
            self._call("put_item", time.monotonic() + self.deadline_seconds, TableName=self.config.state_table, Item=item)
        except ClientError as exc:
            raise OnlineStoreError(f"Cannot save the sync state of {view}: {exc}") from None


def _back_off(attempt: int, deadline: float, failure: str, base: float = 0.05, cap: float = 5.0) -> None:
    """Sleep an exponentially growing, jittered delay; raise if it would pass the deadline."""
    delay = min(cap, base * 2 ** attempt) * random.uniform(0.5, 1.0)
    if time.monotonic() + delay > deadline:
        raise OnlineStoreError(failure)
    time.sleep(delay)


def _version(item: dict) -> tuple[str, str]:
    return item[EVENT]["S"], item.get(CREATED, {"S": ""})["S"]
