"""Pushing the current rows of online feature views from the warehouse to the online store.

Incremental by default: only rows created after the view's watermark. The sync state lives in
the online store (`<prefix>_sync_state`), one item per view *and source* — the project, the
warehouse and the relation it reads — so two projects sharing an endpoint and prefix never take
each other's watermark. The state also records the id of the snapshot table's last full build
(`<table>__build`): a rebuilt table, or a source seen for the first time, means a full sync, and
the result says why. Watermarks advance only once every row is written or set aside, and never
move backwards. Ordering between writers is the online store's (conditional writes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .durations import parse_duration
from .errors import FeatureStoreError, RequestError
from .online import OnlineStore, OnlineStoreError, Rejected, WriteReport
from .online.bulk import lease_seconds
from .registry import FeatureView, Registry
from .requests import online_table, require_online
from .streaming import is_streaming
from .warehouse import Warehouse

log = logging.getLogger("featurestore.sync")
ROWS_PER_WRITE = 50_000  # rows handed to the online store per call (a thread pool of writers each)
BULK_MIN_ROWS = 2_000  # below this, a bulk load's fixed costs (a table made, a scan, a switch) outweigh its gain
BULK_MIN_ROWS_ENV = "FEATURESTORE_BULK_MIN_ROWS"  # overrides it (0: every full sync loads in bulk)
FROM_WORKERS_ENV = "FEATURESTORE_SYNC_FROM_WORKERS"
BULK_SHARE = 0.2  # an incremental delta of more than this share of the view's current rows is loaded in bulk
REJECTED_KEPT = 20  # examples of rejected rows kept in the sync state


@dataclass
class SyncResult:
    view: str
    mode: str  # "incremental" or "full"
    reason: str  # why this mode
    rows_read: int
    written: int
    skipped_stale: int
    rejected: list = field(default_factory=list)  # [{view, key, feature, reason}]
    watermark_before: str | None = None
    watermark_after: str | None = None
    seconds: float = 0.0
    path: str = "conditional"  # "bulk": a new table generation loaded and switched to; else conditional writes
    phases: dict = field(default_factory=dict)  # seconds: read (warehouse), write; bulk: claim (a table made), merge (and switch)


def bulk_min_rows() -> int:
    text = os.environ.get(BULK_MIN_ROWS_ENV)
    if not text:
        return BULK_MIN_ROWS
    try:
        rows = int(text)
        if rows < 0:
            raise ValueError
    except ValueError:
        raise FeatureStoreError(f"{BULK_MIN_ROWS_ENV} must be a whole number of rows (0 or more), not {text!r}.") from None
    return rows


def from_workers() -> bool:
    """Whether a bulk load on Spark writes from the executors (the default), or from the driver
    (FEATURESTORE_SYNC_FROM_WORKERS=0: for executors that cannot reach the online store)."""
    text = (os.environ.get(FROM_WORKERS_ENV) or "1").strip().lower()
    if text not in ("0", "1", "false", "true"):
        raise FeatureStoreError(f"{FROM_WORKERS_ENV} must be 1 or 0, not {text!r}.")
    return text in ("1", "true")


def check_settings() -> None:
    """The sync's settings from the environment, checked before anything is written."""
    bulk_min_rows(), from_workers(), lease_seconds()


def check_force(full: bool, force: bool) -> None:
    """force (rewrite items whose stored version equals the warehouse's) applies to a full sync only."""
    if force and not full:
        raise FeatureStoreError("force rewrites every current row: pass it with full (--full --force).")


