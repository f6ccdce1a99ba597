"""Entity rows without an entity frame: every key of the views at every step of a time spine."""

from __future__ import annotations

from datetime import datetime

from ..durations import parse_duration
from ..entity_frame import EntitySource
from ..errors import FeatureStoreError
from ..requests import ViewRequest


MAX_SPINE_ROWS = 50_000_000  # entity rows a time spine may have unless the caller lifts the limit


def time_spine_source(requests: list[ViewRequest], start: datetime, end: datetime, every: str,
                      max_rows: int | None = MAX_SPINE_ROWS) -> EntitySource:
    """Entity rows for retrieval without an entity frame: every key of the views x a time spine
    from start to end (inclusive) every `every`, as `event_timestamp`. Its size (points x keys) is
    checked against max_rows (None or 0: no limit) before it runs: `check_spine_size`."""
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
    if max_rows is not None and max_rows < 0:
        raise FeatureStoreError(f"The spine's row limit must be 0 (none) or more, not {max_rows}.")
    points = int((end - start).total_seconds()) // step + 1
    source = EntitySource(None, None, f"time spine {start} to {end} every {every}", parameters=(start, end, step),
                          template=("entity_spine", {"keys": sorted(key_sets)[0],
                                                     "relations": [r.view.relation_name for r in requests]}),
                          spine=(points, max_rows or 0))
    _refuse_if_past(source, None)  # too many points for any number of keys: said before a query
    return source


def check_spine_size(warehouse, source: EntitySource) -> None:
    """Refuse a time spine of more entity rows (points x the views' keys) than its limit, with the
    estimate and the option that lifts it, before the spine is built (a typo such as `--every 10s`
    for `10d` would otherwise fill the warehouse's temporary space for many minutes)."""
    if source.spine[1]:
        name, context = source.template
        _refuse_if_past(source, warehouse.fetch_all(warehouse.render(name, count_keys=True, **context))[0][0])


def _refuse_if_past(source: EntitySource, keys: int | None) -> None:
    points, limit = source.spine
    rows = points * (keys if keys is not None else 1)
    if limit and rows > limit:
        size = f"{points:,} points" + (f" x {keys:,} keys = {rows:,} entity rows" if keys is not None else "")
        raise FeatureStoreError(
            f"The {source.description} is {size}, past the limit of {limit:,} rows: check the step, or lift "
            f"the limit (--max-spine-rows N, or 0 for none; max_spine_rows= in the SDK).")
