"""The online store down, on a moto server of this module's own that the tests pause (SIGSTOP),
stop, or put behind TLS: FEATURESTORE_ONLINE_TIMEOUT bounds a call whatever the socket timeouts,
concurrent readers of an expired pointer share its failure instead of retrying in turn, and
faults that waiting cannot mend (nothing listening, a certificate that fails verification) are
given up on early, with a message saying which."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import os
import signal
import ssl
import threading
import time
from contextlib import contextmanager

import pytest

from featurestore.online import OnlineStoreError, OnlineTable
from featurestore.errors import FeatureStoreError
from featurestore.online.config import OnlineConfig, load_online_config
from featurestore.online.dynamodb import DynamoDBOnlineStore
from featurestore.online.transport import UNREACHABLE_GRACE
from featurestore.online.local import RECORD, LocalDynamoDB, free_port
from http_fault_proxy import FaultyDynamoDB

TABLE = OnlineTable("things", ("thing_id",), {"size": "bigint"}, None)
T0 = dt.datetime(2025, 1, 1)
SLACK = 3.0  # seconds a loaded machine may add past a deadline (the bug this guards against gave 20 and more)


@pytest.fixture(scope="module")
def pausable(tmp_path_factory):
    """A moto server for this module alone (pausing the session's would stall other tests)."""
    server = LocalDynamoDB(tmp_path_factory.mktemp("outage"), free_port())
    url = server.start()
    yield url, server.record()["pid"]
    os.kill(server.record()["pid"], signal.SIGCONT)
    server.stop()


@contextmanager
def paused(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def synced_store(url: str, prefix: str, timeout: float, botocore_reads: bool = False) -> DynamoDBOnlineStore:
    """A store with one item written and read (client made, pointer cached, connections kept)."""
    store = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix, timeout_seconds=timeout))
    store.write(TABLE, [{"thing_id": 1, "size": 7, "event_timestamp": T0, "created_timestamp": T0}])
    if botocore_reads:
        store.__dict__["_wire"] = None  # reads through botocore, as behind a proxy
    assert store.read(TABLE, [{"thing_id": 1}], ["size"])[0]["size"] == 7
    return store


def held(store: DynamoDBOnlineStore, view: str) -> None:
    """Return once a reader holds the view's pointer (it reads it); fail if none does in 30 s."""
    waited_until = time.monotonic() + 30
    while not store._pointer_lock(view).locked():
        assert time.monotonic() < waited_until, f"no reader took the pointer of {view}"
        time.sleep(0.001)


def timed_failure(call) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(OnlineStoreError) as failure:
        call()
    return time.monotonic() - started, str(failure.value)


@pytest.mark.parametrize("botocore_reads", [False, True], ids=["wire", "botocore"])
def test_the_timeout_bounds_a_read_of_a_paused_store(pausable, botocore_reads):
    """The sockets' own read timeout is 20 s: a 2 s timeout must not wait for it."""
    url, pid = pausable
    store = synced_store(url, f"bound{int(botocore_reads)}_", timeout=2.0, botocore_reads=botocore_reads)
    with paused(pid):
        elapsed, message = timed_failure(lambda: store.read(TABLE, [{"thing_id": 1}], ["size"]))
    assert elapsed < 2.0 + SLACK, (elapsed, message)
    assert "unreachable or failing" in message and "batch_get_item" in message
    said = float(message.split("still failed after ")[1].split(" s")[0])
    assert 1.5 <= said <= elapsed + 0.1  # the time it took, not the setting


