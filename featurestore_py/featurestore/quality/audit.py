"""Training/serving consistency, with one rule of equality (`same_value`) for both audits.

`audit_online` (`featurestore audit`): for a sample of keys, what the online store returns now against what the point-in-time
query returns at the same moment.

`audit_served` (`featurestore audit --served`): the vectors the feature server actually served
(its served-vector log in the landing area) recomputed point-in-time at their request time with
the knowledge guard — what the warehouse knew then — and compared value by value. Per feature:
the rows checked, the exact-match rate, examples of mismatches (keys, request time, served and
expected value, status), and staleness: the newest event time the warehouse knew at the request
time minus the served event time (seconds; above 0 the online store served an older value than
was known — a sync lagging behind), median, maximum and how many rows were stale.
"""

from __future__ import annotations

import json
import random
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from ..errors import FeatureStoreError, NoDataError
from ..landing import SERVED_FOLDER, read_folder
from ..online_response import json_value
from ..registry import Registry
from ..streaming import landed_events, stream_spec, without_in_flight

EXAMPLES = 10


def same_value(served: Any, expected: Any) -> bool:
    """Whether an online value equals the expected one: both missing, or equal — numbers to 1e-9
    relative to the expected value (absolute below 1: DynamoDB's numbers are decimal strings, the
    warehouse's may be binary floats), times as instants of the same wall clock (a zone dropped)."""
    if served is None or expected is None:
        return served is None and expected is None
    if isinstance(served, float) or isinstance(expected, float):
        if isinstance(served, (bool, str)) or isinstance(expected, (bool, str)):
            return False
        return abs(float(served) - float(expected)) <= 1e-9 * max(1.0, abs(float(expected)))
    if isinstance(served, datetime) and isinstance(expected, datetime):
        return served.replace(tzinfo=None) == expected.replace(tzinfo=None)
    return served == expected


def serving_mismatches(features: list[str], entity_rows: list[dict], online: dict, offline: dict) -> list[dict]:
    """Per feature and entity row, where the served value differs from the point-in-time one."""
    mismatches = []
    for feature in features:
        for index, row in enumerate(entity_rows):
            served, expected = online[feature][index], offline[feature][index]
            if not same_value(served, expected):
                mismatches.append({"feature": feature, "keys": row, "online": served, "expected": expected})
    return mismatches


def audit_online(registry: Registry, connect: Callable, online: Callable, historical: Callable, view_name: str,
          sample: int = 100, seed: int = 0, now: datetime | None = None) -> dict:
    """For `sample` random current keys of a view, the online values against the point-in-time
    values at the same moment (default: now). online and historical: FeatureStore's
    get_online_features and get_historical_features."""
    if sample < 1:
        raise FeatureStoreError(f"--sample must be at least 1, not {sample}.")
    view = registry.view(view_name)
    keys = registry.join_keys(view)
    moment = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
    with connect() as warehouse:
        rows = warehouse.fetch_all(warehouse.render("view_probe", probe="current_keys", keys=keys,
                                                    relation=view.relation_name))
    rows = random.Random(seed).sample(rows, min(sample, len(rows)))
    entity_rows = [dict(zip(keys, row)) for row in rows]
    references = [feature.reference for feature in view.features]
    served = online(references, entity_rows=entity_rows, now=moment).to_dict()
    frame = pa.table({**{key: [row[key] for row in entity_rows] for key in keys},
                      "event_timestamp": [moment] * len(entity_rows)})
    offline = historical(frame, references).to_arrow().to_pydict()
    mismatches = serving_mismatches([f.name for f in view.features], entity_rows, served, offline)
    return {"view": view_name, "at": moment.isoformat(), "keys": len(entity_rows),
            "features": len(view.features), "mismatches": mismatches}


def _logged_view(registry: Registry, name: str):
    """(view, the columns its logged rows are recomputed from, whether with the knowledge guard):
    a feature view's join keys; an on-demand view's inputs' join keys and its request fields (the
    served log records both, as the response's entity columns)."""
    if name not in registry.on_demand_views:
        view = registry.view(name)
        return view, registry.join_keys(view), bool(view.created_timestamp)
    view = registry.on_demand_view(name)
    sources = [registry.resolve(reference)[0] for reference in view.inputs]
    keys = list(dict.fromkeys([key for source in sources for key in registry.join_keys(source)] + list(view.request)))
    return view, keys, all(source.created_timestamp for source in sources)