class Syncer:
    def __init__(self, registry: Registry, connect: Callable[[], Warehouse], online: OnlineStore, source: str):
        """source: what identifies the warehouse this project reads (e.g. a DuckDB file, a host and database)."""
        self.registry = registry
        self.connect = connect
        self.online = online
        self.source = source

    def online_views(self, names: Sequence[str] | None = None) -> list[FeatureView]:
        if names:
            views = [self.registry.view(name) for name in names]
            require_online(views, "synced")
            streaming = [view.name for view in views if is_streaming(view)]
            if streaming:
                raise RequestError(f"{', '.join(streaming)} are streaming views: their online state is the events "
                                   "pushed to them, written as they arrive; there is nothing to sync.")
            return views
        return [view for view in self.registry.feature_views.values() if view.online and not is_streaming(view)]

    def state_key(self, view: FeatureView) -> str:
        """`<view>#<hash of project, warehouse and relation>`: one sync state per source."""
        identity = json.dumps([self.registry.project_name, self.source, view.relation_name])
        return f"{view.name}#{hashlib.sha256(identity.encode()).hexdigest()[:16]}"

    def _query(self, warehouse: Warehouse, view: FeatureView, incremental: bool) -> str:
        return warehouse.render(
            "current_rows", relation=view.relation_name, join_keys=self.registry.join_keys(view),
            event=view.event_timestamp, created=view.created_timestamp,
            features=[feature.name for feature in view.features], after_watermark=incremental)

    def sync(self, views: Sequence[str] | None = None, full: bool = False, force: bool = False,
             should_stop: Callable[[], bool] | None = None,
             progress: Callable[[str], tuple[Callable[[int], None], Callable[[int], None]]] | None = None,
             on_result: Callable[[SyncResult], None] | None = None) -> list[SyncResult]:
        """Sync the online views (all, or the named ones), one after the other. progress: called
        with each view's name before it syncs, returns its (on_rows, on_batch) callbacks (rows read
        so far; items written by a batch); on_result: called with each view's result as it is done."""
        check_force(full, force)
        check_settings()
        results = []
        for view in self.online_views(views):
            on_rows, on_batch = progress(view.name) if progress else (None, None)
            results.append(self.sync_view(view, full=full, force=force, should_stop=should_stop,
                                          on_rows=on_rows, on_batch=on_batch))
            if on_result:
                on_result(results[-1])
        return results

    def _mode(self, view: FeatureView, state: dict, build_id: str, full: bool) -> tuple[bool, str]:
        """(incremental?, why)."""
        if full:
            return False, "full sync requested"
        if not state.get("watermark"):
            return False, "first sync from this source"
        if not view.created_timestamp:
            return False, "the view has no created_timestamp"
        if self._rebuilt(state, build_id):
            return False, "the snapshot table was rebuilt since the last sync"
        return True, "rows created after the watermark"

    @staticmethod
    def _rebuilt(state: dict, build_id: str) -> bool:
        """Was the snapshot table rebuilt since the last sync from this source? Then it is the
        truth for every version it holds: a fixed model keeps its rows' event and created times
        but changes their values, so items of the same version are rewritten too (as --force)."""
        return bool(state) and state.get("build_id", "") != build_id  # (a view without created_timestamp: no watermark)

    def _current_count(self, warehouse: Warehouse, view: FeatureView) -> int:
        return warehouse.fetch_all(warehouse.render("view_probe", probe="current_count",
                                                    relation=view.relation_name))[0][0]

    def _delta_too_large(self, warehouse: Warehouse, view: FeatureView, watermark: str) -> str | None:
        """Why an incremental delta is loaded in bulk instead (None: it is not): a delta of more
        than BULK_SHARE of the view's current rows costs more in conditional writes than a load
        of every row with unconditional ones."""
        pending, _ = warehouse.fetch_all(warehouse.render(
            "view_probe", probe="pending", created=view.created_timestamp, relation=view.relation_name),
            [datetime.fromisoformat(watermark)])[0]
        if pending < bulk_min_rows():
            return None
        current = self._current_count(warehouse, view)
        if pending <= BULK_SHARE * current:
            return None
        return (f"the delta ({pending:,} rows) is {pending / max(current, 1):.0%} of the view's {current:,} current rows: "
                "every row loaded in bulk")

    def sync_view(self, view: FeatureView, full: bool = False, force: bool = False,
                  should_stop: Callable[[], bool] | None = None, on_batch: Callable[[int], None] | None = None,
                  on_rows: Callable[[int], None] | None = None) -> SyncResult:
        """Push a view's current rows (all, or those created after the watermark); force (with
        full) also rewrites items whose stored version is the same as the warehouse's.

        A full sync of BULK_MIN_ROWS rows or more (and an incremental delta of more than
        BULK_SHARE of the view) is a bulk load of a new table generation (online/generations.py);
        smaller ones, and any sync while another bulk load holds its lease, write conditionally."""
        started = time.perf_counter()
        clock = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")  # before any read
        key = self.state_key(view)
        moves = self.online.moves
        state = self.online.get_state(key) or {}
        before = state.get("watermark") or None
        table = online_table(self.registry, view)
        self.online.drop_retired(view.name)
        with self.connect() as warehouse:
            build_id = warehouse.build_id(view.companion_relation("__build"))
            incremental, reason = self._mode(view, state, build_id, full)
            # synced before, its table gone (the store lost it): every row, loaded into a new table
            lost = bool(state.get("watermark")) and bool(self.online.missing_tables([view.name]))
            if lost:
                incremental, reason = False, "the view's online table is missing (the store lost it since the last sync)"
            if incremental:
                bulk_reason = self._delta_too_large(warehouse, view, before)
                if bulk_reason:
                    incremental, reason = False, bulk_reason
            force = force or self._rebuilt(state, build_id)
            writer = _Writer(self.online, table, view, build_id, force, should_stop, on_rows, on_batch)
            # a bulk load claims before it reads (online/generations.py, rule 0)
            writer.begin(bulk=not incremental and (lost or warehouse.reads_in_parts
                                                   or self._current_count(warehouse, view) >= bulk_min_rows()))
            try:
                parts = warehouse.read_parts(self._query(warehouse, view, incremental),
                                             [datetime.fromisoformat(before)] if incremental else [])
                if warehouse.reads_in_parts:  # Spark: write from the executors, or each partition as it arrives
                    if writer.load and warehouse.writes_from_workers and from_workers():
                        writer.fan_out(warehouse, self._query(warehouse, view, incremental))
                    else:
                        for part in parts:
                            writer.push(part)
                    parts = []
                else:  # read everything, then let go of the warehouse before writing online
                    parts = list(parts)
                writer.phases["read"] = time.perf_counter() - started - sum(writer.phases.values())
            except BaseException as exc:
                writer.give_up(exc)
                raise
        for part in parts:
            writer.push(part)
        writer.end()
        after = next_watermark(before if incremental else None, writer.newest, clock)
        if writer.newest and writer.newest > clock:
            log.warning(f"{view.name}: rows created after this sync's clock ({clock} UTC; the latest {writer.newest}): "
                        "the watermark stays at the clock")
        rows_read, written, stale, rejected = writer.read, writer.report.written, writer.report.skipped_stale, \
            [r.as_dict() for r in writer.report.rejected]
        mode = "incremental" if incremental else "full"
        result = SyncResult(view.name, mode, reason, rows_read, written, stale, rejected, before, after,
                            round(time.perf_counter() - started, 3), writer.path,
                            {phase: round(seconds, 3) for phase, seconds in writer.phases.items()})
        # every row written or set aside: only now does the watermark move (never backwards)
        new_state = {
            "watermark": after or "", "build_id": build_id, "source": self.source, "relation": view.relation_name,
            "last_sync_finished": datetime.now(timezone.utc).isoformat(), "last_mode": mode,
            "rows_last_read": rows_read,
            "rows_last_pushed": written if rows_read else state.get("rows_last_pushed", 0),
            "rejected_last_sync": len(rejected) + writer.rejected_unlisted,
            "rejected_examples": rejected[:REJECTED_KEPT] if rows_read else state.get("rejected_examples", []),
        }
        if self.online.moves != moves:  # its rows went to two servers: the new one's watermark would skip some
            raise OnlineStoreError(f"{view.name}: the online store moved to another server during the sync (the "
                                   "project's local DynamoDB, stopped and started on another port); nothing of this "
                                   "sync is recorded there. Run the sync again: it starts from scratch there.")
        if not self.online.put_state(key, new_state):
            log.info(json.dumps({"event": "watermark_kept", "view": view.name,
                                 "reason": "another sync of this source stored a later watermark"}))
        log.info(json.dumps({"event": "synced", **asdict(result), "rejected": len(rejected)}))
        return result

    def status(self, names: Sequence[str] | None = None) -> list[dict]:
        """Per view: watermark, what is pending in the warehouse (rows created after it) and the
        lag of the newest pending row, rows last pushed, rows set aside."""
        out = []
        with self.connect() as warehouse:
            for view in self.online_views(names):
                state = self.online.get_state(self.state_key(view)) or {}
                watermark = state.get("watermark") or None
                build_id = warehouse.build_id(view.companion_relation("__build"))
                pending, newest, lag = None, None, None
                rebuilt = self._rebuilt(state, build_id)
                if view.created_timestamp and watermark and not rebuilt:
                    pending, newest = warehouse.fetch_all(warehouse.render(
                        "view_probe", probe="pending", created=view.created_timestamp, relation=view.relation_name),
                        [datetime.fromisoformat(watermark)])[0]
                    lag = (newest - datetime.fromisoformat(watermark)).total_seconds() if pending else 0.0
                out.append({
                    "view": view.name, "watermark": watermark, "pending_rows": pending, "lag_seconds": lag,
                    "needs_full_sync": rebuilt,
                    "rows_last_pushed": state.get("rows_last_pushed"),
                    "last_sync_finished": state.get("last_sync_finished"),
                    "rejected_last_sync": state.get("rejected_last_sync", 0),
                    "rejected_examples": state.get("rejected_examples", []),
                })
        return out


