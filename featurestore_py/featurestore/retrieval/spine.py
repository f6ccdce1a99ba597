"""Entity rows without an entity frame: every key of the views at every step of a time spine."""

from __future__ import annotations

from datetime import datetime

from ..durations import parse_duration
from ..entity_frame import EntitySource
from ..errors import FeatureStoreError
from ..requests import ViewRequest


def time_spine_source(requests: list[ViewRequest], start: datetime, end: datetime, every: str) -> EntitySource:
    """Entity rows for retrieval without an entity frame: every key of the views x a time spine
    from start to end (inclusive) every `every`, as `event_timestamp`."""
    key_sets = {tuple(view_key for _, view_key in request.keys) for request in requests}
    if len(key_sets) != 1:
        raise FeatureStoreError(
            "Retrieval on a time spine needs feature views with the same join keys; got "
            + "; ".join(f"{r.view.name} ({', '.join(k for _, k in r.keys)})" for r in requests)
        )
    if end < start:
        raise FeatureStoreError(f"The spine ends ({end}) before it starts ({start}).")
    try:
        step = int(parse_duration(every).total_seconds())
    except ValueError as exc:
        raise FeatureStoreError(f"--every {exc}") from None
    return EntitySource(None, None, f"time spine {start} to {end} every {every}", parameters=(start, end, step),
                        template=("entity_spine", {"keys": sorted(key_sets)[0],
                                                   "relations": [r.view.relation_name for r in requests]}))