def _served_while_in_flight(spec, events: dict, keys: list, row: dict, name: str, served) -> bool:
    """Whether a streaming value served at a request equals the value without some of the events
    whose write was in flight then (a read in that gap may not see them: online/events.py)."""
    at = row["request_time"].astimezone(timezone.utc).replace(tzinfo=None)
    possible = without_in_flight(spec, events.get(tuple(json.loads(row["keys"]).get(k) for k in keys), ()), at)
    return any(same_value(served, (values or {}).get(name)) for values in possible)


def audit_served(registry: Registry, historical: Callable, landing: Path, min_match_rate: float = 1.0) -> dict:
    """The feature server's served-vector log (under the landing folder) recomputed point-in-time
    at each request's time with the knowledge guard (historical: FeatureStore's
    get_historical_features); per feature the match rate, mismatches and the age of what was
    served. `failing` lists the features under min_match_rate."""
    folder = Path(landing) / SERVED_FOLDER
    log = read_folder(folder)
    if log is None or not log.num_rows:
        raise NoDataError(f"No served vectors are logged under {folder}; start the server with --log-served <fraction>.")
    if not 0 <= min_match_rate <= 1:
        raise FeatureStoreError(f"--min-match-rate must be between 0 and 1, not {min_match_rate}.")
    rows = log.to_pylist()
    by_view: dict[str, list[dict]] = {}
    for row in rows:
        by_view.setdefault(row["feature"].partition(":")[0], []).append(row)
    features: dict[str, dict] = {}
    for view_name, logged in by_view.items():
        view, keys, guard = _logged_view(registry, view_name)
        spec = stream_spec(view) if view_name in registry.feature_views else None
        events = landed_events(read_folder(Path(landing) / view.name), keys, spec, view.event_timestamp,
                               view.created_timestamp) if spec else {}
        # one entity row per (keys, request time), in first-seen order
        points: dict[tuple, int] = {}
        for row in logged:
            values = json.loads(row["keys"])
            row["_point"] = points.setdefault((tuple(values.get(k) for k in keys), row["request_time"]), len(points))
        ordered = sorted(points, key=points.get)
        frame = pa.table({**{key: [point[0][i] for point in ordered] for i, key in enumerate(keys)},
                          "event_timestamp": pa.array([point[1] for point in ordered], pa.timestamp("us", tz="UTC"))})
        references = sorted({row["feature"] for row in logged})
        job = historical(frame, references, knowledge_guard=guard, event_times=True)
        expected = job.to_arrow().to_pylist()
        for row in logged:
            name = row["feature"].partition(":")[2]
            want = json_value(expected[row["_point"]][name], view.feature(name).dtype)
            got = json.loads(row["value"])
            entry = features.setdefault(row["feature"], {"checked": 0, "matched": 0, "mismatches": [], "behind": [],
                                                         "knowledge_guard": guard, "in_flight": 0})
            entry["checked"] += 1
            if same_value(got, want):
                entry["matched"] += 1
            elif events and _served_while_in_flight(spec, events, keys, row, name, got):
                entry["in_flight"] += 1  # a streaming event's write was in flight: the read missed it, rightly
            elif len(entry["mismatches"]) < EXAMPLES:
                entry["mismatches"].append({"keys": json.loads(row["keys"]), "request_time": row["request_time"].isoformat(),
                                            "served": got, "expected": want, "status": row["status"]})
            known = expected[row["_point"]].get(f"{view_name}__event_timestamp")  # none for on-demand features
            if row["status"] != "NOT_FOUND" and known is not None:
                served_at = datetime.fromisoformat(row["event_timestamp"].replace("Z", "+00:00"))
                known = known if known.tzinfo else known.replace(tzinfo=served_at.tzinfo)
                entry["behind"].append((known - served_at).total_seconds())
    failing = []
    for reference, entry in features.items():
        entry["match_rate"] = (entry["matched"] + entry["in_flight"]) / entry["checked"]
        behind = entry.pop("behind")
        entry["staleness_seconds"] = {"median": statistics.median(behind), "max": max(behind),
                                      "stale_rows": sum(1 for b in behind if b > 0)} if behind else None
        if entry["match_rate"] < min_match_rate:
            failing.append(reference)
    return {"rows": log.num_rows, "folder": str(folder), "min_match_rate": min_match_rate, "features": features,
            "failing": failing}