class _Writer:
    """One sync's writes of a view: a bulk load, or conditional writes (when the sync is small,
    incremental, or another load holds the lease). Counts rows, the newest created timestamp,
    and seconds per phase."""

    def __init__(self, online: OnlineStore, table, view: FeatureView, build: str, force: bool,
                 should_stop, on_rows, on_batch):
        self.online, self.table, self.view, self.build, self.force = online, table, view, build, force
        self.should_stop, self.on_rows, self.on_batch = should_stop, on_rows, on_batch
        self.read = 0
        self.newest: str | None = None
        self.report = WriteReport()
        self.phases: dict[str, float] = {}
        self.load = None
        self.path = "conditional"
        self.rejected_unlisted = 0  # rows set aside beyond the examples the engine's tasks returned

    def begin(self, bulk: bool) -> None:
        if bulk:
            started = time.perf_counter()
            self.load = self.online.begin_load(self.table, self.build)
            self.phases["claim"] = time.perf_counter() - started
            if self.load is None:
                log.warning(f"{self.view.name}: another sync holds the view's bulk-load lease (until it finishes, or "
                            "its lease runs out): writing conditionally instead")
            else:
                self.load.__enter__()
                self.path = "bulk"

    def push(self, part: pa.Table) -> None:
        started = time.perf_counter()
        self.read += part.num_rows
        if self.on_rows:
            self.on_rows(self.read)
        if self.view.created_timestamp:
            self.newest = newest_created(part, self.newest)
        try:
            # in slices, so a view of millions of keys never becomes millions of Python dicts at once
            for piece in part.to_batches(max_chunksize=ROWS_PER_WRITE):
                if self.load:
                    report = self.load.write(piece.to_pylist(), should_stop=self.should_stop, on_batch=self.on_batch)
                else:
                    report = self.online.write(self.table, piece.to_pylist(), should_stop=self.should_stop,
                                               on_batch=self.on_batch, force=self.force, build=self.build)
                self._add(report)
        except BaseException as exc:
            self.give_up(exc)
            raise
        self.phases["write"] = self.phases.get("write", 0.0) + time.perf_counter() - started

    def fan_out(self, warehouse: Warehouse, sql: str) -> None:
        """The bulk load's writes from the engine's workers: every partition of the current rows
        written into the new table by its own task and client; the merge and the switch (end)
        follow only once every task succeeded."""
        started = time.perf_counter()
        try:
            summaries = warehouse.map_in_workers(sql, [], _PartitionWriter(self.load.writer()), _PartitionWriter.SCHEMA)
        except BaseException as exc:
            self.give_up(exc)
            raise
        for summary in summaries:
            self.read += summary["rows"]
            self.report.written += summary["written"]
            examples = [Rejected(**r) for r in json.loads(summary["rejected"])]
            self.report.rejected += examples
            self.rejected_unlisted += summary["rejected_count"] - len(examples)  # a task returns some examples
            if summary["newest_created"]:
                self.newest = max(summary["newest_created"], self.newest or summary["newest_created"])
        if self.on_rows:
            self.on_rows(self.read)
        self.path = "bulk, from the engine's workers"
        self.phases["write"] = time.perf_counter() - started

    def end(self) -> None:
        """A bulk load merged and switched to; nothing to do for conditional writes."""
        if not self.load:
            return
        if not self.report.written:  # an empty snapshot (or one the store refused whole) never replaces a table
            self.give_up(OnlineStoreError("nothing written"))
            self.path = "bulk, given up: nothing to switch to"
            return
        started = time.perf_counter()
        try:
            merged = self.load.finish(should_stop=self.should_stop)
        except BaseException as exc:
            self.give_up(exc)
            raise
        self.load.__exit__(None, None, None)
        self.report.rejected += merged.rejected
        self.phases["merge"] = time.perf_counter() - started

    def _add(self, report: WriteReport) -> None:
        self.report.written += report.written
        self.report.skipped_stale += report.skipped_stale
        self.report.rejected += report.rejected

    def give_up(self, exc: BaseException) -> None:
        if self.load:
            self.load.__exit__(type(exc), exc, exc.__traceback__)
            self.load = None


