"""Bulk loads: a new generation of a view's DynamoDB table, filled with unconditional
BatchWriteItem requests, merged with what writers put into the live table meanwhile, then
switched to. The protocol and why it keeps newest-wins: generations.py.

    with store.begin_load(table, build) as load:   # None while another load holds its lease
        load.write(rows)                           # any number of times; or load.writer() in
                                                   # Spark tasks, each with its own client
        load.finish()                              # merge, then switch readers

Leaving the block by an exception (a failed write, Ctrl-C) gives the load up: readers keep the
live table, the new one is dropped by a later sync. A loader's name carries its process
(processes.this_process): a claim on the same machine takes over at once the load of a loader
that has exited (killed, or its release failed on the way out), or that is this process and no
longer runs it. Any other load's lease runs out first (FEATURESTORE_LOAD_LEASE seconds, 60 by
default); until then other syncs write conditionally.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any, Callable, Iterable, Mapping

from .. import processes
from . import OnlineStoreError, OnlineTable, TableGone, WriteReport, back_off, run_all
from .generations import DEFAULT_LEASE_SECONDS, Generations
from .codec import BUILD, LOAD, stamp

log = logging.getLogger("featurestore")
BATCH_ITEMS = 25  # DynamoDB's limit per BatchWriteItem request
LEASE_ENV = "FEATURESTORE_LOAD_LEASE"


def lease_seconds(value: float | None = None) -> float:
    """The bulk-load lease: the argument, else FEATURESTORE_LOAD_LEASE, else 60 s."""
    if value is not None:
        return float(value)
    text = os.environ.get(LEASE_ENV)
    try:
        seconds = float(text) if text else DEFAULT_LEASE_SECONDS
        if not 1 <= seconds <= 86400:
            raise ValueError
    except ValueError:
        raise OnlineStoreError(f"{LEASE_ENV} must be a number of seconds from 1 to 86400, not {text!r}.") from None
    return seconds


class BatchWriter:
    """Unconditional BatchWriteItem of rows into one table, 25 items a request across a thread
    pool; unprocessed items are resent at once while a request makes progress, with back-off
    only when it makes none. Picklable: a Spark task gets a copy and makes its own client."""

    def __init__(self, make_store: Callable[[], Any], table: OnlineTable, table_name: str, build: str | None):
        """make_store: a picklable callable giving a DynamoDBOnlineStore (its client, its retries)."""
        self.make_store, self.table, self.table_name, self.build = make_store, table, table_name, build
        self._store = None

    def __getstate__(self):
        return {**self.__dict__, "_store": None}

    @property
    def store(self):
        if self._store is None:
            self._store = self.make_store()
        return self._store

    @property
    def workers(self) -> int:
        return self.store.workers

    def write(self, rows: Iterable[Mapping[str, Any]], should_stop: Callable[[], bool] | None = None,
              on_batch: Callable[[int], None] | None = None) -> WriteReport:
        report = WriteReport()
        items = self.store._newest_items(self.table, rows, report, self.build)
        stamp(items, None)
        batches = [items[i:i + BATCH_ITEMS] for i in range(0, len(items), BATCH_ITEMS)]
        lock = threading.Lock()
        stopped, failed = threading.Event(), threading.Event()

        def send(batch: list[dict]) -> None:
            if failed.is_set():
                return  # another batch failed: the load fails now, not after every batch timed out
            if stopped.is_set() or (should_stop and should_stop()):
                stopped.set()
                return
            try:
                sent = self._send(batch, self.store._deadline())  # the timeout is per request
            except BaseException:
                failed.set()
                raise
            requests, retries = sent
            with lock:
                report.written += len(batch)
                report.requests += requests
                report.retries += retries
            if on_batch:
                on_batch(len(batch))

        run_all(send, batches, self.workers, failed)
        if stopped.is_set():
            raise OnlineStoreError(f"The bulk load of {self.table.view} stopped before every row was written.")
        return report

    def _send(self, batch: list[dict], deadline: float) -> tuple[int, int]:
        """(requests, retries) for one batch, resent until every item is processed."""
        from botocore.exceptions import ClientError

        pending = [{"PutRequest": {"Item": item}} for item in batch]
        requests = retries = stalled = 0
        while pending:
            try:
                response, tried = self.store._call("batch_write_item", deadline,
                                                   RequestItems={self.table_name: pending})
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                    raise TableGone(self.table_name) from None
                raise OnlineStoreError(f"DynamoDB refused a bulk write to {self.table_name}: {exc}") from None
            requests, retries = requests + 1 + tried, retries + tried
            left = (response.get("UnprocessedItems") or {}).get(self.table_name, [])
            stalled = stalled + 1 if len(left) == len(pending) else 0  # progress: resend at once
            pending = left
            if pending and stalled:
                back_off(stalled, deadline, f"Bulk writes to {self.table_name} still unprocessed at the deadline.")
        return requests, retries


_RUNNING: set[str] = set()  # the loads this process runs (claimed, not yet given up or switched)


def _abandoned(loader: str | None) -> bool:
    """Whether a load's holder no longer runs it: a process on this machine that has exited, or
    this process, which gave the load up (or ended it) without the store hearing of it."""
    holder = (loader or "").partition("@")[2]
    if not holder:
        return False  # a name without its process (made where /proc is missing, or by an earlier version)
    if holder == processes.this_process():
        return loader not in _RUNNING
    return processes.has_exited(holder)


class BulkLoad:
    """One claimed load of a view's next table generation (see the module docstring)."""

    def __init__(self, store, table: OnlineTable, build: str, pointer: Generations, loader: str, lease: float):
        self.store, self.table, self.build = store, table, build
        self.table_name = pointer.loading
        self.previous = pointer.live
        self.loader, self.lease = loader, lease
        self.claimed_at = time.time()
        self.lost = threading.Event()
        self._done = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @classmethod
    def claim(cls, store, table: OnlineTable, build: str, lease: float | None = None) -> "BulkLoad | None":
        store._check_reserved(table)
        lease = lease_seconds(lease)
        store.drop_retired(table.view)
        base = store.config.table_name(table.view)
        holder = processes.this_process()
        loader = f"{uuid.uuid4().hex}@{holder}" if holder else uuid.uuid4().hex
        taken_over: list[str] = []

        def claim(current: Generations) -> Generations | None:
            taken_over[:] = []
            if current.loading and current.loader == loader:
                return current  # stored already (a retry after an answer that was lost)
            if current.load_in_progress():
                if not _abandoned(current.loader):
                    return None
                taken_over.append(current.loading)
            return current.claimed(base, loader, lease)

        _RUNNING.add(loader)  # before the claim: this process runs it from the moment it is stored
        try:
            pointer = store.update_generations(table.view, claim)
        except BaseException:
            _RUNNING.discard(loader)
            raise
        if pointer is None:
            _RUNNING.discard(loader)
            return None
        load = cls(store, table, build, pointer, loader, lease)
        try:
            store._ensure_view_table(load.table_name, table)
        except BaseException:
            load._release()
            raise
        if taken_over:
            log.warning(f"the bulk load of {table.view} into {taken_over[0]} was left by its loader (a process that "
                        "has exited, or this one): taken over before its lease ran out")
        log.info(f"bulk load of {table.view} into {load.table_name} (live: {load.previous})")
        return load

    def __enter__(self) -> "BulkLoad":
        self._heartbeat = threading.Thread(target=self._renew, name=f"lease-{self.table.view}", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        self._done.set()
        if kind is not None and not self.lost.is_set():
            self._release()
        _RUNNING.discard(self.loader)  # released or not: a later claim in this process may take it over

    def _mine(self, current: Generations) -> bool:
        return current.loading == self.table_name and current.loader == self.loader

    def _renew(self) -> None:
        while not self._done.wait(self.lease / 4):
            try:
                renewed = self.store.update_generations(
                    self.table.view, lambda current: current.renewed(self.lease) if self._mine(current) else None)
            except OnlineStoreError as exc:  # the next renewal may get through; the switch checks again
                log.warning(f"could not renew the bulk-load lease of {self.table.view}: {exc}")
                continue
            if renewed is None:
                self.lost.set()
                return

    def _check(self) -> None:
        if self.lost.is_set():
            raise OnlineStoreError(f"The bulk load of {self.table.view} lost its lease (another sync took it over: "
                                   f"{self.lease:.0f} s went by without a renewal, or its loader was taken for "
                                   "exited); nothing was switched.")

    def writer(self) -> BatchWriter:
        """A writer into the new table; picklable, for the engine's workers."""
        return BatchWriter(self.store.sibling, self.table, self.table_name, self.build)

    def write(self, rows: Iterable[Mapping[str, Any]], should_stop=None, on_batch=None) -> WriteReport:
        self._check()
        writer = self.writer()
        writer._store = self.store  # in this process: this store's client
        report = writer.write(rows, should_stop=should_stop, on_batch=on_batch)
        self._check()
        return report

    def finish(self, should_stop: Callable[[], bool] | None = None) -> WriteReport:
        """Merge what writers put into the live table during the load (and every pushed item) into
        the new table, conditionally; then switch readers to it. Returns the merge's report."""
        self._check()
        report = self.merge(should_stop)
        switched = self.store.update_generations(
            self.table.view, lambda current: current.switched() if self._mine(current) else None)
        if switched is None and self.store.generations(self.table.view, fresh=True).live != self.table_name:
            self.lost.set()  # (a switch whose answer was lost and was retried reads as done: live is ours)
            self._check()
        self._done.set()
        log.info(f"switched {self.table.view} to {self.table_name}")
        return report

    def merge(self, should_stop: Callable[[], bool] | None = None) -> WriteReport:
        """Items of the live table a push wrote (no build) or a writer stamped with this load, put
        into the new table if newer: a parallel, consistent scan, filtered by DynamoDB."""
        from botocore.exceptions import ClientError

        report = WriteReport()
        pointer = self.store.generations(self.table.view, fresh=True)
        if not pointer.needs_merge():  # never pushed to, nobody wrote during the load: nothing to look for
            return report
        segments = max(1, self.store.workers)
        wanted = "#l = :load OR attribute_not_exists(#b)" if pointer.pushed else "#l = :load"
        names = {"#l": LOAD, "#b": BUILD} if pointer.pushed else {"#l": LOAD}

        stopped = threading.Event()  # a failed segment, or Ctrl-C: the others stop after their current page

        def halted() -> bool:
            return stopped.is_set() or (should_stop is not None and should_stop())

        reports = [WriteReport() for _ in range(segments)]  # one a segment: their writes run at once

        def scan(segment: int) -> None:
            start = None
            while not stopped.is_set():
                request = dict(TableName=self.previous, ConsistentRead=True, Segment=segment, TotalSegments=segments,
                               FilterExpression=wanted, ExpressionAttributeNames=names,
                               ExpressionAttributeValues={":load": {"S": self.table_name}})
                if start:
                    request["ExclusiveStartKey"] = start
                try:
                    response, _ = self.store._call("scan", self.store._deadline(), **request)  # per page
                except ClientError as exc:
                    if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                        return  # no live table yet: nothing to merge
                    raise OnlineStoreError(f"Cannot scan {self.previous} to merge it: {exc}") from None
                items = response.get("Items") or []
                if items:
                    self._check()
                    self.store._write_items(self.table.view, self.table_name, items, reports[segment],
                                            should_stop=halted)
                start = response.get("LastEvaluatedKey")
                if not start:
                    return

        run_all(scan, range(segments), segments, stopped)
        for part in reports:
            report.add(part)
        return report

    def _release(self) -> None:
        """Give the lease up, if the store answers soon (PROBE_SECONDS): its failure may be why the
        load stopped, and the lease runs out anyway."""
        try:
            self.store.update_generations(
                self.table.view, lambda current: current.released() if self._mine(current) else None,
                deadline=self.store._probe_deadline())
        except OnlineStoreError as exc:
            log.warning(f"could not give up the bulk load of {self.table.view} ({exc}); the next sync in this process "
                        "takes it over, another once this process has exited or the lease has run out")
        finally:
            _RUNNING.discard(self.loader)
