"""Bulk loads of a new table generation (online/generations.py), on moto and dynalite, with the
fault in the middle: a loader paused or killed during its load, a push during the load, two
loads at once, a writer that read the pointer before a switch, a reader across the switch.
Every case ends with every key present and no value older than one written before it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from featurestore.online import OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore

TABLE = OnlineTable("things", ("thing_id",), {"size": "bigint"}, None)
T0 = datetime(2025, 1, 1)
KEYS = 250

LOADER = """
import os, signal, sys
from datetime import datetime, timedelta
from featurestore.online import OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
url, prefix, minute, keys, lease = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
stop_after_first = sys.argv[6] == "stop"
table = OnlineTable("things", ("thing_id",), {"size": "bigint"}, None)
store = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix), workers=1)
event = datetime(2025, 1, 1) + timedelta(minutes=minute)
rows = [{"thing_id": i, "event_timestamp": event, "created_timestamp": event, "size": minute} for i in range(keys)]
load = store.begin_load(table, f"build-{minute}", lease_seconds=lease)
if load is None:
    print("busy", flush=True)
    sys.exit(3)
def first_batch(n, stopped=[]):
    print("batch", flush=True)
    if not stopped and stop_after_first:  # stop here, mid-load, for the test to resume (no race)
        stopped.append(True)
        os.kill(os.getpid(), signal.SIGSTOP)
with load:
    load.write(rows, on_batch=first_batch)
    print("merging", flush=True)
    load.finish()
