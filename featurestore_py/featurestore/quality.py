"""Feature quality: statistics computed in the warehouse, their history, and drift.

Statistics cover a view's winning rows (the snapshot's `valid_to is null or valid_to >
valid_from`), optionally for event times in a window. Numbers get count, distinct, min, max,
mean, stddev and quantiles; other types count, distinct and top values. History is appended to
`featurestore_stats_history` in the warehouse (one row per view, the stats as JSON).

Drift compares two windows of a view: the population stability index over ten bins cut at the
reference window's deciles for numbers, the total variation distance between the value
distributions for the rest. Thresholds come from each feature's `drift:` meta
(`max_psi`, default 0.25; `max_tvd`, default 0.2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from .registry import FeatureView
from .warehouse import Warehouse

NUMERIC_PREFIXES = ("int", "bigint", "smallint", "tinyint", "hugeint", "integer", "double", "float", "real",
                    "decimal", "numeric")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTORY_TABLE = "featurestore_stats_history"
STATS_METADATA_KEY = "featurestore.stats"  # the training-set fingerprint inside an exported Parquet file
DEFAULT_MAX_PSI = 0.25
DEFAULT_MAX_TVD = 0.2


def is_numeric(dtype: str | None) -> bool:
    return (dtype or "").lower().startswith(NUMERIC_PREFIXES)


def _bounds(window: tuple[datetime, datetime] | None) -> list:
    return [window[0], window[1]] if window else []


def view_stats(warehouse: Warehouse, view: FeatureView,
               window: tuple[datetime, datetime] | None = None, top: int = 5) -> dict:
    """Statistics of one view, computed in the warehouse."""
    numeric = [f.name for f in view.features if is_numeric(f.dtype)]
    categorical = [f.name for f in view.features if not is_numeric(f.dtype)]
    query = warehouse.render("feature_stats", relation=view.relation_name, event=view.event_timestamp,
                             numeric=numeric, categorical=categorical, quantiles=QUANTILES, bounded=bool(window))
    row = warehouse.fetch_arrow(query, _bounds(window)).to_pylist()[0]
    rows = row["_rows"]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    last, first = row["_last_event"], row["_first_event"]
    days = max(1.0, (last - first).total_seconds() / 86400) if last and first else None
    stats = {
        "view": view.name, "computed_at": now.isoformat(timespec="seconds"), "rows": rows,
        "window": [w.isoformat() for w in window] if window else None,
        "first_event": first.isoformat() if first else None, "last_event": last.isoformat() if last else None,
        "freshness_seconds": (now - last).total_seconds() if last else None,
        "rows_per_day": rows / days if days else None, "features": {},
    }
    for name in numeric:
        count = row[f"{name}__count"]
        low, high = _plain(row[f"{name}__min"]), _plain(row[f"{name}__max"])
        stats["features"][name] = {
            "kind": "number", "null_rate": (1 - count / rows) if rows else None, "distinct": row[f"{name}__distinct"],
            **{stat: _plain(row[f"{name}__{stat}"]) for stat in ("min", "max", "mean", "stddev")},
            "quantiles": {f"p{int(q * 100)}": _plain(row[f"{name}__p{int(q * 100)}"]) for q in QUANTILES},
            "histogram": _histogram(warehouse, view, name, low, high, window),
        }
    for name in categorical:
        count = row[f"{name}__count"]
        top_values = warehouse.fetch_all(
            warehouse.render("value_counts", relation=view.relation_name, event=view.event_timestamp,
                             feature=name, edges=[], bounded=bool(window), top=top),
            _bounds(window))
        stats["features"][name] = {
            "kind": "category", "null_rate": (1 - count / rows) if rows else None, "distinct": row[f"{name}__distinct"],
            "top": [[value, n] for value, n in top_values],
        }
    return stats


HISTOGRAM_BINS = 10


def _histogram(warehouse: Warehouse, view: FeatureView, feature: str, low, high, window) -> dict | None:
    """Counts in ten equal-width bins from min to max, computed in the warehouse."""
    if low is None or high is None or high <= low:
        return None
    width = (high - low) / HISTOGRAM_BINS
    inner = [low + width * index for index in range(1, HISTOGRAM_BINS)]
    query = warehouse.render("value_counts", relation=view.relation_name, event=view.event_timestamp,
                             feature=feature, edges=inner, bounded=bool(window), top=None)
    counts = dict(warehouse.fetch_all(query, [*inner, *_bounds(window)]))
    return {"edges": [low, *inner, high], "counts": [int(counts.get(index, 0)) for index in range(HISTOGRAM_BINS)]}


def load_history(warehouse: Warehouse) -> list[dict]:
    """Every stats run kept in the history table (oldest first); none when it does not exist yet."""
    from .warehouse import WarehouseError

    try:
        rows = warehouse.fetch_all(warehouse.render("stats_history", action="select", table=HISTORY_TABLE))
    except WarehouseError:
        return []
    return [json.loads(text) for _, _, text in rows]


def _plain(value):
    """JSON-friendly numbers (decimals as floats)."""
    return float(value) if value is not None and not isinstance(value, (int, float)) else value


def save_history(warehouse: Warehouse, stats: list[dict]) -> None:
    """Append stats to the history table (created on first use), all rows or none."""
    with warehouse.transaction():
        warehouse.execute(warehouse.render("stats_history", action="create", table=HISTORY_TABLE))
        for entry in stats:
            warehouse.execute(warehouse.render("stats_history", action="insert", table=HISTORY_TABLE),
                              [datetime.fromisoformat(entry["computed_at"]), entry["view"], json.dumps(entry, default=str)])


# -- drift -----------------------------------------------------------------------------------------


@dataclass
class FeatureDrift:
    feature: str
    metric: str  # "psi" or "tvd"
    value: float | None
    threshold: float
    reference_rows: int
    current_rows: int

    @property
    def breached(self) -> bool:
        return self.value is not None and self.value > self.threshold

    @property
    def no_data(self) -> bool:
        """One of the windows holds no value of the feature: nothing was compared."""
        return self.value is None

    def as_dict(self) -> dict:
        return {"feature": self.feature, "metric": self.metric, "value": self.value, "threshold": self.threshold,
                "breached": self.breached, "no_data": self.no_data, "reference_rows": self.reference_rows,
                "current_rows": self.current_rows}


def _counts(warehouse: Warehouse, view: FeatureView, feature: str,
            window: tuple[datetime, datetime], edges: list[float]) -> dict:
    query = warehouse.render("value_counts", relation=view.relation_name, event=view.event_timestamp,
                             feature=feature, edges=edges, bounded=True, top=None)
    return dict(warehouse.fetch_all(query, [*edges, *_bounds(window)]))


def psi(reference: dict, current: dict, bins: int) -> float | None:
    """Population stability index over bins 0..bins-1; empty bins get a small floor."""
    total_r, total_c = sum(reference.values()), sum(current.values())
    if not total_r or not total_c:
        return None
    value = 0.0
    for b in range(bins):
        r = max(reference.get(b, 0) / total_r, 1e-4)
        c = max(current.get(b, 0) / total_c, 1e-4)
        value += (c - r) * math.log(c / r)
    return value


def tvd(reference: dict, current: dict) -> float | None:
    """Total variation distance between two value distributions (0: same, 1: disjoint)."""
    total_r, total_c = sum(reference.values()), sum(current.values())
    if not total_r or not total_c:
        return None
    values = set(reference) | set(current)
    return 0.5 * sum(abs(reference.get(v, 0) / total_r - current.get(v, 0) / total_c) for v in values)


def view_drift(warehouse: Warehouse, view: FeatureView, reference: tuple[datetime, datetime],
               current: tuple[datetime, datetime]) -> list[FeatureDrift]:
    """Drift of every feature of a view between a reference and a current window of event times."""
    results = []
    for feature in view.features:
        limits = dict(feature.meta.get("drift") or {})
        if is_numeric(feature.dtype):
            # the reference's deciles cut ten bins (fewer when the feature is discrete)
            edges = _deciles(warehouse, view, feature.name, reference)
            ref_counts = _counts(warehouse, view, feature.name, reference, edges)
            cur_counts = _counts(warehouse, view, feature.name, current, edges)
            value = psi(ref_counts, cur_counts, len(edges) + 1)
            results.append(FeatureDrift(feature.name, "psi", value, float(limits.get("max_psi", DEFAULT_MAX_PSI)),
                                        sum(ref_counts.values()), sum(cur_counts.values())))
        else:
            ref_counts = _counts(warehouse, view, feature.name, reference, [])
            cur_counts = _counts(warehouse, view, feature.name, current, [])
            results.append(FeatureDrift(feature.name, "tvd", tvd(ref_counts, cur_counts),
                                        float(limits.get("max_tvd", DEFAULT_MAX_TVD)),
                                        sum(ref_counts.values()), sum(cur_counts.values())))
    return results


def _deciles(warehouse: Warehouse, view: FeatureView, feature: str,
             window: tuple[datetime, datetime]) -> list[float]:
    row = warehouse.fetch_all(warehouse.render("view_probe", probe="deciles", relation=view.relation_name,
                                               feature=feature, event=view.event_timestamp), _bounds(window))[0]
    return sorted({float(value) for value in row if value is not None})


def load_saved_stats(path) -> dict:
    """The fingerprint of an exported training set: from the Parquet file's metadata (or a
    `.stats.json` written by featurestore 0.1)."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .errors import FeatureStoreError

    source = Path(path)
    if source.name.endswith(".stats.json") and not source.exists():
        # featurestore 0.1 wrote `<export>.stats.json` beside the export; the stats now live inside it
        export = source.with_name(source.name[:-len(".stats.json")])
        where = (f"pass --reference-stats {export}" if export.is_file() else
                 f"pass the exported Parquet file itself ({export} is not there either)")
        raise FeatureStoreError(f"{source} does not exist: a training set's stats now live inside the exported "
                                f"Parquet file, not in a .stats.json beside it; {where}.")
    try:
        if source.suffix == ".json":
            saved = json.loads(source.read_text(encoding="utf-8"))
        else:
            metadata = pq.read_schema(source).metadata or {}
            if STATS_METADATA_KEY.encode() not in metadata:
                raise FeatureStoreError(f"{source} holds no training-set stats; export it with `featurestore export`.")
            saved = json.loads(metadata[STATS_METADATA_KEY.encode()])
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise FeatureStoreError(f"Cannot read training-set stats from {source}: {str(exc).splitlines()[0]}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("features"), dict) or "rows" not in saved:
        raise FeatureStoreError(f"{source} does not hold training-set stats (no 'features' and 'rows').")
    return saved


def parse_window(text: str, option: str = "window") -> tuple[datetime, datetime]:
    """`2024-01-01:2024-02-01` (or with times) -> (start, end), end exclusive."""
    from .errors import FeatureStoreError
    for index, char in enumerate(text):
        if char == ":":
            try:
                start, end = datetime.fromisoformat(text[:index]), datetime.fromisoformat(text[index + 1:])
            except ValueError:
                continue
            if end <= start:
                raise FeatureStoreError(f"{option} '{text}' ends before it starts")
            return start, end
    raise FeatureStoreError(f"{option} '{text}' is not a window START:END of ISO dates, e.g. 2024-01-01:2024-02-01")


# -- duplicate features ----------------------------------------------------------------------------


@dataclass
class DuplicatePair:
    left: str  # view:feature
    right: str
    reason: str  # "identical values", "correlation 1.000", "near-identical names"
    score: float

    def as_dict(self) -> dict:
        return {"left": self.left, "right": self.right, "reason": self.reason, "score": round(self.score, 4)}


def _base_name(name: str) -> str:
    """The name without a window suffix: orders_7d and orders_28d share `orders`."""
    import re

    return re.sub(r"_[0-9]+[smhdw]$", "", name)


def duplicate_names(references: list[str], threshold: float = 0.85) -> list[DuplicatePair]:
    """Pairs of features whose names are nearly the same (same base name with different windows
    excepted: that is one aggregate over two windows, on purpose)."""
    from difflib import SequenceMatcher

    pairs = []
    for i, left in enumerate(references):
        for right in references[i + 1:]:
            a, b = _base_name(left.split(":")[1]), _base_name(right.split(":")[1])
            if a == b and left.split(":")[1] != right.split(":")[1]:
                continue
            score = SequenceMatcher(None, a, b).ratio()
            if score >= threshold:
                pairs.append(DuplicatePair(left, right, "near-identical names", score))
    return pairs


def duplicate_values(table, references: list[str], columns: list[str], min_rows: int = 20) -> list[DuplicatePair]:
    """Pairs of columns (same entity rows and times) that are identical, or perfectly correlated
    numbers, on the rows where both have a value."""
    import numpy as np
    import pyarrow as pa

    pairs = []
    values = {column: table.column(column) for column in columns}
    for i, left in enumerate(columns):
        for j in range(i + 1, len(columns)):
            right = columns[j]
            a, b = values[left], values[right]
            both = [(x, y) for x, y in zip(a.to_pylist(), b.to_pylist()) if x is not None and y is not None]
            if len(both) < min_rows:
                continue
            if all(x == y for x, y in both):
                pairs.append(DuplicatePair(references[i], references[j], "identical values", 1.0))
                continue
            numeric = all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) or pa.types.is_decimal(c.type)
                          for c in (a, b))
            if numeric:
                x = np.array([float(p[0]) for p in both])
                y = np.array([float(p[1]) for p in both])
                if x.std() > 0 and y.std() > 0:
                    r = float(np.corrcoef(x, y)[0, 1])
                    if abs(r) >= 0.9999:
                        pairs.append(DuplicatePair(references[i], references[j], f"correlation {r:.4f}", abs(r)))
    return pairs


