"""Brute-force reference implementations, written from the rules in the README, not from the SQL.

They loop over plain Python rows; slow and obviously right is the point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

T0 = datetime(2024, 3, 1)
EVENT_COLUMNS = ("case_id", "entity_id", "ev", "created", "f_int", "f_str")


# -- randomized rows -----------------------------------------------------------------------------


@dataclass
class Cases:
    batches: list[list[tuple]]  # batch -> rows (EVENT_COLUMNS); batch b is loaded by run b
    spine: list[tuple]  # (case_id, entity_id, ev)


def generate_cases(n_cases: int, seed: int, max_batches: int = 4) -> Cases:
    """Cases with ties, versions, exact duplicates, NULLs, late rows and unknown keys.

    Created timestamps grow from batch to batch (rows loaded later are created later), but
    event times are drawn from the same 2-day range in every batch, so later batches carry
    late rows that must split earlier intervals.
    """
    rng = random.Random(seed)
    batches: list[list[tuple]] = [[] for _ in range(max_batches)]
    spine = []
    for case_id in range(n_cases):
        n_keys = rng.randint(1, 3)
        n_batches = rng.randint(1, max_batches)
        seen_events: dict[int, list[datetime]] = {}
        for batch in range(n_batches):
            created_base = T0 + timedelta(days=10 * (batch + 1))
            for _ in range(rng.randint(0, 7)):
                entity_id = rng.randint(1, n_keys)
                if seen_events.get(entity_id) and rng.random() < 0.3:
                    ev = rng.choice(seen_events[entity_id])  # another version of a known event
                else:
                    ev = T0 + timedelta(minutes=15 * rng.randint(0, 4 * 48))
                seen_events.setdefault(entity_id, []).append(ev)
                created = created_base + timedelta(minutes=rng.randint(0, 2))
                row = [case_id, entity_id, ev, created,
                       None if rng.random() < 0.2 else rng.randint(0, 5),
                       None if rng.random() < 0.2 else rng.choice("abc")]
                roll = rng.random()
                if roll < 0.03:
                    row[1] = None  # NULL key
                elif roll < 0.06:
                    row[2] = None  # NULL event time
                elif roll < 0.08 and batch == 0:
                    row[3] = None  # NULL created time (only in the first, full, build)
                batches[batch].append(tuple(row))
                if rng.random() < 0.05:
                    batches[batch].append(tuple(row))  # exact duplicate
        for entity_id in range(1, n_keys + 2):  # n_keys + 1 is a key with no rows
            for _ in range(rng.randint(1, 4)):
                spine.append((case_id, entity_id, T0 + timedelta(minutes=15 * rng.randint(-8, 4 * 52))))
    return Cases(batches, spine)


# The sensor fixture projects' raw table (tests/fixtures/quality_project), loaded with
# conftest's Tables.load: rows are added to what an earlier load put there.
SENSOR_EVENTS_DDL = ("create table if not exists {schema}.{table} (sensor_id integer, ev timestamp, "
                     "created timestamp, temperature double, humidity double, state varchar)")


def readings(start: datetime, days: int, seed: int, temperature=(20.0, 2.0), null_share=0.0, sensors=30,
             loaded_at: datetime | None = None) -> list[tuple]:
    """A reading per sensor per day from `start` (SENSOR_EVENTS_DDL's columns), at a random
    minute of the day: temperatures drawn from `temperature` (mean, sd), a `null_share` of them
    NULL. Each row is created at `loaded_at`, else at its event time. A batch loaded after an
    earlier build needs a load time later than that build's rows: an incremental build reads only
    rows created after the latest created timestamp it already has."""
    rng = random.Random(seed)
    rows = []
    for day in range(days):
        for sensor in range(sensors):
            ev = start + day * timedelta(days=1) + timedelta(minutes=rng.randrange(1440))
            value = None if rng.random() < null_share else rng.gauss(*temperature)
            rows.append((sensor, ev, loaded_at or ev, value, rng.uniform(30, 60), rng.choice(["ok", "ok", "warn"])))
    return rows


# -- snapshot ------------------------------------------------------------------------------------


def _values_rank_key(row: tuple) -> tuple:
    """Feature values compared column by column, NULL lowest."""
    return tuple((value is not None, value if value is not None else 0) for value in row[4:6])


def snapshot(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """(snapshot rows = EVENT_COLUMNS + (valid_from, valid_to, superseded_at), rejected rows)."""
    valid = [r for r in rows if r[0] is not None and r[1] is not None and r[2] is not None and r[3] is not None]
    rejected = [r for r in rows if None in (r[0], r[1], r[2], r[3])]
    by_key: dict[tuple, dict[datetime, list[tuple]]] = {}
    for row in valid:
        by_key.setdefault((row[0], row[1]), {}).setdefault(row[2], []).append(row)
    out = []
    for versions_by_event in by_key.values():
        events = sorted(versions_by_event)
        for i, ev in enumerate(events):
            next_ev = events[i + 1] if i + 1 < len(events) else None
            versions = sorted(versions_by_event[ev], key=lambda r: (r[3], _values_rank_key(r)), reverse=True)
            for rank, row in enumerate(versions):
                superseded_at = versions[rank - 1][3] if rank > 0 else None
                valid_to = next_ev if rank == 0 else ev
                out.append(row + (ev, valid_to, superseded_at))
    return out, rejected


# -- rolling windows -----------------------------------------------------------------------------


def rolling(rows: list[tuple], spine: list[tuple], closed: str = "right") -> list[tuple]:
    """The aggregates of tests/fixtures/snapshot_project/models/rolling.sql, point by point:
    events with t - width < time <= t (closed='right'), or t - width <= time <= t ('both')."""
    events: dict[tuple, list[tuple]] = {}
    for row in rows:
        if row[0] is not None and row[1] is not None and row[2] is not None:
            events.setdefault((row[0], row[1]), []).append(row)
    out = []
    for case_id, entity_id, t in sorted(set(spine)):
        mine = events.get((case_id, entity_id), [])

        def window(width):
            def after_start(time):
                return width is None or (t - width < time if closed == "right" else t - width <= time)
            return [r for r in mine if after_start(r[2]) and r[2] <= t]

        two_h, one_d, half_h, ever = (window(timedelta(hours=2)), window(timedelta(days=1)),
                                      window(timedelta(minutes=30)), window(None))
        ints_1d = [r[4] for r in one_d if r[4] is not None]
        ints_30m = [r[4] for r in half_h if r[4] is not None]
        last_ever = max((r[2] for r in ever), default=None)
        out.append((
            case_id, entity_id, t,
            len(two_h),
            len(ints_1d),
            sum(r[4] for r in two_h if r[4] is not None),
            (sum(ints_1d) / len(ints_1d)) if ints_1d else None,
            min(ints_1d, default=None),
            max(ints_30m, default=None),
            (t.date() - last_ever.date()).days if last_ever else None,
            max((r[2] for r in two_h), default=None),
            sum(r[4] for r in ever if r[4] is not None),
        ))
    return out


def sort_rows(rows) -> list[tuple]:
    """Rows in a total order that tolerates NULLs, for comparing multisets."""
    return sorted((tuple(r) for r in rows), key=lambda r: tuple((v is None, str(type(v)), v if v is not None else 0) for v in r))


# -- point-in-time joins -------------------------------------------------------------------------

PIT_VIEWS = {
    # view: (key columns, feature columns, ttl)
    "thing_features": (("case_id", "thing_id"), ("size", "colour"), timedelta(hours=2)),
    "place_features": (("case_id", "place_id"), ("size",), None),
    "pair_features": (("case_id", "thing_id", "place_id"), ("visits",), timedelta(days=1)),
}
GRID = timedelta(minutes=15)


@dataclass
class PitCases:
    rows: dict[str, list[dict]]  # view -> rows with keys, ev, created, features
    entities: list[dict]  # case_id, thing_id, place_id, event_timestamp, label


def generate_pit_cases(n_cases: int, seed: int) -> PitCases:
    """Feature rows on a 15-minute grid (so entity times hit TTL edges exactly), versions with
    later created times, NULL values; entity rows with unknown and NULL keys, duplicates,
    times before any row and exactly at events and at event + TTL."""
    rng = random.Random(seed)
    rows: dict[str, list[dict]] = {view: [] for view in PIT_VIEWS}
    entities = []
    for case_id in range(n_cases):
        things, places = rng.randint(1, 3), rng.randint(1, 2)
        events: list[datetime] = []

        def add(view, keys):
            for _ in range(rng.randint(0, 5)):
                if events and rng.random() < 0.25:
                    ev = rng.choice(events)
                else:
                    ev = T0 + GRID * rng.randint(0, 4 * 24)
                events.append(ev)
                row = dict(keys, ev=ev, created=ev + GRID * rng.randint(0, 8))
                for feature in PIT_VIEWS[view][1]:
                    row[feature] = None if rng.random() < 0.2 else (
                        rng.choice("xyz") if feature == "colour" else rng.randint(0, 4))
                rows[view].append(row)

        for thing_id in range(1, things + 1):
            add("thing_features", {"case_id": case_id, "thing_id": thing_id})
            for place_id in range(1, places + 1):
                if rng.random() < 0.6:
                    add("pair_features", {"case_id": case_id, "thing_id": thing_id, "place_id": place_id})
        for place_id in range(1, places + 1):
            add("place_features", {"case_id": case_id, "place_id": place_id})

        for _ in range(rng.randint(3, 8)):
            roll = rng.random()
            if events and roll < 0.2:
                t = rng.choice(events)
            elif events and roll < 0.4:
                t = rng.choice(events) + rng.choice([timedelta(hours=2), timedelta(days=1)])  # TTL edge
            elif events and roll < 0.5:
                t = rng.choice(events) + rng.choice([timedelta(hours=2), timedelta(days=1)]) + GRID  # just past
            else:
                t = T0 + GRID * rng.randint(-4, 4 * 24 + 12)
            entity = {
                "case_id": case_id,
                "thing_id": None if rng.random() < 0.05 else rng.randint(1, things + 1),  # things + 1: unknown
                "place_id": None if rng.random() < 0.05 else rng.randint(1, places + 1),
                "event_timestamp": t,
                "label": rng.randint(0, 1),
            }
            entities.append(entity)
            if rng.random() < 0.1:
                entities.append(dict(entity))  # duplicate entity row
    return PitCases(rows, entities)


def point_in_time(cases: PitCases, knowledge_guard: bool) -> list[dict]:
    """For each entity row and view: the row with the largest event time <= t (and >= t - TTL),
    ties to the latest created time, then to the greatest feature values (NULL lowest); with the
    knowledge guard only rows created at or before t count. No match: NULL features."""
    out = []
    for entity in cases.entities:
        t = entity["event_timestamp"]
        result = dict(entity)
        for view, (keys, features, ttl) in PIT_VIEWS.items():
            candidates = [
                row for row in cases.rows[view]
                if all(entity[k] is not None and row[k] == entity[k] for k in keys)
                and row["ev"] <= t
                and (ttl is None or row["ev"] >= t - ttl)
                and (not knowledge_guard or row["created"] <= t)
            ]
            best = max(candidates, default=None, key=lambda row: (
                row["ev"], row["created"], tuple((row[f] is not None, row[f] if row[f] is not None else 0) for f in features)))
            for feature in features:
                result[f"{view}__{feature}"] = best[feature] if best else None
        out.append(result)
    return out
