"""Drift: two windows of a view compared — the population stability index over ten bins cut at
the reference window's deciles for numbers, the total variation distance between the value
distributions for the rest — or a window against the fingerprint saved with a training set.
Thresholds come from each feature's `drift:` meta (`max_psi`, default 0.25; `max_tvd`, default 0.2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import FeatureStoreError, NoDataError
from ..registry import FeatureView
from ..types import is_numeric
from ..warehouse import Warehouse
from .stats import STATS_METADATA_KEY, window_bounds

DEFAULT_MAX_PSI = 0.25
DEFAULT_MAX_TVD = 0.2


def measure_drift(view: FeatureView, connect: Callable[..., Warehouse], reference, current: tuple[datetime, datetime],
          allow_empty: bool = False) -> list["FeatureDrift"]:
    """Drift of every feature of a view between two windows of event times, or between the
    stats saved with a training set (a dict, see load_saved_stats) and a window. A window with no
    values raises NoDataError unless allow_empty (then those features report no value)."""
    with connect() as warehouse:
        if isinstance(reference, dict):
            results = drift_against_saved(warehouse, view, reference, current)
        else:
            results = view_drift(warehouse, view, reference, current)
    empty = [result.feature for result in results if result.no_data]
    if empty and not allow_empty:
        raise NoDataError(
            f"No data to compare for {view.name}: {', '.join(empty)} (reference rows / current rows: "
            + ", ".join(f"{r.reference_rows}/{r.current_rows}" for r in results if r.no_data)
            + "); check the windows and the pipeline (pass allow_empty / --allow-empty to accept it).")
    return results


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
    return dict(warehouse.fetch_all(query, [*edges, *window_bounds(window)]))


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
                                               feature=feature, event=view.event_timestamp), window_bounds(window))[0]
    return sorted({float(value) for value in row if value is not None})


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


def load_saved_stats(path) -> dict:
    """The fingerprint of an exported training set: from the Parquet file's metadata (or a
    `.stats.json` written by featurestore 0.1)."""
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
