"""Duplicate features: pairs on the same entity that look like one feature twice — identical or
perfectly correlated values on a sample of keys and times, or near-identical names."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Callable

import numpy as np
import pyarrow as pa

from ..registry import Registry


def duplicate_features(registry: Registry, connect: Callable, historical: Callable, sample: int = 2000,
                       seed: int = 0) -> list["DuplicatePair"]:
    """Over every group of views sharing join keys: near-identical names, and values compared on
    a sample of the first view's winning rows' keys and times, every view of the group joined
    there point-in-time (historical: FeatureStore's get_historical_features)."""
    pairs = []
    by_keys: dict[tuple, list] = {}
    for view in registry.feature_views.values():
        by_keys.setdefault(registry.join_keys(view), []).append(view)
    for keys, views in by_keys.items():
        references = [feature.reference for view in views for feature in view.features]
        pairs += duplicate_names(references)
        first = views[0]
        with connect() as warehouse:
            rows = warehouse.fetch_all(warehouse.render("view_probe", probe="winning_points", keys=keys,
                                                        event=first.event_timestamp, relation=first.relation_name))
        rows = random.Random(seed).sample(rows, min(sample, len(rows)))
        if not rows:
            continue
        frame = pa.table({**{key: [row[i] for row in rows] for i, key in enumerate(keys)},
                          "event_timestamp": [row[len(keys)] for row in rows]})
        table = historical(frame, references, full_feature_names=True).to_arrow()
        columns = [reference.replace(":", "__") for reference in references]
        pairs += duplicate_values(table, references, columns)
    return pairs


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
    return re.sub(r"_[0-9]+[smhdw]$", "", name)


def duplicate_names(references: list[str], threshold: float = 0.85) -> list[DuplicatePair]:
    """Pairs of features whose names are nearly the same (same base name with different windows
    excepted: that is one aggregate over two windows, on purpose)."""
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
