"""`featurestore audit --served`: the vectors the feature server actually served (its served-vector
log in the landing area) recomputed point-in-time at their request time with the knowledge
guard — what the warehouse knew then — and compared value by value.

Per feature: the rows checked, the exact-match rate, examples of mismatches (keys, request time,
served and expected value, status), and staleness: the newest event time the warehouse knew at
the request time minus the served event time (seconds; above 0 the online store served an older
value than was known — a sync lagging behind), median, maximum and how many rows were stale.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .errors import FeatureStoreError, NoDataError

if TYPE_CHECKING:
    from .store import FeatureStore

EXAMPLES = 10


def audit_served(store: "FeatureStore", min_match_rate: float = 1.0) -> dict:
    from .server.landing import SERVED_FOLDER, read_folder
    from .server.push import landing_dir
    from .server.serving import json_value

    folder = landing_dir(store.project.project_dir, dict(store.project.env)) / SERVED_FOLDER
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
        view = store.registry.view(view_name)
        keys = store.registry.join_keys(view)
        # one entity row per (keys, request time), in first-seen order
        points: dict[tuple, int] = {}
        for row in logged:
            values = json.loads(row["keys"])
            row["_point"] = points.setdefault((tuple(values.get(k) for k in keys), row["request_time"]), len(points))
        ordered = sorted(points, key=points.get)
        frame = pa.table({**{key: [point[0][i] for point in ordered] for i, key in enumerate(keys)},
                          "event_timestamp": pa.array([point[1] for point in ordered], pa.timestamp("us", tz="UTC"))})
        references = sorted({row["feature"] for row in logged})
        guard = bool(view.created_timestamp)
        job = store.get_historical_features(frame, references, knowledge_guard=guard)
        job.event_times = True
        expected = job.to_arrow().to_pylist()
        for row in logged:
            name = row["feature"].partition(":")[2]
            want = json_value(expected[row["_point"]][name], view.feature(name).dtype)
            got = json.loads(row["value"])
            entry = features.setdefault(row["feature"], {"checked": 0, "matched": 0, "mismatches": [], "behind": [],
                                                         "knowledge_guard": guard})
            entry["checked"] += 1
            if _same(got, want):
                entry["matched"] += 1
            elif len(entry["mismatches"]) < EXAMPLES:
                entry["mismatches"].append({"keys": json.loads(row["keys"]), "request_time": row["request_time"].isoformat(),
                                            "served": got, "expected": want, "status": row["status"]})
            known = expected[row["_point"]][f"{view_name}__event_timestamp"]
            if row["status"] != "NOT_FOUND" and known is not None:
                served_at = datetime.fromisoformat(row["event_timestamp"].replace("Z", "+00:00"))
                known = known if known.tzinfo else known.replace(tzinfo=served_at.tzinfo)
                entry["behind"].append((known - served_at).total_seconds())
    failing = []
    for reference, entry in features.items():
        entry["match_rate"] = entry["matched"] / entry["checked"]
        behind = entry.pop("behind")
        entry["staleness_seconds"] = {"median": statistics.median(behind), "max": max(behind),
                                      "stale_rows": sum(1 for b in behind if b > 0)} if behind else None
        if entry["match_rate"] < min_match_rate:
            failing.append(reference)
    return {"rows": log.num_rows, "folder": str(folder), "min_match_rate": min_match_rate, "features": features,
            "failing": failing}


def _same(served: Any, expected: Any) -> bool:
    if isinstance(served, float) or isinstance(expected, float):
        if served is None or expected is None:
            return served is expected
        return math.isclose(float(served), float(expected), rel_tol=1e-9, abs_tol=1e-12)
    return served == expected