# -- training-set fingerprints ---------------------------------------------------------------------


def frame_stats(table, features: dict[str, str]) -> dict:
    """Stats of an exported training set, per `view:feature` (features: reference -> column):
    null rate, and what drift needs later — decile edges and bin shares for numbers, value
    shares for the rest. Computed with Arrow compute and numpy over whole columns (no
    per-value Python): a second at 1M rows became a few tens of milliseconds."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = table.num_rows
    out = {"rows": rows, "features": {}}
    for reference, column in features.items():
        values = table.column(column)
        null_rate = values.null_count / rows if rows else None
        present = pc.drop_null(values)
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_decimal(values.type):
            # read from the buffers: pyarrow's to_numpy imports pandas (0.3 s) on first use
            chunks = [np.frombuffer(chunk.buffers()[1], dtype=np.float64, count=len(chunk), offset=chunk.offset * 8)
                      for chunk in pc.cast(present, pa.float64()).chunks if len(chunk)]
            array = np.concatenate(chunks) if chunks else np.array([], dtype=np.float64)
            if len(array):
                edges = sorted({float(q) for q in np.quantile(array, [i / 10 for i in range(1, 10)])})
                counts = np.bincount(np.searchsorted(np.array(edges), array, side="right"))
                shares = {int(b): float(c) / len(array) for b, c in enumerate(counts) if c}
            else:
                edges, shares = [], {}
            out["features"][reference] = {"kind": "number", "null_rate": null_rate, "edges": edges, "bin_shares": shares,
                                          "mean": float(array.mean()) if len(array) else None}
        else:
            counted = pc.value_counts(present)
            total = len(present)
            shares: dict[str, float] = {}
            for value, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
                shares[str(value)] = shares.get(str(value), 0.0) + count / total
            out["features"][reference] = {"kind": "category", "null_rate": null_rate, "value_shares": shares}
    return out


def drift_against_saved(warehouse: Warehouse, view: FeatureView, saved: dict,
                        current: tuple[datetime, datetime]) -> list[FeatureDrift]:
    """Drift of a view's current window against the stats saved with a training set."""
    results = []
    for feature in view.features:
        entry = saved["features"].get(feature.reference)
        if entry is None:
            continue
        limits = dict(feature.meta.get("drift") or {})
        if entry["kind"] == "number":
            edges = entry["edges"]
            counts = _counts(warehouse, view, feature.name, current, edges)
            reference = {int(k): v for k, v in entry["bin_shares"].items()}
            results.append(FeatureDrift(feature.name, "psi", psi(reference, counts, len(edges) + 1),
                                        float(limits.get("max_psi", DEFAULT_MAX_PSI)), saved["rows"], sum(counts.values())))
        else:
            counts = _counts(warehouse, view, feature.name, current, [])
            results.append(FeatureDrift(feature.name, "tvd", tvd(entry["value_shares"], {str(k): v for k, v in counts.items()}),
                                        float(limits.get("max_tvd", DEFAULT_MAX_TVD)), saved["rows"], sum(counts.values())))
    return results


# -- training/serving audit ------------------------------------------------------------------------


def serving_mismatches(features: list[str], entity_rows: list[dict], online: dict, offline: dict) -> list[dict]:
    """Per feature and entity row, where the served value differs from the point-in-time one."""
    mismatches = []
    for feature in features:
        for index, row in enumerate(entity_rows):
            served, expected = online[feature][index], offline[feature][index]
            if not same_value(served, expected):
                mismatches.append({"feature": feature, "keys": row, "online": served, "expected": expected})
    return mismatches


def same_value(served, expected) -> bool:
    """Equal values; floats to 1e-9 relative (DynamoDB numbers are decimal strings)."""
    if served is None or expected is None:
        return served is None and expected is None
    if isinstance(served, float) or isinstance(expected, float):
        return abs(float(served) - float(expected)) <= 1e-9 * max(1.0, abs(float(expected)))
    if isinstance(served, datetime) and isinstance(expected, datetime):
        return served.replace(tzinfo=None) == expected.replace(tzinfo=None)
    return served == expected