class _PartitionWriter:
    """What each engine task runs over its partition (Spark's mapInArrow): the rows written by
    the bulk load's writer, one summary row out. Picklable."""

    SCHEMA = "rows long, written long, rejected_count long, rejected string, newest_created string"

    def __init__(self, writer):
        self.writer = writer

    def __call__(self, batches):
        rows = written = 0
        rejected: list[dict] = []
        newest = None
        for batch in batches:
            part = pa.Table.from_batches([batch])
            rows += part.num_rows
            if "created_timestamp" in part.column_names:
                newest = newest_created(part, newest)
            report = self.writer.write(part.to_pylist())
            written += report.written
            rejected += [r.as_dict() for r in report.rejected]
        yield pa.RecordBatch.from_pylist([{"rows": rows, "written": written, "rejected_count": len(rejected),
                                           "rejected": json.dumps(rejected[:REJECTED_KEPT]), "newest_created": newest}])


def next_watermark(before: str | None, newest: str | None, clock: str) -> str | None:
    """The watermark after a sync that read rows created up to `newest` (from `before`, when
    incremental): never backwards, and never past the sync's own clock — a row created after it
    (a source's clock or time zone ahead) would take the watermark past every row created until
    then. Such a row is read again by each sync (and skipped as stored) until the clock passes it."""
    after = before
    if newest and (after is None or newest > after):
        after = min(newest, clock) if after is None or clock > after else after
    return after


def newest_created(part: pa.Table, newest: str | None) -> str | None:
    """The later of `newest` and the part's latest created_timestamp, as naive-UTC ISO text (the
    watermark's form)."""
    created = pc.max(part.column("created_timestamp")).as_py() if part.num_rows else None
    if created is None:
        return newest
    if created.tzinfo:
        created = created.astimezone(timezone.utc).replace(tzinfo=None)
    text = created.isoformat(timespec="microseconds")
    return max(text, newest or text)


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
