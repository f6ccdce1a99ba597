"""Push ingestion (the SDK's `FeatureStore.push` and the server's POST /push): rows for a feature view with `push: true` in its meta, written to the landing
area (durably, atomically: landing.write_file) and then to the online store with its
conditional write (never an older version over a newer one: pushes and syncs interleave
safely). A push returns only when both writes are done; the landing file is the record the
view's dbt model reads (`featurestore.pushed_rows`), so the next `dbt build` puts pushed rows into
the snapshot tables and training sets see what serving saw.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa

from . import types
from .errors import RequestError
from .frames import arrow_type
from .landing import write_file
from .online import OnlineStore, OnlineStoreError
from .online.codec import ValueRejected
from .online.events import answer_after, make_event, visibility_delay
from .registry import FeatureView, Registry
from .requests import online_table, require_online
from .streaming import CONFIRMED, event_columns, is_streaming, stream_spec

DESTINATIONS = ("online", "offline", "online_and_offline")
MAX_PUSH_ROWS = 10_000


class Pusher:
    def __init__(self, registry: Registry, online: OnlineStore, landing: Path):
        self.registry = registry
        self.online = online
        self.landing = Path(landing)

    def push_request(self, body: Any, wait: bool = True) -> dict:
        """Feast's push request: {"push_source_name": view, "df": {column: [values]}, "to": ...}."""
        if not isinstance(body, dict):
            raise RequestError("The push body must be a JSON object with `push_source_name` and `df`.")
        unknown = sorted(set(body) - {"push_source_name", "df", "to"})
        if unknown:
            raise RequestError(f"Unknown field(s) {', '.join(map(repr, unknown))}; expected push_source_name, df, to.")
        name, frame, to = body.get("push_source_name"), body.get("df"), body.get("to", "online_and_offline")
        if not isinstance(name, str) or not name:
            raise RequestError("`push_source_name` must name a feature view with `push: true`.")
        if not isinstance(frame, dict) or not frame or not all(isinstance(v, list) for v in frame.values()):
            raise RequestError("`df` must be an object of column -> list of values.")
        lengths = {len(values) for values in frame.values()}
        if len(lengths) != 1 or not lengths.pop():
            raise RequestError("Every column of `df` must have the same, non-zero number of values.")
        rows = [dict(zip(frame, values)) for values in zip(*frame.values())]
        return self.push(name, rows, to, wait=wait)

    def push(self, view_name: str, rows: list[Mapping[str, Any]], to: str = "online_and_offline",
             wait: bool = True) -> dict:
        """Push rows to a view; the answer says what was landed and written. A streaming view's push
        is answered once its events count for reads: `wait` sleeps until then; without it the
        answer carries `_answer_after` (epoch seconds) for an async caller to wait on."""
        if to not in DESTINATIONS:
            raise RequestError(f"`to` must be one of {', '.join(DESTINATIONS)}, not {to!r}.")
        view = self.registry.view(view_name)  # NotFound: 404
        if not view.takes_pushes and not is_streaming(view):
            raise RequestError(f"Feature view '{view_name}' does not accept pushes (`push: true` in its meta, {view.yaml_path}).")
        if to != "offline":
            require_online([view], "pushed online (push with to='offline')")
        if len(rows) > MAX_PUSH_ROWS:
            raise RequestError(f"{len(rows):,} rows in one push; the limit is {MAX_PUSH_ROWS:,}.", status=413)
        if is_streaming(view):
            if to != "online_and_offline":
                raise RequestError(f"'{view.name}' is a streaming view: its events go online and offline together "
                                   f"(to='online_and_offline'), or the two would count different events; not {to!r}.")
            answer = self._push_events(view, rows)
            after = answer.pop("_answer_after")
            if wait and after is not None:
                time.sleep(max(0.0, after - time.time()))
            elif after is not None:
                answer["_answer_after"] = after
            return answer
        # checked whole — types, the client's clock, repeated versions, what the online store can
        # hold — before anything is written: a push that breaks a rule writes nothing (a store
        # failing after the checks leaves the landed rows for the client's retry: a 503)
        keys = self.registry.join_keys(view)
        table = self._table(view, rows)
        records = _online_records(view, table.to_pylist())
        _refuse_repeated_versions(view, keys, records)
        online = online_table(self.registry, view) if view.online else None
        if online is not None:
            refused = self.online.refused(online, records)
            if refused:
                raise RequestError(f"The online store cannot hold {len(refused):,} of the {len(records):,} rows pushed "
                                   f"to '{view.name}': " + "; ".join(f"{r.key} {r.feature}: {r.reason}" for r in refused[:5])
                                   + ("" if len(refused) <= 5 else f" (and {len(refused) - 5:,} more)")
                                   + "; nothing was written.")
        written = None
        if to != "online":
            written = write_file(self.landing / view.name, "push", table)
        report = None
        if to != "offline":
            self.online.ensure_table(online)
            report = self.online.write(online, records)
            if report.rejected:  # not a rule of ours (checked above): the store refused a put
                raise OnlineStoreError("The online store refused: " + "; ".join(
                    f"{r.key} {r.feature}: {r.reason}" for r in report.rejected[:5])
                    + (" (the rows are in the landing area: the next build and sync put them online)" if written else ""))
        return {"view": view.name, "rows": len(rows), "landed": str(written) if written else None,
                "written_online": report.written if report else 0,
                "skipped_older": report.skipped_stale if report else 0}

    def _push_events(self, view: FeatureView, rows: list[Mapping[str, Any]]) -> dict:
        """A streaming view's events: checked whole (types, DynamoDB's limits) before anything is
        written; put online exactly once each (online/events.py); then landed — every event put or
        found stored, also when other puts failed — with the time each counts from, so the
        `stream_windows` macro counts them offline from the same instant."""
        spec = stream_spec(view)
        table = online_table(self.registry, view)
        keys = self.registry.join_keys(view)
        columns = event_columns(view, keys, spec)
        _refuse_push_time(view, rows)
        typed = self._typed(view, rows, columns, [*keys, view.event_timestamp], {view.event_timestamp}).to_pylist()
        events = []
        for index, record in enumerate(typed):
            try:
                events.append(make_event(table, spec, record, record[view.event_timestamp], record.get(spec.event_id)))
            except ValueRejected as exc:
                column, _, reason = str(exc).partition("\t")
                raise RequestError(f"Row {index}: {column} of '{view.name}': {reason}; nothing was written.") from None
        self.online.ensure_table(table)
        results = self.online.write_events(table, events, visibility_delay())
        kept = [index for index, result in enumerate(results) if result.status != "failed"]
        landed = write_file(self.landing / view.name, "push", _landed_events(
            view, spec, keys, [typed[i] for i in kept], [events[i] for i in kept], [results[i] for i in kept])) \
            if kept else None
        failed = [result for result in results if result.status == "failed"]
        if failed:
            raise OnlineStoreError(f"{len(failed):,} of {len(events):,} events of '{view.name}' were not written online "
                                   f"({failed[0].error}); the other {len(kept):,} are online and landed. Send the "
                                   "push again with the same event ids: nothing is counted twice.")
        counts = {status: sum(1 for r in results if r.status == status) for status in ("written", "duplicate", "closed")}
        return {"view": view.name, "rows": len(rows), "landed": str(landed) if landed else None,
                "written_online": counts["written"], "duplicates": counts["duplicate"],
                "windows_closed": counts["closed"], "slow_writes": sum(1 for r in results if r.slow),
                "_answer_after": answer_after(results)}

    def _table(self, view: FeatureView, rows: list[Mapping[str, Any]]) -> pa.Table:
        """The rows as an Arrow table of the view's columns and declared types; the created
        timestamp is the time the push arrived (the server's clock: a client's is refused)."""
        _refuse_push_time(view, rows)
        keys = self.registry.join_keys(view)
        received = datetime.now(timezone.utc).replace(tzinfo=None)
        return self._typed(view, rows, view.columns, [*keys, view.event_timestamp],
                           {view.event_timestamp, view.created_timestamp}, {view.created_timestamp: received})

    def _typed(self, view: FeatureView, rows: list[Mapping[str, Any]], declared: Mapping[str, str | None],
               required: list[str], timestamps: set, defaults: Mapping[str, Any] | None = None) -> pa.Table:
        """The rows as an Arrow table of `declared` columns and types (timestamps parsed, naive
        UTC); a row with an unknown column, without a required one, or a value not of its type is
        refused, naming the row and column."""
        defaults = defaults or {}
        columns: dict[str, list] = {name: [] for name in declared}
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise RequestError(f"Row {index} is not an object of column -> value.")
            unknown = sorted(set(row) - set(declared))
            if unknown:
                raise RequestError(f"Row {index}: {', '.join(map(repr, unknown))} "
                                   f"{'is not a column' if len(unknown) == 1 else 'are not columns'} of '{view.name}' "
                                 f"({', '.join(declared)}).")
            for name in required:
                if row.get(name) is None:
                    raise RequestError(f"Row {index}: '{name}' is required (a join key or the event timestamp of '{view.name}').")
            for name in declared:
                value = row.get(name)
                if name in timestamps and value is not None:
                    value = _timestamp(value, index, name)
                if value is None and name in defaults:
                    value = defaults[name]
                if name in required and isinstance(value, (Mapping, list, tuple, set)):
                    raise RequestError(f"Row {index}: '{name}' of '{view.name}' is a join key or the event timestamp; "
                                       f"it takes one value, not {'an object' if isinstance(value, Mapping) else 'a list'}.")
                if value is not None and types.is_numeric(declared.get(name)) and (isinstance(value, bool) or (
                        types.is_whole_number(declared.get(name)) and isinstance(value, float) and not value.is_integer())):
                    raise RequestError(f"Row {index}: '{name}' of '{view.name}' is {declared[name]}; {_shown(value)} is "
                                       "not a number of that type (Arrow would convert it silently).")
                columns[name].append(value)
        arrays = []
        for name, values in columns.items():
            kind = pa.timestamp("us") if name in timestamps else arrow_type(declared.get(name))
            try:
                arrays.append(pa.array(values, type=kind) if kind is not None else pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeError) as exc:
                row = _first_refused(values, kind)
                if row is None:
                    raise RequestError(f"Column '{name}' of '{view.name}' ({declared.get(name) or 'no declared type'}): "
                                       f"{str(exc).splitlines()[0]}") from None
                raise RequestError(f"Row {row}: '{name}' of '{view.name}' is {declared.get(name) or 'of no declared type'}; "
                                   f"{_shown(values[row])} is not a value of that type.") from None
        return pa.table(arrays, names=list(columns))