def test_readers_of_an_expired_pointer_share_its_failure(pausable):
    """Six readers find the pointer expired while the store is paused: one reads it, the others
    wait for it and fail with it, all within the timeout (not one after another: 2.8, 7, 11.7 ... s)."""
    url, pid = pausable
    store = synced_store(url, "shared_", timeout=2.0)
    store._pointers.clear()  # expired
    start, results = threading.Barrier(6), []

    def read():
        start.wait()
        results.append(timed_failure(lambda: store.read(TABLE, [{"thing_id": 1}], ["size"])))

    with paused(pid):
        threads = [threading.Thread(target=read) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 6
    assert max(elapsed for elapsed, _ in results) < 2.0 + SLACK, results
    # the pointer's read failed, or was still under way at the waiter's (same) deadline
    assert all("get_item still failed" in message or "still being read" in message for _, message in results), results
    assert store.read(TABLE, [{"thing_id": 1}], ["size"])[0]["size"] == 7  # resumed: read again, served


def test_a_failed_pointer_read_is_shared_with_the_readers_that_waited_for_it(pausable):
    """The reader's deadline is 1 s, the waiters' 20 s: they fail with its failure when it fails,
    not 20 s later after reading again each in turn."""
    url, pid = pausable
    store = synced_store(url, "sharedfail_", timeout=20.0)
    store._pointers.clear()
    results = []

    def wait_for_it():
        results.append(timed_failure(lambda: store.generations("things", deadline=time.monotonic() + 20.0)))

    with paused(pid):
        first = threading.Thread(target=lambda: results.append(
            timed_failure(lambda: store.generations("things", deadline=time.monotonic() + 1.0))))
        first.start()
        held(store, "things")
        waiters = [threading.Thread(target=wait_for_it) for _ in range(5)]
        for thread in [*waiters]:
            thread.start()
        for thread in [first, *waiters]:
            thread.join()
    assert len(results) == 6
    assert max(elapsed for elapsed, _ in results) < 1.0 + SLACK, results
    assert all("get_item still failed" in message for _, message in results), results


def test_a_waiter_does_not_wait_past_its_own_deadline(pausable):
    """A writer's fresh pointer read (the store's whole timeout) holds the pointer; a request with
    a shorter deadline fails at its own."""
    url, pid = pausable
    store = synced_store(url, "ownline_", timeout=30.0)
    holder = threading.Thread(target=store.generations, args=("things", True))  # answered once resumed
    with paused(pid):
        holder.start()
        held(store, "things")
        elapsed, message = timed_failure(lambda: store.generations("things", fresh=True,
                                                                    deadline=time.monotonic() + 1.0))
        assert elapsed < 1.0 + SLACK and "still being read" in message, (elapsed, message)
    holder.join()


def test_a_read_not_sent_is_no_failure_to_share(pausable):
    """A request whose deadline passed before its pointer read was sent (it waited for a read
    thread) learnt nothing of the store: readers waiting for the pointer must not fail with it."""
    url, _ = pausable
    store = synced_store(url, "notsent_", timeout=5.0)
    elapsed, message = timed_failure(lambda: store.generations("things", fresh=True, deadline=time.monotonic() - 1))
    assert "was not sent" in message and "unreachable" not in message, message
    assert "things" not in store._pointer_failures
    assert store.generations("things", fresh=True).live  # the store answers, and the next reader is told so


def test_a_write_through_botocore_is_sent_once_per_attempt(pausable):
    """botocore's own retries are off: its `max_attempts: 1` meant one retry, so each timed-out
    write took twice the time left (a 2 s timeout failed after 4 s)."""
    url, pid = pausable
    store = synced_store(url, "once_", timeout=2.0)
    with paused(pid):
        elapsed, message = timed_failure(lambda: store.put_state("x", {"watermark": "1"}))
    assert elapsed < 2.0 + SLACK, (elapsed, message)
    assert float(message.split("still failed after ")[1].split(" s")[0]) < 2.5, message


def test_a_bulk_load_into_a_paused_store_fails_within_its_timeout(pausable):
    """The first batch that fails stops the load: the batches queued behind it are not sent each
    in turn to time out (2,000 rows at a 2 s timeout took 32 s), and giving the lease up is tried
    for PROBE_SECONDS at most (capped by the timeout). Readers keep the live table."""
    url, pid = pausable
    store = synced_store(url, "bulkpause_", timeout=2.0)
    live = store.generations("things", fresh=True).live
    rows = [{"thing_id": i, "size": i, "event_timestamp": T0, "created_timestamp": T0} for i in range(2000)]
    load = store.begin_load(TABLE, "build-1")

    def bulk_load():
        with load:
            load.write(rows)
            load.finish()

    with paused(pid):
        elapsed, message = timed_failure(bulk_load)
    assert elapsed < 2.0 + 2.0 + SLACK, (elapsed, message)
    assert "batch_write_item still failed" in message, message
    assert store.generations("things", fresh=True).live == live
    assert store.read(TABLE, [{"thing_id": 1}], ["size"])[0]["size"] == 7


def test_a_store_follows_the_projects_local_dynamodb_to_its_new_port(tmp_path, monkeypatch):
    """A store of a project's `auto` endpoint made before `online up` finds the server once it
    runs; after `online down` and `online up` on another port, its next request goes to the new
    one at once (it kept the old URL until its process restarted, and failed every request)."""
    monkeypatch.delenv("FEATURESTORE_DYNAMODB_ENDPOINT", raising=False)
    state_dir = tmp_path / ".featurestore"
    store = DynamoDBOnlineStore(load_online_config(tmp_path, env={"FEATURESTORE_ONLINE_TIMEOUT": "20"}))
    with pytest.raises(FeatureStoreError, match="featurestore online up"):
        store.read(TABLE, [{"thing_id": 1}], ["size"])
    first = LocalDynamoDB(state_dir, free_port())
    first.start()
    try:
        store.write(TABLE, [{"thing_id": 1, "size": 7, "event_timestamp": T0, "created_timestamp": T0}])
        assert store.read(TABLE, [{"thing_id": 1}], ["size"])[0]["size"] == 7
    finally:
        first.stop()
    second = LocalDynamoDB(state_dir, free_port())
    second.start()
    try:
        started = time.monotonic()
        assert store.read(TABLE, [{"thing_id": 1}], ["size"]) == [None]  # a new server: its tables are new
        store.write(TABLE, [{"thing_id": 1, "size": 8, "event_timestamp": T0, "created_timestamp": T0}])
        assert store.read(TABLE, [{"thing_id": 1}], ["size"])[0]["size"] == 8
        assert time.monotonic() - started < UNREACHABLE_GRACE, "it waited for the old port instead of moving"
        assert store.config.endpoint_url == second.url
        assert store.moves == 1  # a sync begun before the move refuses to record its watermark (sync.py)
    finally:
        second.stop()


def test_an_answer_of_the_old_server_in_flight_during_a_move_is_not_cached(tmp_path, pausable):
    """A pointer read from the old server while another request moved the store to the new one
    is used by its reader, but not kept for the next: it was cached for READ_CACHE_SECONDS, so
    readers went to a table of the old server's (here a generation the new one never had)."""
    old_url = pausable[0]
    view = OnlineTable("moving", ("thing_id",), {"size": "bigint"}, None)
    direct = DynamoDBOnlineStore(OnlineConfig(old_url, "us-east-1", "moving_", timeout_seconds=20.0))
    direct.update_generations(view.view, lambda current: dataclasses.replace(current, live="moving_moving_g7"))
    new = LocalDynamoDB(tmp_path / "new", free_port())
    new.start()
    answer = threading.Event()
    proxy = FaultyDynamoDB(old_url, hold=answer)  # the old server, answering when the test lets it
    project = tmp_path / ".featurestore"
    project.mkdir()
    try:
        store = DynamoDBOnlineStore(OnlineConfig(proxy.url, "us-east-1", "moving_", timeout_seconds=20.0,
                                                 follows=(str(project), proxy.url)))
        read: list = []
        reader = threading.Thread(target=lambda: read.append(store.generations(view.view, fresh=True)))
        reader.start()
        while not proxy.seen:  # the read is in flight
            time.sleep(0.005)
        (project / RECORD).write_text((tmp_path / "new" / RECORD).read_text())  # `online up` on another port
        proxy.close()  # the old port refuses new connections; the read in flight is still answered
        store.put_state("x", {"watermark": "1"})  # refused: the store moves to the new server
        assert store.moves == 1 and store.config.endpoint_url == new.url
        answer.set()  # the old server answers the read in flight now, after the move
        reader.join()
        assert read[0].live == "moving_moving_g7"  # the old server's answer, to the request made there
        assert store.generations(view.view).live == "moving_moving"  # the new server's: no pointer yet
    finally:
        answer.set()
        new.stop()


@pytest.mark.parametrize("call", ["wire read", "botocore read", "write", "followed write"])
def test_a_refused_endpoint_is_given_up_after_the_grace(call, tmp_path):
    """Within the grace and a loaded machine's slack, not the grace plus a back-off's sleep past it;
    botocore's path (reads behind a proxy, every write) as the wire's. "followed": a local URL
    that follows the project's record (its refusal asks whether the server moved: that check
    once took the lock a table's creation holds, and the write hung)."""
    url = f"http://127.0.0.1:{free_port()}"
    follows = (str(tmp_path / ".featurestore"), url) if call == "followed write" else None
    store = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", "refused_", timeout_seconds=60.0, follows=follows))
    if call == "botocore read":
        store.__dict__["_wire"] = None
    elapsed, message = timed_failure(
        (lambda: store.put_state("x", {"watermark": "1"})) if "write" in call
        else lambda: store.read(TABLE, [{"thing_id": 1}], ["size"]))
    assert UNREACHABLE_GRACE <= elapsed < UNREACHABLE_GRACE + SLACK, (elapsed, message)
    assert "Could not connect" in message and "featurestore online up" in message


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """An HTTPS server whose certificate no CA bundle trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("bundle", [None, "/nonexistent/ca-bundle.pem"], ids=["untrusted", "missing-bundle"])
def test_tls_that_cannot_verify_is_not_retried(self_signed, bundle, monkeypatch):
    if bundle:
        monkeypatch.setenv("AWS_CA_BUNDLE", bundle)
    monkeypatch.setattr("boto3.DEFAULT_SESSION", None)  # the environment read afresh
    store = DynamoDBOnlineStore(OnlineConfig(self_signed, "us-east-1", "tls_", timeout_seconds=60.0))
    elapsed, message = timed_failure(lambda: store.read(TABLE, [{"thing_id": 1}], ["size"]))
    assert elapsed < SLACK, (elapsed, message)
    assert "was not retried" in message and "AWS_CA_BUNDLE" in message
    assert ("CERTIFICATE_VERIFY_FAILED" if bundle is None else "No such file") in message