print("switched", load.table_name, flush=True)
"""


def store_at(url: str, prefix: str, **options) -> DynamoDBOnlineStore:
    return DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix), **options)


def rows(keys, minute: int, build_size=None):
    event = T0 + timedelta(minutes=minute)
    return [{"thing_id": k, "event_timestamp": event, "created_timestamp": event, "size": minute} for k in keys]


def sizes(store, keys=range(KEYS)):
    return [v["size"] if v else None for v in store.read(TABLE, [{"thing_id": k} for k in keys], ["size"])]


def start_loader(url, prefix, minute, keys=KEYS, lease=60.0):
    """A loader stopped (SIGSTOP, by itself) after its first batch, mid-load."""
    loader = subprocess.Popen([sys.executable, "-c", LOADER, url, prefix, str(minute), str(keys), str(lease), "stop"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = loader.stdout.readline().strip()
    assert first == "batch", (first, loader.stderr.read() if first == "" else "")
    while Path(f"/proc/{loader.pid}/stat").read_text().split(") ")[1][0] != "T":  # until it is stopped
        time.sleep(0.01)
    return loader


class Watcher(threading.Thread):
    """Reads every key over and over (its own store, pointer cache and all) and records any key
    missing or any value older than one it read before."""

    def __init__(self, url, prefix):
        super().__init__(daemon=True)
        self.store = store_at(url, prefix)
        self.seen = [0] * KEYS
        self.problems: list[str] = []
        self.reads = 0
        self.stop = threading.Event()

    def run(self):
        try:
            self.watch()
        except BaseException as exc:  # a watcher that died must fail the test, not pass it
            self.problems.append(f"the watcher failed: {exc!r}")

    def watch(self):
        while not self.stop.is_set():
            for key, size in enumerate(sizes(self.store)):
                if size is None:
                    self.problems.append(f"key {key} missing")
                elif size < self.seen[key]:
                    self.problems.append(f"key {key}: {size} after {self.seen[key]}")
                else:
                    self.seen[key] = size
            self.reads += 1
            self.stop.wait(0.05)  # leave the emulator some time for the writers

    def finish(self):
        reads = self.reads
        while self.reads < reads + 2 and self.is_alive():  # at least one whole read after the switch
            time.sleep(0.01)
        self.stop.set()
        self.join(60)
        assert not self.problems, self.problems[:10]


def test_a_bulk_load_switches_readers_to_a_complete_table_that_keeps_every_newer_write(dynamodb):
    store = store_at(dynamodb, "blbulk_")
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    store.write(TABLE, rows(range(10), 50))  # pushed: newer than the build loaded below
    store.write(TABLE, rows(range(10, 20), 3))  # older than what is stored: ignored
    before = store.live_table_name("things")
    with store.begin_load(TABLE, "new") as load:
        assert load.table_name != before
        store.write(TABLE, rows(range(20, 30), 60), build="newer")  # a sync of a later build during the load
        load.write(rows(range(KEYS + 100), 10))
        assert store.live_table_name("things") == before  # readers stay on the live table until the switch
        load.finish()
    assert store.live_table_name("things") == load.table_name
    assert sizes(store, range(KEYS + 100)) == [50] * 10 + [10] * 10 + [60] * 10 + [10] * (KEYS + 70)
    assert before in [table for table, _ in store.generations("things", fresh=True).retired]


def test_a_paused_loader_with_a_push_and_readers_during_the_load_and_the_switch(dynamodb):
    """The loader is SIGSTOPped after its first batch; meanwhile a push of newer values lands and
    readers read; then it resumes, merges and switches. Readers never miss a key or go back."""
    prefix = "blpaused_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    watcher = Watcher(dynamodb, prefix)
    watcher.start()
    loader = start_loader(dynamodb, prefix, 10)
    try:
        pointer = store.generations("things", fresh=True)
        assert pointer.loading and pointer.live == f"{prefix}things"
        store.write(TABLE, rows(range(0, KEYS, 7), 40))  # a push while the loader is stopped
        assert sizes(store)[:8] == [40, 5, 5, 5, 5, 5, 5, 40]
    finally:
        loader.send_signal(signal.SIGCONT)
    out, err = loader.communicate(timeout=300)
    assert loader.returncode == 0, err
    assert "switched" in out
    watcher.finish()
    # (a reader that read the pointer just before the switch may read the old table for 1 s more)
    assert sizes(store_at(dynamodb, prefix)) == [40 if key % 7 == 0 else 10 for key in range(KEYS)]
    assert store.live_table_name("things") != f"{prefix}things"


def test_a_killed_loaders_load_is_taken_over_at_once_on_its_machine_and_once_its_lease_runs_out_elsewhere(dynamodb):
    """A loader killed mid-load leaves readers on the live table, and its load is taken over:
    at once by a sync on the same machine, which can tell that the process has exited (before,
    every sync in the lease's minute wrote conditionally); only when the lease has run out where
    the holder cannot be judged (a loader named on another machine)."""
    from dataclasses import replace

    prefix = "blkilled_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")

    # killed on another machine (the stored name says so): the lease holds until it runs out
    loader = start_loader(dynamodb, prefix, 10)
    loader.kill()
    loader.wait(60)
    store.update_generations("things", lambda current: replace(
        current, loader=current.loader.partition("@")[0] + "@0123456789abcdef/1.1", serial=current.serial + 1))
    store.write(TABLE, rows(range(5), 30))  # written to the live table and the abandoned one
    assert sizes(store) == [30] * 5 + [5] * (KEYS - 5)
    assert store.begin_load(TABLE, "next") is None  # the lease (60 s from the last renewal) still holds
    # a minute passes: the lease runs out (written as the clock would have it, not waited for)
    store.update_generations("things", lambda current: replace(current, lease_until=time.time() - 1,
                                                               serial=current.serial + 1))
    abandoned = store.generations("things", fresh=True).loading
    with store.begin_load(TABLE, "next") as load:
        assert load.table_name != abandoned
        load.write(rows(range(KEYS), 20))
        load.finish()
    assert sizes(store_at(dynamodb, prefix)) == [30] * 5 + [20] * (KEYS - 5)
    retired = [table for table, _ in store.generations("things", fresh=True).retired]
    assert abandoned in retired and f"{prefix}things" in retired

    # killed on this machine: taken over at once, with most of its lease to go
    loader = start_loader(dynamodb, prefix, 40)
    loader.kill()
    loader.wait(60)
    left = store.generations("things", fresh=True)
    assert left.load_in_progress() and left.lease_until > time.time() + 30
    store.write(TABLE, rows(range(5), 50))
    with store.begin_load(TABLE, "after the kill") as load:
        assert load.table_name != left.loading
        load.write(rows(range(KEYS), 45))
        load.finish()
    assert sizes(store_at(dynamodb, prefix)) == [50] * 5 + [45] * (KEYS - 5)
    assert left.loading in [table for table, _ in store.generations("things", fresh=True).retired]


def test_two_loaders_racing_to_take_over_a_killed_ones_load_never_hold_it_together(dynamodb):
    """Two loads start together after a loader was killed here: the pointer's conditional update
    lets one take the load over; the other finds that one alive (busy) or, once it has switched,
    claims the next generation. Every key ends with the newest switched value."""
    prefix = "blrace_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    killed = start_loader(dynamodb, prefix, 10)
    killed.kill()
    killed.wait(60)
    abandoned = store.generations("things", fresh=True).loading
    racers = {minute: subprocess.Popen([sys.executable, "-c", LOADER, dynamodb, prefix, str(minute), str(KEYS), "60",
                                        "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for minute in (20, 30)}
    outcomes = {minute: (racer.communicate(timeout=300), racer.returncode) for minute, racer in racers.items()}
    assert all(code in (0, 3) for _, code in outcomes.values()), outcomes
    switched = [minute for minute, ((out, _), code) in outcomes.items() if code == 0 and "switched" in out]
    assert switched, outcomes
    assert sizes(store_at(dynamodb, prefix)) == [max(switched)] * KEYS
    pointer = store.generations("things", fresh=True)
    # the killed loader's table is retired (and perhaps dropped already, by the second claim): never read or written
    assert pointer.loading is None and abandoned not in pointer.targets()
    assert abandoned in [table for table, _ in pointer.retired] or abandoned not in store.client.list_tables()["TableNames"]


def test_a_load_whose_release_failed_is_taken_over_by_the_next_sync_of_the_same_process(dynamodb, monkeypatch):
    """A load given up while the store did not answer keeps its lease in the pointer: the next
    load of the same view in the same process (`sync --every`, a server's process) takes it over
    instead of writing conditionally for the lease's minute; a load this process still runs is
    never taken over."""
    from featurestore.online import OnlineStoreError

    prefix = "blrelease_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    first = store.begin_load(TABLE, "first")
    assert store_at(dynamodb, prefix).begin_load(TABLE, "second") is None  # this process runs it

    def unanswered(*args, **kwargs):
        raise OnlineStoreError("the store did not answer")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError, match="stopped mid-load"):
        with first:
            first.write(rows(range(KEYS // 2), 10))
            patched.setattr(store, "update_generations", unanswered)  # the release fails
            raise RuntimeError("stopped mid-load")
    left = store.generations("things", fresh=True)
    assert left.loading == first.table_name and left.load_in_progress()
    with store_at(dynamodb, prefix).begin_load(TABLE, "second") as load:
        assert load is not None and load.table_name != left.loading
        load.write(rows(range(KEYS), 20))
        load.finish()
    assert sizes(store_at(dynamodb, prefix)) == [20] * KEYS


def test_a_claim_whose_answer_was_lost_and_is_retried_still_holds_the_load(dynamodb, monkeypatch):
    """The store took the claim but its answer was lost: the retry reads the pointer with this
    load already in it, and the load is ours (before, the retry found its own load "held" and
    the sync wrote conditionally while nobody renewed the lease)."""
    prefix = "blretry_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    real = store.update_generations

    def answer_lost_then_retried(view, change, **options):
        real(view, change, **options)  # stored; the answer never came
        return real(view, change, **options)

    monkeypatch.setattr(store, "update_generations", answer_lost_then_retried)
    load = store.begin_load(TABLE, "retried")
    monkeypatch.undo()
    assert load is not None
    with load:
        load.write(rows(range(KEYS), 20))
        load.finish()
    assert sizes(store_at(dynamodb, prefix)) == [20] * KEYS
    assert store.generations("things", fresh=True).live == load.table_name


def test_two_loads_at_once_the_second_writes_conditionally_and_newest_wins(dynamodb):
    """An older build's load is paused mid-way; a newer build's sync finds the lease taken and
    writes conditionally; the older load resumes (its unconditional writes go over the newer
    values in its table) and its merge puts the newer values back before the switch."""
    prefix = "bltwo_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    older = start_loader(dynamodb, prefix, 10)
    try:
        newer = subprocess.run([sys.executable, "-c", LOADER, dynamodb, prefix, "20", str(KEYS), "60", "run"],
                               capture_output=True, text=True, timeout=300)
        assert newer.returncode == 3 and newer.stdout.strip() == "busy"
        report = store.write(TABLE, rows(range(KEYS), 20), build="build-20")  # what the sync does then
        assert report.written == KEYS
    finally:
        older.send_signal(signal.SIGCONT)
    out, err = older.communicate(timeout=300)
    assert older.returncode == 0, err
    assert sizes(store_at(dynamodb, prefix)) == [20] * KEYS


def test_a_writer_that_read_the_pointer_before_the_switch_reaches_the_new_table(dynamodb, monkeypatch):
    """A writer whose cached pointer predates a load and its switch (it was paused) writes to the
    old table, then reads the pointer again and writes to the live one; the same when the old
    table was dropped meanwhile."""
    import featurestore.online.generations as generations

    prefix = "blstale_"
    store = store_at(dynamodb, prefix)
    store.write(TABLE, rows(range(KEYS), 5), build="old")
    stale = store_at(dynamodb, prefix)
    stale.write(TABLE, rows(range(3), 6))  # its pointer and its table, cached for good below: as if paused since
    monkeypatch.setattr("featurestore.online.dynamodb.READ_CACHE_SECONDS", 1e9)
    for round_, minute in ((1, 30), (2, 40)):
        monkeypatch.setattr(generations, "RETIRE_AFTER_SECONDS", 0.0 if round_ == 2 else 30.0)
        with store.begin_load(TABLE, f"b{round_}") as load:
            load.write(rows(range(KEYS), 10 + round_))
            load.finish()
        if round_ == 2:
            assert store.drop_retired("things")  # the table the stale writer still thinks is live
        stale.write(TABLE, rows(range(3), minute))
        assert sizes(store_at(dynamodb, prefix), range(4)) == [minute] * 3 + [10 + round_]


def test_readers_and_writers_of_a_view_never_bulk_loaded_are_unchanged(dynamodb):
    store = store_at(dynamodb, "blplain_")
    store.write(TABLE, rows(range(5), 1))
    assert store.live_table_name("things") == "blplain_things"
    assert store.generations("things").pushed  # a push marks the pointer: a later bulk load merges pushed items
    store_at(dynamodb, "blplain_").write(TABLE, rows(range(5, 7), 1), build="b")  # a sync's write: no pointer change
    assert store.generations("things", fresh=True).serial == 1
    assert sizes(store, range(8)) == [1] * 7 + [None]


@pytest.mark.parametrize("lease", ["0.5", "many"])
def test_a_bad_lease_setting_is_refused_before_anything_is_written(dynamodb, monkeypatch, lease):
    from featurestore.online import OnlineStoreError

    monkeypatch.setenv("FEATURESTORE_LOAD_LEASE", lease)
    store = store_at(dynamodb, "bllease_")
    with pytest.raises(OnlineStoreError, match="FEATURESTORE_LOAD_LEASE"):
        store.begin_load(TABLE, "b")
    assert store.generations("things", fresh=True).serial == 0


def test_a_full_sync_loads_in_bulk_then_small_deltas_write_conditionally(copied_demo, moto_server, monkeypatch):
    """Through FeatureStore.sync on the demo (moto; the faults above run on both emulators): the
    bulk path (forced for its small views), the audit clean after each switch, the table before
    the last switch dropped by a later sync."""
    dynamodb = moto_server
    from featurestore import FeatureStore
    from jaffle_data import JaffleSize

    monkeypatch.setenv("FEATURESTORE_BULK_MIN_ROWS", "0")
    monkeypatch.setattr("featurestore.online.generations.RETIRE_AFTER_SECONDS", 0.0)
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": dynamodb, "FEATURESTORE_TABLE_PREFIX": "bulksync_"}
    project = copied_demo(JaffleSize(customers=60, stores=2, days=30), 21)
    store = FeatureStore(project, env=env)
    with store.connect() as warehouse:
        at = warehouse.fetch_all("select max(feature_ts) from main.customer_features")[0][0]
    for round_ in (1, 2):
        result = store.sync(["customer_features"], full=True)[0]
        assert (result.mode, result.path) == ("full", "bulk") and result.written == result.rows_read > 0
        assert set(result.phases) == {"read", "claim", "write", "merge"}
        assert store.audit("customer_features", sample=1000, now=at)["mismatches"] == []
        assert store.online.live_table_name("customer_features") == f"bulksync_customer_features.g{round_}"
    delta = store.sync(["customer_features"])[0]
    assert (delta.mode, delta.path) == ("incremental", "conditional")
    assert store.online.generations("customer_features", fresh=True).retired == ()
    assert table_status(store.online.client, "bulksync_customer_features.g2") == "ACTIVE"
    assert table_status(store.online.client, "bulksync_customer_features.g1") in ("DELETING", None)


def table_status(client, name: str) -> str | None:
    try:
        return client.describe_table(TableName=name)["Table"]["TableStatus"]
    except client.exceptions.ResourceNotFoundException:
        return None


def test_a_read_the_store_answers_in_parts_is_asked_again_at_once(dynamodb):
    """100 items of 300 KB: dynalite answers a BatchGetItem with about 1.4 MB and leaves the rest
    unprocessed. Asking again at once while answers make progress reads them all within a 12 s
    deadline (backing off after every partial answer took 20-24 s)."""
    big = OnlineTable("big", ("thing_id",), {"blob": "varchar"}, None)
    store = store_at(dynamodb, "blparts_")
    rows = [{"thing_id": i, "event_timestamp": T0, "created_timestamp": T0, "blob": f"{i}" + "x" * 300_000}
            for i in range(100)]
    with store.begin_load(big, "b") as load:
        load.write(rows)
        load.finish()
    reader = store_at(dynamodb, "blparts_", deadline_seconds=12)
    values = reader.read(big, [{"thing_id": i} for i in range(100)], ["blob"], now=T0)
    assert [v["blob"][:3].rstrip("x") for v in values] == [str(i) for i in range(100)]
