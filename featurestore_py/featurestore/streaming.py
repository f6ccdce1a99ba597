"""Streaming window features: a feature view over raw pushed events, with windowed aggregates
(`count`, `sum`, `avg`, `min`, `max` over minutes to days), declared once under `stream:` in the
view's meta and computed by the same rule offline (the `stream_windows` macro) and online (here).

The rule, for a key at time t, of an aggregate over window W: the events of that key with
`t - W < event time <= t` **that were known at t** (pushed at or before t). Offline, a request's
time is its knowledge time too, so a training set sees what serving served; a late event counts
from its push on, for the rest of its windows. When the key has no event in the longest window,
every aggregate is NULL (the key is not present), else `count` and `sum` of an empty window are 0
and `avg`, `min`, `max` NULL. A sum of magnitude 2^63 or more is NULL (no bigint holds it).

Online, each event is one DynamoDB item (online/events.py) and a read aggregates the events of
the longest window at request time: exact edges, no process state, nothing pre-aggregated that
a late event would have to reopen. An event whose windows have all closed when it is pushed
(event time at or before push time minus the longest window) cannot change any value from then
on, online or offline (where it was unknown before): it is landed and not written online.

This module knows no warehouse and no online store client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from . import types
from .durations import parse_duration
from .errors import RegistryError

ITEM_ATTRIBUTES = ("entity_key", "_event", "_pushed_at", "_expires_at")  # an event's item's own (online/events.py)
DEFAULT_EVENT_ID = "event_id"
MAX_IN_FLIGHT = 8  # writes in flight at one read that the audit considers (2^8 combinations)  # the macro's default too
CONFIRMED = "_confirmed_at"  # a landed event's column: when its online write was confirmed (online/events.py)
SUM_LIMIT = 2 ** 63  # a sum of this magnitude or more is NULL (a bigint holds none; the macro says the same)
FUNCTIONS = ("count", "sum", "avg", "min", "max")
NEEDS_COLUMN = ("sum", "avg", "min", "max")
NUMBERS = (types.INTEGER, types.FLOAT)
_EXAMPLE = {types.INTEGER: "bigint", types.FLOAT: "double"}


@dataclass(frozen=True)
class Aggregate:
    name: str  # the feature
    fn: str
    column: str | None  # an event column (count: optional, counts its non-NULL values)
    window: timedelta
    window_text: str


@dataclass(frozen=True)
class StreamSpec:
    """A streaming view's events and aggregates (from `stream:` in its meta)."""

    view: str
    event_id: str  # the column of an event's idempotency key (`event_id` unless named; a row without one gets a new id)
    events: Mapping[str, str]  # event value column -> declared data_type
    aggregates: tuple[Aggregate, ...]
    feature_types: Mapping[str, str | None]  # aggregate -> the feature's declared data_type

    @property
    def longest(self) -> timedelta:
        return max(aggregate.window for aggregate in self.aggregates)


def is_streaming(view) -> bool:
    """Whether a feature view is a streaming view (`stream:` in its meta)."""
    return view.meta.get("stream") is not None


def stream_spec(view) -> StreamSpec | None:
    """The view's StreamSpec, None for a view without `stream:`; RegistryError (naming the view,
    its YAML file and the entry) when the block is malformed — `validate` reports the same."""
    if not is_streaming(view):
        return None
    block = view.meta["stream"]
    where = f"'stream:' of feature view '{view.name}' ({view.yaml_path})"
    if not isinstance(block, Mapping):
        raise RegistryError(f"{where} must be a mapping with `aggregates` (and `events`, `event_id`).")
    unknown = sorted(set(block) - {"event_id", "events", "aggregates"})
    if unknown:
        raise RegistryError(f"{where}: unknown key(s) {', '.join(unknown)}; expected event_id, events, aggregates.")
    event_id = block.get("event_id", DEFAULT_EVENT_ID)
    if not isinstance(event_id, str) or not event_id:
        raise RegistryError(f"{where}: `event_id` must be a column name.")
    events = block.get("events") or {}
    if not isinstance(events, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in events.items()):
        raise RegistryError(f"{where}: `events` must map each event column to its data_type, e.g. {{amount: double}}.")
    reserved = {view.event_timestamp, view.created_timestamp, CONFIRMED, *ITEM_ATTRIBUTES}
    clash = sorted(name for name in [event_id, *events] if name in reserved) + ([event_id] if event_id in events else [])
    if clash:
        raise RegistryError(f"{where}: event column(s) {', '.join(clash)} collide with the event id, the view's "
                            "timestamps or a column the push writes; rename them.")
    listed = block.get("aggregates")
    if not isinstance(listed, list) or not listed:
        raise RegistryError(f"{where}: `aggregates` must be a non-empty list of {{name, fn, column, window}}.")
    aggregates = []
    for index, entry in enumerate(listed):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise RegistryError(f"{where}: aggregate {index} needs a `name` (a feature of the view).")
        name, fn, column = entry["name"], entry.get("fn"), entry.get("column")
        if fn not in FUNCTIONS:
            raise RegistryError(f"{where}: aggregate '{name}' has fn {fn!r}; use one of {', '.join(FUNCTIONS)}.")
        if column is None and fn in NEEDS_COLUMN:
            raise RegistryError(f"{where}: aggregate '{name}' ({fn}) needs a `column` of `events`.")
        if column is not None and column not in events:
            raise RegistryError(f"{where}: aggregate '{name}' reads column '{column}', which `events` does not "
                                f"declare ({', '.join(events) or 'none'}).")
        if column is not None and fn != "count" and types.declared_family(events[column]) not in NUMBERS:
            raise RegistryError(f"{where}: aggregate '{name}' ({fn}) needs an integer or floating-point column; "
                                f"'{column}' is {events[column]}.")
        try:
            window = parse_duration(entry.get("window"))
        except ValueError as exc:
            raise RegistryError(f"{where}: aggregate '{name}': window {exc}.") from None
        aggregates.append(Aggregate(name, fn, column, window, str(entry.get("window")).strip()))
    features = {feature.name: feature.dtype for feature in view.features}
    missing = [a.name for a in aggregates if a.name not in features]
    if missing:
        raise RegistryError(f"{where}: aggregate(s) {', '.join(missing)} are not columns of the view; declare each "
                            "as a column with its data_type.")
    for entry in aggregates:
        wanted = _result_family(entry, events)
        if types.declared_family(features[entry.name]) != wanted:
            raise RegistryError(f"{where}: aggregate '{entry.name}' ({entry.fn}) gives {wanted} values; declare its "
                                f"column with a data_type of that family (e.g. {_EXAMPLE[wanted]}), not "
                                f"{features[entry.name] or 'none'}.")
    return StreamSpec(view.name, event_id, dict(events), tuple(aggregates),
                      {a.name: features[a.name] for a in aggregates})