def _first_refused(values: list, kind: pa.DataType | None) -> int | None:
    """The first row whose value alone Arrow cannot take as `kind` (None: only together)."""
    for row, value in enumerate(values):
        try:
            pa.array([value], type=kind) if kind is not None else pa.array([value])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeError):
            return row
    return None


def _shown(value: Any) -> str:
    """A pushed value as the client wrote it (JSON: true, "three"), for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse_push_time(view: FeatureView, rows: list[Mapping[str, Any]]) -> None:
    """The created timestamp of a pushed row is the time the push arrived, by the server's clock
    (the knowledge time training sets and watermarks go by): a push that carries it is refused."""
    column = view.created_timestamp
    for index, row in enumerate(rows):
        if column and isinstance(row, Mapping) and column in row:
            raise RequestError(f"Row {index}: '{column}' is the created timestamp of '{view.name}': the server sets it to "
                               "the time the push arrives, so a push may not carry it; leave the column out. "
                               "Nothing was written.")


def _online_records(view: FeatureView, records: list[dict]) -> list[dict]:
    """Typed rows with the event and created timestamps under the names the online store reads."""
    for record in records:
        record["event_timestamp"] = record[view.event_timestamp]
        record["created_timestamp"] = record[view.created_timestamp] if view.created_timestamp else None
    return records


def _refuse_repeated_versions(view: FeatureView, keys: list[str], records: list[dict]) -> None:
    """Two rows of one key and event time in one push share its created time too: which one wins
    would be a tie the online store and the snapshot break differently. Refused, naming both."""
    seen: dict[tuple, int] = {}
    for index, record in enumerate(records):
        version = (*(record[key] for key in keys), record[view.event_timestamp])
        if version in seen:
            key = ", ".join(f"{name}={record[name]!r}" for name in keys)
            raise RequestError(f"Rows {seen[version]} and {index} of the push to '{view.name}' have the same key ({key}) "
                               f"and event time ({view.event_timestamp}={record[view.event_timestamp].isoformat()}): "
                               "a push holds one version of a key at an event time. Send one of them (or each in its "
                               "own push: the later push wins). Nothing was written.")
        seen[version] = index


def _landed_events(view: FeatureView, spec, keys: list[str], typed: list[dict], events: list, results: list) -> pa.Table:
    """A push's events as the landing area keeps them: keys, event time, event id, values (a
    duplicate's as first stored), the time each counts from, and when its write was confirmed."""
    columns = {key: [record[key] for record in typed] for key in keys}
    columns[view.event_timestamp] = [event.time for event in events]
    columns[spec.event_id] = [event.event_id for event in events]
    for column in spec.events:
        columns[column] = [result.values.get(column) for result in results]
    columns[view.created_timestamp] = [result.pushed_at for result in results]
    columns[CONFIRMED] = [result.confirmed_at for result in results]
    kinds = {**{key: arrow_type(view.columns.get(key)) for key in keys},
             **{column: arrow_type(dtype) for column, dtype in spec.events.items()},
             view.event_timestamp: pa.timestamp("us"), spec.event_id: pa.string(),
             view.created_timestamp: pa.timestamp("us"), CONFIRMED: pa.timestamp("us")}
    return pa.table([pa.array(values, type=kinds[name]) for name, values in columns.items()], names=list(columns))


def _timestamp(value: Any, index: int, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RequestError(f"Row {index}: '{name}' = {value!r} is not an ISO 8601 timestamp.") from None
    else:
        raise RequestError(f"Row {index}: '{name}' must be an ISO 8601 timestamp string.")
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:
            raise RequestError(f"Row {index}: '{name}' = {value!r} is out of range in UTC.") from None
    return moment
