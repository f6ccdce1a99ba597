"""Online integrity, on moto and dynalite: newest wins by conditional writes (a writer paused past
any timeout cannot put an older value back), rows DynamoDB cannot hold are set aside, TTL is made
sure on every sync, faults on the wire are retried, and the sync state knows its source."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from typer.testing import CliRunner

from conftest import duckdb_path, project_env
from featurestore import FeatureStore
from featurestore.cli import app
from featurestore.online import OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import _TTL_UNSUPPORTED, DynamoDBOnlineStore
from http_fault_proxy import FaultyDynamoDB
from jaffle_data import JaffleSize

runner = CliRunner()
TABLE = OnlineTable("things", ("thing_id",), {"size": "bigint", "score": "double", "amount": "decimal(38,2)",
                                              "label": "varchar"}, 3600)
T0 = datetime(2025, 1, 1)


def store_at(url: str, prefix: str, **options) -> DynamoDBOnlineStore:
    return DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix), **options)


def row(thing_id, minute: int, **values):
    event = T0 + timedelta(minutes=minute)
    return {"thing_id": thing_id, "event_timestamp": event, "created_timestamp": event,
            "size": minute, "score": 0.5, "amount": Decimal("1.25"), "label": "ok", **values}


def sizes(store, keys, now=T0 + timedelta(minutes=30)):
    return [v["size"] if v else None for v in store.read(TABLE, [{"thing_id": k} for k in keys], ["size"], now=now)]


def test_values_dynamodb_cannot_hold_are_set_aside_and_the_rest_syncs(dynamodb):
    store = store_at(dynamodb, "bad_")
    bad = {
        "huge-double": dict(score=1e130), "tiny-double": dict(score=1e-131), "nan": dict(score=float("nan")),
        "inf": dict(score=float("inf")), "digits-39": dict(size=123456789012345678901234567890123456789),
        "decimal-39": dict(amount=Decimal("1234567890123456789012345678901234567.89")),
    }
    rows = [row(f"good-{i}", 1) for i in range(30)] + [row(name, 1, **values) for name, values in bad.items()]
    rows.append(row("k" * 2049, 1))
    report = store.write(TABLE, rows)
    assert report.written == 30
    by_name = {r.key.split("=", 1)[1][:12]: r for r in report.rejected}
    assert by_name["huge-double"].feature == "score" and "1e126" in by_name["huge-double"].reason
    assert by_name["tiny-double"].feature == "score" and "1e-130" in by_name["tiny-double"].reason
    assert by_name["nan"].feature == "score" and by_name["inf"].feature == "score"
    assert by_name["digits-39"].feature == "size" and "39 significant digits" in by_name["digits-39"].reason
    assert by_name["decimal-39"].feature == "amount" and "significant digits" in by_name["decimal-39"].reason
    assert by_name["kkkkkkkkkkkk"].feature == "entity key" and "2,048" in by_name["kkkkkkkkkkkk"].reason
    assert len(report.rejected) == len(bad) + 1
    assert sizes(store, [f"good-{i}" for i in range(30)]) == [1] * 30


def test_a_stale_pre_read_cannot_put_an_older_version_back(dynamodb, monkeypatch):
    """A writer that read the stored versions, then stalled while another wrote newer ones: its
    puts carry their own condition, so the older rows are refused by the store itself."""
    store = store_at(dynamodb, "stale_")
    store.write(TABLE, [row(i, 20) for i in range(50)])
    monkeypatch.setattr(store, "_stored_versions", lambda *args: {})  # what it saw before the newer write
    report = store.write(TABLE, [row(i, 10) for i in range(50)])
    assert report.written == 0 and report.skipped_stale == 50
    assert sizes(store, range(50)) == [20] * 50
    later_version = [row(i, 20, created_timestamp=T0 + timedelta(minutes=25), size=21) for i in range(5)]
    assert store.write(TABLE, later_version).written == 5  # same event, created later: a correction
    assert store.write(TABLE, [row(i, 20, created_timestamp=T0 + timedelta(minutes=25), size=99) for i in range(5)],
                       force=False).written == 0  # the same version is current: not rewritten ...
    assert store.write(TABLE, [row(i, 20, created_timestamp=T0 + timedelta(minutes=25), size=99) for i in range(5)],
                       force=True).written == 5  # ... unless forced (repair)


WRITER = """
import sys
from datetime import datetime, timedelta
from featurestore.online import OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
url, prefix, minute, keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
table = OnlineTable("things", ("thing_id",), {"size": "bigint"}, None)
store = DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix), workers=1)
event = datetime(2025, 1, 1) + timedelta(minutes=minute)
rows = [{"thing_id": i, "event_timestamp": event, "created_timestamp": event, "size": minute} for i in range(keys)]
report = store.write(table, rows, on_batch=lambda n: print("batch", flush=True))
print("done", report.written, report.skipped_stale, flush=True)
"""


def test_a_sync_paused_past_any_timeout_cannot_write_older_values(dynamodb):
    """Two writers of the same keys: the older one is SIGSTOPped after its first batch, the newer
    one runs to the end, then the older one resumes and finishes. Every key keeps the newest."""
    keys = 1000
    older = subprocess.Popen([sys.executable, "-c", WRITER, dynamodb, "pause_", "10", str(keys)],
                             stdout=subprocess.PIPE, text=True)
    assert older.stdout.readline().strip() == "batch"
    older.send_signal(signal.SIGSTOP)
    try:
        newer = subprocess.run([sys.executable, "-c", WRITER, dynamodb, "pause_", "20", str(keys)],
                               capture_output=True, text=True, timeout=300)
        assert newer.returncode == 0, newer.stderr
    finally:
        older.send_signal(signal.SIGCONT)
    out, _ = older.communicate(timeout=300)
    assert older.returncode == 0
    written, stale = map(int, out.strip().splitlines()[-1].split()[1:])
    assert stale >= keys - 100 - written or written <= 100
    table = OnlineTable("things", ("thing_id",), {"size": "bigint"}, None)
    got = store_at(dynamodb, "pause_").read(table, [{"thing_id": i} for i in range(keys)], ["size"])
    assert [g["size"] for g in got] == [20] * keys


def test_ttl_is_made_sure_on_every_sync(dynamodb, dynamodb_has_ttl):
    store = store_at(dynamodb, "ttl_")
    untimed = OnlineTable("things", TABLE.join_keys, TABLE.features, None)
    store.write(untimed, [row(1, 1)])  # the table exists, without TTL
    assert store.client.describe_time_to_live(TableName="ttl_things")["TimeToLiveDescription"]["TimeToLiveStatus"] \
        == "DISABLED"
    _TTL_UNSUPPORTED.discard(dynamodb)  # warned at most once per process: start afresh
    warnings = []
    collect = logging.Handler(logging.WARNING)
    collect.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger("featurestore")
    logger.addHandler(collect)
    try:
        store_at(dynamodb, "ttl_").write(TABLE, [row(2, 1)])  # a later sync of the view with a TTL
        store_at(dynamodb, "ttl_").write(TABLE, [row(3, 1)])
    finally:
        logger.removeHandler(collect)
    status = store.client.describe_time_to_live(TableName="ttl_things")["TimeToLiveDescription"]
    if dynamodb_has_ttl:
        assert status["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and status["AttributeName"] == "_expires_at"
        assert not any("has no TTL API" in message for message in warnings)
    else:  # dynalite: no UpdateTimeToLive; warned once, TTL applied at read time
        assert sum("has no TTL API" in message for message in warnings) == 1
        assert store.read(TABLE, [{"thing_id": 2}], ["size"], now=T0 + timedelta(hours=3)) == [None]


def test_two_first_syncs_of_a_ttl_view_at_once_both_succeed(dynamodb):
    errors = []

    def first_sync(offset):
        try:
            store_at(dynamodb, "ttl2_").write(TABLE, [row(offset + i, 1) for i in range(20)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_sync, args=(offset,)) for offset in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sizes(store_at(dynamodb, "ttl2_"), [0, 119]) == [1, 1]


def test_throttling_unprocessed_keys_and_dropped_connections_are_retried(dynamodb):
    proxy = FaultyDynamoDB(dynamodb, throttle_every=7, drop_every=11, unprocessed=True)
    try:
        store = store_at(proxy.url, "faults_", workers=4, deadline_seconds=60)
        report = store.write(TABLE, [row(i, 5) for i in range(300)])
        assert report.written == 300
        assert sizes(store, range(300)) == [5] * 300
        assert proxy.counts["throttled"] > 0 and proxy.counts["dropped"] > 0 and proxy.counts["unprocessed_keys"] > 0
    finally:
        proxy.close()


@pytest.mark.parametrize("to_thread", [False, True], ids=["to the process", "taken by another thread"])
@pytest.mark.parametrize("bulk", [False, True], ids=["conditional", "bulk"])
def test_ctrl_c_stops_a_write_after_the_requests_in_flight(dynamodb, bulk, to_thread):
    """Ctrl-C (SIGINT: a KeyboardInterrupt in the main thread, waiting for the workers) stops the writes
    queued behind and those in flight after their current request. The pool's exit used to wait
    for every queued group: the whole view was written first (12-23 s in a trial).
    The kernel may hand a process's signal to any of its threads (it did on a loaded CI machine):
    Python runs the handler in the main thread, but only once that thread wakes, so its wait
    must wake by itself. It waited for the first group to finish: 807 puts after the signal."""
    proxy = FaultyDynamoDB(dynamodb, delay=0.05)  # a slow store: 1,600 puts take 10 s with 8 workers
    operation = "BatchWriteItem" if bulk else "PutItem"

    def sent() -> int:
        return sum(1 for op, _ in list(proxy.seen) if op == operation)

    def interrupt_once_writing():
        while sent() < (4 if bulk else 40):
            time.sleep(0.005)
        at_signal.append(sent())
        if to_thread:  # as the kernel may do with a process's signal: this thread takes it
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, the way Ctrl-C sends it

    try:
        store = store_at(proxy.url, f"ctrlc{int(bulk)}_")
        store.write(TABLE, [row(0, 1)])  # the table made
        rows = [row(i, 2) for i in range(1600 * (8 if bulk else 1))]
        at_signal: list[int] = []
        threading.Thread(target=interrupt_once_writing, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            if bulk:
                with store.begin_load(TABLE, "build-1") as load:
                    load.write(rows)
            else:
                store.write(TABLE, rows)
        assert at_signal, "interrupted before any write was sent"
        assert sent() <= at_signal[0] + 3 * store.workers, (at_signal, sent())  # the 8 in flight, and a margin
    finally:
        proxy.close()


# -- the sync state knows its source -------------------------------------------------------------


def demo_copy(copied_demo, dynamodb: str, seed: int = 21, prefix: str = "shared_"):
    """A copy of a small demo built once per run (per seed), syncing to `dynamodb` under `prefix`."""
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": dynamodb, "FEATURESTORE_TABLE_PREFIX": prefix}
    return copied_demo(JaffleSize(customers=60, stores=2, days=30), seed), env


def audit_now(project, env, view="customer_features"):
    store = FeatureStore(project, env=env)
    with store.connect() as warehouse:
        at = warehouse.fetch_all(f"select max(feature_ts) from main.{view}")[0][0]
    return store.audit(view, sample=1000, now=at)


def test_two_projects_sharing_an_endpoint_and_prefix_each_sync_what_they_lack(copied_demo, dynamodb):
    first, env_first = demo_copy(copied_demo, dynamodb, seed=21)
    second, env_second = demo_copy(copied_demo, dynamodb, seed=22)  # other data, same tables
    FeatureStore(first, env=env_first).sync(["customer_features"])
    result = FeatureStore(second, env=env_second).sync(["customer_features"])[0]
    assert result.mode == "full" and result.reason == "first sync from this source" and result.written > 0
    assert audit_now(first, env_first)["mismatches"] == []
    assert audit_now(second, env_second)["mismatches"] == []
    # each keeps its own watermark: an incremental sync of either reads nothing new
    assert FeatureStore(first, env=env_first).sync(["customer_features"])[0].mode == "incremental"


def test_a_rebuilt_warehouse_is_synced_in_full_and_watermarks_never_go_back(copied_demo, dynamodb):
    project, env = demo_copy(copied_demo, dynamodb, prefix="rebuilt_")
    store = FeatureStore(project, env=env)
    first = store.sync(["customer_features"])[0]
    duckdb_path(project).unlink()
    project_env(project, **env).run("build", "--quiet")  # the warehouse rebuilt from scratch
    again = FeatureStore(project, env=env).sync(["customer_features"])[0]
    assert again.mode == "full" and "rebuilt" in again.reason
    assert audit_now(project, env)["mismatches"] == []
    # a slower sync finishing later with an older watermark cannot move it back
    syncer = FeatureStore(project, env=env).syncer()
    key = syncer.state_key(syncer.registry.view("customer_features"))
    state = syncer.online.get_state(key)
    older = dict(state, watermark="2000-01-01T00:00:00.000000")
    assert syncer.online.put_state(key, older) is False
    assert syncer.online.get_state(key)["watermark"] == state["watermark"] == first.watermark_after


def test_a_fixed_model_rebuilt_with_the_same_times_is_synced_value_for_value(copied_demo, dynamodb):
    """A model fixed in place keeps its rows' event and created times and changes their values;
    its rebuilt table is the truth, so the sync after it rewrites items of the same version too
    (they were skipped as current: online kept the old values while offline had the new)."""
    project, env = demo_copy(copied_demo, dynamodb, prefix="fixed_")
    FeatureStore(project, env=env).sync(["customer_features"])
    model = project / "models" / "features" / "customer_features.sql"
    model.write_text(model.read_text().replace("cast(lifetime_value as", "cast(lifetime_value * 2 as"))
    project_env(project, **env).run("build", "--quiet", "--select", "customer_features")
    again = FeatureStore(project, env=env).sync(["customer_features"])[0]
    assert again.mode == "full" and "rebuilt" in again.reason and again.path == "conditional"
    assert again.written > 0
    audit = audit_now(project, env)
    assert audit["mismatches"] == [], audit["mismatches"][:3]
    assert FeatureStore(project, env=env).sync(["customer_features"])[0].written == 0  # then incremental again


def test_status_reports_what_is_pending_and_force_repairs_a_changed_item(copied_demo, dynamodb):
    project, env = demo_copy(copied_demo, dynamodb, prefix="status_")
    store = FeatureStore(project, env=env)
    store.sync(["customer_features"])
    empty = store.sync(["customer_features"])[0]
    status = {r["view"]: r for r in store.sync_status(["customer_features"])}["customer_features"]
    assert empty.rows_read == 0 and status["pending_rows"] == 0 and status["lag_seconds"] == 0.0
    assert status["rows_last_pushed"] > 0  # not reset by the empty sync
    # change an item behind the store's back: --full does not see it, --full --force repairs it
    with store.connect() as warehouse:
        customer = warehouse.fetch_all("select customer_id from main.customer_features where valid_to is null limit 1")[0][0]
    name = store.online_config.table_name("customer_features")
    store.online.client.update_item(TableName=name, Key={"entity_key": {"S": f"customer_id={customer}"}},
                                    UpdateExpression="SET total_orders_30d = :v",
                                    ExpressionAttributeValues={":v": {"N": "999"}})
    assert len(audit_now(project, env)["mismatches"]) == 1
    assert store.sync(["customer_features"], full=True)[0].written == 0
    assert len(audit_now(project, env)["mismatches"]) == 1
    result = runner.invoke(app, ["sync", "customer_features", "--full", "--force", "-p", str(project)], env=env)
    assert result.exit_code == 0, result.output
    assert audit_now(project, env)["mismatches"] == []


def test_sync_sets_aside_rows_it_cannot_store_and_lists_them(copied_demo, dynamodb):
    project, env = demo_copy(copied_demo, dynamodb, prefix="aside_")
    # plant values DynamoDB cannot hold on two customers' current rows
    with duckdb.connect(str(duckdb_path(project))) as con:
        customers = [r[0] for r in con.execute("select customer_id from main.customer_features where valid_to is null "
                                               "order by customer_id limit 2").fetchall()]
        con.execute("update main.customer_features set avg_order_value_30d = 1e130 where valid_to is null "
                    "and customer_id = ?", [customers[0]])
        con.execute("update main.customer_features set avg_order_value_30d = 'nan'::double where valid_to is null "
                    "and customer_id = ?", [customers[1]])
    result = runner.invoke(app, ["sync", "customer_features", "-p", str(project)], env=env)
    text = " ".join((result.stdout + result.stderr).split())
    assert result.exit_code == 0, text
    assert "2 set aside" in text
    for customer in customers:
        assert f"customer_id={customer} avg_order_value_30d" in text
    status = runner.invoke(app, ["sync", "status", "customer_features", "-p", str(project), "--json"], env=env)
    entry = json.loads(status.stdout)[0]
    assert entry["rejected_last_sync"] == 2 and {e["feature"] for e in entry["rejected_examples"]} == {"avg_order_value_30d"}
    assert entry["pending_rows"] == 0  # the watermark moved past the rows set aside


def test_features_named_like_the_items_own_attributes_are_refused(dynamodb):
    from featurestore.online import OnlineStoreError

    for name in ("entity_key", "_event_timestamp", "_expires_at"):
        clash = OnlineTable("clash", ("thing_id",), {name: "varchar"}, None)
        try:
            store_at(dynamodb, "clash_").write(clash, [row(1, 1)])
            raise AssertionError(f"{name} was accepted")
        except OnlineStoreError as exc:
            assert name in str(exc) and "rename" in str(exc)
