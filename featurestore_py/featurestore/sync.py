"""Pushing the current rows of online feature views from the warehouse to the online store.

Incremental by default: only rows created after the view's watermark, which lives in the
online store (`<prefix>_sync_state`) and advances only once every batch is acknowledged. A
failed or interrupted sync leaves it where it was, so the next run resumes with nothing lost.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from .durations import parse_duration
from .errors import FeatureStoreError
from .online import OnlineStore, OnlineTable
from .registry import FeatureView, Registry
from .warehouse import Warehouse

log = logging.getLogger("featurestore.sync")
ROWS_PER_WRITE = 50_000  # rows handed to the online store per call (each call: one lease, a thread pool)


@dataclass
class SyncResult:
    view: str
    mode: str  # "incremental" or "full"
    rows_read: int
    written: int
    skipped_stale: int
    watermark_before: str | None
    watermark_after: str | None
    seconds: float


def online_table(registry: Registry, view: FeatureView) -> OnlineTable:
    return OnlineTable(
        view=view.name,
        join_keys=registry.join_keys(view),
        features={feature.name: feature.dtype for feature in view.features},
        ttl_seconds=int(view.ttl.total_seconds()) if view.ttl else None,
    )


class Syncer:
    def __init__(self, registry: Registry, connect: Callable[[], Warehouse], online: OnlineStore):
        self.registry = registry
        self.connect = connect
        self.online = online

    def online_views(self, names: Sequence[str] | None = None) -> list[FeatureView]:
        if names:
            views = [self.registry.view(name) for name in names]
            offline = [view.name for view in views if not view.online]
            if offline:
                raise FeatureStoreError(f"Feature view(s) {', '.join(offline)} are not online (`online: true` in their YAML).")
            return views
        return [view for view in self.registry.feature_views.values() if view.online]

    def _query(self, warehouse: Warehouse, view: FeatureView, incremental: bool) -> str:
        return warehouse.render(
            "current_rows", relation=view.relation_name, join_keys=self.registry.join_keys(view),
            event=view.event_timestamp, created=view.created_timestamp,
            features=[feature.name for feature in view.features], after_watermark=incremental)

    def sync_view(self, view: FeatureView, full: bool = False, should_stop: Callable[[], bool] | None = None,
                  on_batch: Callable[[int], None] | None = None, on_rows: Callable[[int], None] | None = None) -> SyncResult:
        started = time.perf_counter()
        state = self.online.get_state(view.name) or {}
        before = state.get("watermark")
        incremental = bool(before) and not full and bool(view.created_timestamp)
        with self.connect() as warehouse:
            rows = warehouse.fetch_arrow(self._query(warehouse, view, incremental),
                                         [datetime.fromisoformat(before)] if incremental else [])
        if on_rows:
            on_rows(rows.num_rows)
        after = before
        if rows.num_rows and view.created_timestamp:
            newest = max(value for value in rows.column("created_timestamp").to_pylist() if value is not None)
            if before is None or newest > datetime.fromisoformat(before):
                after = newest.isoformat(timespec="microseconds")
        table = online_table(self.registry, view)
        written = stale = 0
        # in slices, so a view of millions of keys never becomes millions of Python dicts at once
        for piece in rows.to_batches(max_chunksize=ROWS_PER_WRITE):
            report = self.online.write(table, piece.to_pylist(), should_stop=should_stop, on_batch=on_batch)
            written, stale = written + report.written, stale + report.skipped_stale
        result = SyncResult(view.name, "incremental" if incremental else "full", rows.num_rows, written,
                            stale, before, after, round(time.perf_counter() - started, 3))
        # every batch acknowledged: only now does the watermark move
        self.online.put_state(view.name, {
            "watermark": after, "rows_last_pushed": written, "rows_last_read": rows.num_rows,
            "last_sync_finished": datetime.now(timezone.utc).isoformat(), "last_mode": result.mode,
        })
        log.info(json.dumps({"event": "synced", **asdict(result)}))
        return result

    def status(self, names: Sequence[str] | None = None) -> list[dict]:
        out = []
        with self.connect() as warehouse:
            for view in self.online_views(names):
                state = self.online.get_state(view.name) or {}
                newest = None
                if view.created_timestamp:
                    newest = warehouse.fetch_all(warehouse.render(
                        "view_probe", probe="newest_created", created=view.created_timestamp,
                        relation=view.relation_name))[0][0]
                watermark = state.get("watermark")
                lag = None
                if newest is not None:
                    lag = (newest - datetime.fromisoformat(watermark)).total_seconds() if watermark else None
                out.append({
                    "view": view.name, "watermark": watermark, "rows_last_pushed": state.get("rows_last_pushed"),
                    "last_sync_finished": state.get("last_sync_finished"),
                    "newest_in_warehouse": newest.isoformat() if newest is not None else None,
                    "lag_seconds": lag,
                })
        return out


# -- scheduling ------------------------------------------------------------------------------------


class Schedule:
    """`15m`-style intervals or 5-field cron expressions."""

    def __init__(self, spec: str):
        self.spec = spec
        try:
            self.interval: timedelta | None = parse_duration(spec)
            self.cron = None
        except ValueError:
            self.interval = None
            try:
                from croniter import croniter

                self.cron = croniter(spec, datetime.now(timezone.utc))
            except (ValueError, KeyError) as exc:
                raise FeatureStoreError(
                    f"--every '{spec}' is neither a duration (15m, 1h) nor a cron expression ('*/15 * * * *'): {exc}"
                ) from None

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        from croniter import croniter

        return croniter(self.spec, moment).get_next(datetime)


def run_forever(schedule: Schedule, job: Callable[[Callable[[], bool]], None], stop: threading.Event | None = None) -> None:
    """Run job now and at every scheduled time until SIGTERM/SIGINT (or `stop`). A signal during a
    run lets the batches in flight finish; the job sees should_stop() and ends without moving
    watermarks."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set():
            started = datetime.now(timezone.utc)
            try:
                job(stop.is_set)
            except FeatureStoreError as exc:
                log.error(json.dumps({"event": "sync_failed", "error": str(exc)}))
            if stop.is_set():
                break
            wake = schedule.next_after(started)
            log.info(json.dumps({"event": "sleeping", "until": wake.isoformat()}))
            stop.wait(max(0.0, (wake - datetime.now(timezone.utc)).total_seconds()))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info(json.dumps({"event": "stopped"}))
