"""A serving process's reads of a view's table pointer (online/dynamodb.py: `generations`), on
moto's server: an expired pointer is read once however many requests want it at that moment,
and one past half its age is read again in the background (readers keep the cached one)."""

from __future__ import annotations

import threading
import time

from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore


class CountingStore(DynamoDBOnlineStore):
    """The real store, counting its pointer reads (each a GetItem of the state table)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state_reads = 0
        self.counting = threading.Lock()

    def get_state(self, key: str, deadline: float | None = None):
        with self.counting:
            self.state_reads += 1
        return super().get_state(key, deadline)


def test_an_expired_pointer_is_read_once_however_many_readers_want_it(moto_server):
    store = CountingStore(OnlineConfig(moto_server, "us-east-1", "ptrone_"))
    store.ping()  # the client made and connected before the readers start
    start = threading.Barrier(8)
    live: list[str] = []

    def read():
        start.wait()
        live.append(store.generations("things").live)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert live == ["ptrone_things"] * 8
    assert store.state_reads == 1  # one read; the other seven waited for it


def test_a_pointer_past_half_its_age_is_read_again_in_the_background(moto_server, monkeypatch):
    monkeypatch.setattr("featurestore.online.dynamodb.READ_CACHE_SECONDS", 60.0)
    store = CountingStore(OnlineConfig(moto_server, "us-east-1", "ptrbg_"))
    pointer = store.generations("things")
    assert store.state_reads == 1
    assert store.generations("things") is pointer and store.state_reads == 1  # fresh enough: cached
    store._pointers["things"] = (pointer, time.monotonic() - 31)  # as if read 31 s ago: past half of 60 s
    assert store.generations("things") is pointer  # still trusted: answered from the cache
    deadline = time.monotonic() + 30
    while store.state_reads < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.state_reads == 2
    while time.monotonic() - store._pointers["things"][1] > 30 and time.monotonic() < deadline:
        time.sleep(0.01)  # the refreshed pointer is stored once its read returns
    assert time.monotonic() - store._pointers["things"][1] < 30
    assert store.generations("things").live == "ptrbg_things" and store.state_reads == 2
