"""The streaming rule in Python (featurestore/streaming.py): the `stream:` block's checks and the
aggregates at a time, edge by edge. (Its equality with the `stream_windows` macro is proven on
randomized events with a real dbt build: tests/integration/test_streaming.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from featurestore.errors import RegistryError
from featurestore.streaming import aggregate, is_streaming, stream_spec, without_in_flight

T = datetime(2026, 12, 3, 12, 0, 0)
FEATURES = {"n_1m": "bigint", "n_10s": "bigint", "priced_1m": "bigint", "spend_10s": "double", "avg_1m": "double",
            "low_1m": "double", "most_items_1m": "bigint", "items_10s": "bigint"}
AGGREGATES = [
    {"name": "n_1m", "fn": "count", "window": "1m"},
    {"name": "n_10s", "fn": "count", "window": "10s"},
    {"name": "priced_1m", "fn": "count", "column": "amount", "window": "1m"},
    {"name": "spend_10s", "fn": "sum", "column": "amount", "window": "10s"},
    {"name": "avg_1m", "fn": "avg", "column": "amount", "window": "1m"},
    {"name": "low_1m", "fn": "min", "column": "amount", "window": "1m"},
    {"name": "most_items_1m", "fn": "max", "column": "items", "window": "1m"},
    {"name": "items_10s", "fn": "sum", "column": "items", "window": "10s"},
]


def view(stream=None, features=FEATURES, **extra):
    meta = {"stream": {"event_id": "id", "events": {"amount": "double", "items": "bigint", "kind": "varchar"},
                       "aggregates": AGGREGATES} if stream is None else stream, **extra}
    return SimpleNamespace(name="card_events", yaml_path="models/schema.yml", meta=meta, event_timestamp="event_at",
                           created_timestamp="pushed_at",
                           features=[SimpleNamespace(name=n, dtype=t) for n, t in features.items()])


def event(seconds_before: float, amount=None, items=None, known_before: float | None = None):
    return {"time": T - timedelta(seconds=seconds_before), "amount": amount, "items": items,
            "known": T - timedelta(seconds=seconds_before if known_before is None else known_before)}


def test_a_view_is_streaming_by_its_stream_block():
    assert is_streaming(view()) and not is_streaming(SimpleNamespace(meta={"push": True}))
    spec = stream_spec(view())
    assert spec.longest == timedelta(minutes=1) and spec.event_id == "id" and len(spec.aggregates) == 8
    assert stream_spec(view({"aggregates": AGGREGATES[:1]})).event_id == "event_id"  # the default


@pytest.mark.parametrize("stream, features, named", [
    ({"aggregates": AGGREGATES, "events": {"amount": "double", "items": "bigint"}, "window": "1m"}, FEATURES, "unknown key(s) window"),
    ({"events": {"amount": "double"}, "aggregates": []}, FEATURES, "non-empty list"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "n_1m", "fn": "median", "window": "1m"}]}, FEATURES, "fn 'median'"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "spend_10s", "fn": "sum", "window": "10s"}]}, FEATURES, "needs a `column`"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "spend_10s", "fn": "sum", "column": "price", "window": "10s"}]}, FEATURES, "'price'"),
    ({"events": {"kind": "varchar"}, "aggregates": [{"name": "low_1m", "fn": "min", "column": "kind", "window": "1m"}]}, FEATURES, "'kind' is varchar"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "n_1m", "fn": "count", "window": "a minute"}]}, FEATURES, "window 'a minute' is not a duration"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "n_2m", "fn": "count", "window": "2m"}]}, FEATURES, "n_2m are not columns"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "n_1m", "fn": "count", "window": "1m"}]}, {"n_1m": "double"}, "gives integer values"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "avg_1m", "fn": "avg", "column": "amount", "window": "1m"}]}, {"avg_1m": "bigint"}, "gives float values"),
    ({"events": {"amount": "double"}, "aggregates": [{"name": "spend_10s", "fn": "sum", "column": "amount", "window": "10s"}]}, {"spend_10s": "bigint"}, "gives float values"),
    ({"event_id": 3, "aggregates": AGGREGATES}, FEATURES, "`event_id` must be a column name"),
    ("yes", FEATURES, "must be a mapping"),
    ({"event_id": "event_at", "aggregates": AGGREGATES}, FEATURES, "event_at collide"),
    ({"events": {"pushed_at": "timestamp"}, "aggregates": AGGREGATES}, FEATURES, "pushed_at collide"),
    ({"events": {"_event": "double"}, "aggregates": AGGREGATES}, FEATURES, "_event collide"),
])
def test_a_malformed_stream_block_is_refused_naming_the_view_file_and_entry(stream, features, named):
    with pytest.raises(RegistryError) as failure:
        stream_spec(view(stream, features))
    assert named in str(failure.value) and "card_events" in str(failure.value) and "models/schema.yml" in str(failure.value)


def test_window_edges_knowledge_and_nulls():
    spec = stream_spec(view())
    events = [
        event(60, amount=100.0),  # exactly at t - 1m: outside (t - W < time)
        event(59.999999, amount=2.0, items=3),  # inside the minute, outside 10 s
        event(10, amount=50.0),  # exactly at t - 10s: outside the 10 s windows
        event(4, amount=None, items=1),  # no amount: counted by count(*), not by count(amount)
        event(0, amount=-1.5, items=2),  # at t: inside
        event(-1, amount=7.0),  # after t: not yet
        event(5, amount=1000.0, known_before=-0.5),  # pushed after t: not known yet
    ]
    values = aggregate(spec, events, T)
    assert values == {"n_1m": 4, "n_10s": 2, "priced_1m": 3, "spend_10s": -1.5, "avg_1m": (2.0 + 50.0 - 1.5) / 3,
                      "low_1m": -1.5, "most_items_1m": 3, "items_10s": 3}
    assert isinstance(values["n_1m"], int) and isinstance(values["spend_10s"], float)


def test_empty_windows_are_zero_or_null_and_an_empty_longest_window_is_no_value():
    spec = stream_spec(view())
    values = aggregate(spec, [event(30, amount=None)], T)
    assert values["n_10s"] == 0 and values["spend_10s"] == 0.0 and values["items_10s"] == 0
    assert values["avg_1m"] is None and values["low_1m"] is None and values["priced_1m"] == 0 and values["n_1m"] == 1
    assert aggregate(spec, [event(61, amount=3.0)], T) is None
    assert aggregate(spec, [], T) is None


def test_a_read_in_flight_is_recomputed_without_the_events_being_written():
    spec = stream_spec(view())
    slow = dict(event(5, amount=4.0, items=1), confirmed=T + timedelta(seconds=1))
    slow["known"] = T - timedelta(seconds=1)
    other = dict(slow, time=T - timedelta(seconds=6), amount=8.0)
    settled = dict(event(8, amount=2.0, items=1), confirmed=None)
    values = without_in_flight(spec, [slow, settled], T)
    assert len(values) == 1 and values[0]["n_1m"] == 1 and values[0]["spend_10s"] == 2.0
    both = without_in_flight(spec, [slow, other, settled], T)  # either, or both, may have been missed
    assert sorted(v["spend_10s"] for v in both) == [2.0, 6.0, 10.0]
    assert without_in_flight(spec, [slow, settled], T - timedelta(seconds=2)) == []  # before it counts
    assert without_in_flight(spec, [slow, settled], T + timedelta(seconds=1)) == []  # confirmed by then
    old = dict(slow, time=T - timedelta(seconds=90))
    assert without_in_flight(spec, [old, settled], T) == []  # outside every window: it changes nothing


def test_a_sum_past_a_bigint_is_null_as_in_the_macro():
    spec = stream_spec(view())
    huge = [event(1, items=2 ** 62), event(2, items=2 ** 62)]
    assert aggregate(spec, huge, T)["items_10s"] is None
    assert aggregate(spec, huge[:1], T)["items_10s"] == 2 ** 62


def test_the_written_copy_says_when_it_was_confirmed_whatever_the_landing_order():
    import pyarrow as pa

    from featurestore.streaming import landed_events

    spec = stream_spec(view())
    stamp, confirmed = T - timedelta(seconds=1), T + timedelta(seconds=1)
    copies = {"card_id": ["c", "c"], "event_at": [T - timedelta(seconds=3)] * 2, "id": ["e1", "e1"],
              "amount": [1.0, 1.0], "items": [1, 1], "kind": [None, None], "pushed_at": [stamp, stamp],
              "_confirmed_at": [None, confirmed]}  # a retry's copy of the stored event landed first
    events = landed_events(pa.table(copies), ["card_id"], spec, "event_at", "pushed_at")[("c",)]
    assert len(events) == 1 and events[0]["confirmed"] == confirmed
    assert without_in_flight(spec, events, T)