def event_columns(view, join_keys: Iterable[str], spec: StreamSpec) -> dict[str, str | None]:
    """The columns a pushed event has, with their declared types: join keys, event time, event id,
    the event values (the landed file adds the created timestamp: the push time)."""
    columns = {key: view.columns.get(key) for key in join_keys}
    columns[view.event_timestamp] = "timestamp"
    columns[spec.event_id] = "varchar"
    columns.update(spec.events)
    return columns


def aggregate(spec: StreamSpec, events: Iterable[Mapping[str, Any]], at: datetime) -> dict | None:
    """The aggregates at `at` over events given as {"time", "known", column: value}: those with
    at - W < time <= at and known <= at. None when the longest window has none."""
    current = [e for e in events if e["time"] <= at and e["known"] <= at and e["time"] > at - spec.longest]
    if not current:
        return None
    values = {}
    for entry in spec.aggregates:
        inside = [e for e in current if e["time"] > at - entry.window]
        column = [e.get(entry.column) for e in inside if e.get(entry.column) is not None] if entry.column else None
        if entry.fn == "count":
            value = len(inside) if column is None else len(column)
        elif entry.fn == "sum":
            value = sum(column) if column else 0
            value = value if abs(value) < SUM_LIMIT else None  # the macro's rule: no wrap-around, no infinity
        elif not column:
            value = None
        elif entry.fn == "avg":
            value = sum(column) / len(column)
        else:
            value = (min if entry.fn == "min" else max)(column)
        values[entry.name] = _as_declared(value, spec.feature_types.get(entry.name))
    return values


def _result_family(entry: Aggregate, events: Mapping[str, str]) -> str:
    """count: integers; avg: floats; sum, min, max: the column's family."""
    if entry.fn == "count":
        return types.INTEGER
    if entry.fn == "avg":
        return types.FLOAT
    return types.declared_family(events[entry.column])


def _as_declared(value: Any, dtype: str | None) -> Any:
    """The value as the warehouse's cast to the feature's declared type gives it (the family is
    the aggregate's own: stream_spec checks it, so no cast rounds)."""
    if value is None:
        return None
    return int(value) if types.is_whole_number(dtype) else float(value)


def landed_events(landed, keys: Iterable[str], spec: StreamSpec, event: str, created: str) -> dict[tuple, list[dict]]:
    """A view's landed events per key (`landed`: the landing folder as Arrow, or None), one copy
    per event time and id — the first pushed, as the macro keeps — in `aggregate`'s shape, with
    `confirmed` (when the online write was confirmed; None for a stored copy)."""
    if landed is None:
        return {}
    first: dict[tuple, dict] = {}
    for row in landed.to_pylist():
        key = tuple(row[k] for k in keys)
        entry = {"time": row[event], "known": row[created], "confirmed": row.get(CONFIRMED),
                 **{column: row.get(column) for column in spec.events}}
        identity = (key, entry["time"], row.get(spec.event_id))
        if entry["time"] is None:
            continue
        kept = first.get(identity)
        if kept is None or entry["known"] < kept["known"]:
            first[identity] = entry
        elif entry["known"] == kept["known"] and kept["confirmed"] is None:
            kept["confirmed"] = entry["confirmed"]  # a retry landed the stored copy too: the writer's says when it was confirmed
    found: dict[tuple, list[dict]] = {}
    for (key, _, _), entry in first.items():
        found.setdefault(key, []).append(entry)
    return found


def without_in_flight(spec: StreamSpec, events: Iterable[dict], at: datetime) -> list[dict | None]:
    """The values a read at `at` could have served had it missed some of the events whose write
    was in flight then (stamped, not yet confirmed: a write slower than the visibility delay,
    online/events.py): the aggregates without each non-empty subset of them (at most 2^8). Empty
    when no write was in flight."""
    from itertools import combinations

    events = list(events)
    flying = [e for e in events if e["confirmed"] is not None and e["known"] <= at < e["confirmed"]
              and at - spec.longest < e["time"] <= at][:MAX_IN_FLIGHT]
    return [aggregate(spec, [e for e in events if not any(e is f for f in missed)], at)
            for size in range(1, len(flying) + 1) for missed in combinations(flying, size)]
