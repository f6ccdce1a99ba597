"""The online store against real DynamoDB HTTP endpoints: moto's server and dynalite (a stricter
emulator) in turn, or TEST_DYNAMODB_ENDPOINT — with faults injected on the wire."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import project_env
from fault_proxy import FaultProxy
from http_fault_proxy import FaultyDynamoDB
from featurestore import FeatureStore
from featurestore.cli import app
from featurestore.errors import FeatureStoreError
from featurestore.online import OnlineStoreError, OnlineTable
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
from featurestore.online_response import plain_value
from jaffle_data import JaffleSize, write_raw_files

runner = CliRunner()
UTC = timezone.utc


def online_store(url: str, prefix: str, **options) -> DynamoDBOnlineStore:
    return DynamoDBOnlineStore(OnlineConfig(url, "us-east-1", prefix), **options)


def largest_requests(proxy: FaultyDynamoDB) -> dict[str, int]:
    """The most keys (BatchGetItem) or items (BatchWriteItem) one request carried on the wire."""
    sizes: dict[str, int] = {}
    for operation, size in proxy.seen:
        sizes[operation] = max(size, sizes.get(operation, 0))
    return sizes


# -- the item codec, end to end -----------------------------------------------------------------

TYPED = OnlineTable("typed", ("user_id", "region"), {
    "n_int": "bigint", "n_float": "double", "n_decimal": "decimal(18,2)", "s": "varchar", "flag": "boolean",
    "at": "timestamp", "day": "date", "tags": "varchar[]", "attrs": "struct", "nothing": "integer"}, 3600)


UNTIMED = OnlineTable("untimed", TYPED.join_keys, TYPED.features, None)


def typed_row(user_id: int, event: datetime, **overrides):
    row = {"user_id": user_id, "region": "eu|west=1", "event_timestamp": event, "created_timestamp": event,
           "n_int": 2 ** 53 + 1, "n_float": 0.1, "n_decimal": Decimal("12.30"), "s": "héllo", "flag": True,
           "at": datetime(2024, 5, 1, 12, 30, 15, 123456), "day": date(2024, 5, 1), "tags": ["a", "b"],
           "attrs": {"k": 1, "v": "x"}, "nothing": None}
    row.update(overrides)
    return row


def test_every_type_round_trips_with_composite_keys(dynamodb, dynamodb_has_ttl):
    store = online_store(dynamodb, "rt_")
    now = datetime(2025, 1, 1, tzinfo=UTC)
    store.write(TYPED, [typed_row(1, now - timedelta(minutes=5)), typed_row(2, now - timedelta(hours=2))])
    got = store.read(TYPED, [{"user_id": 1, "region": "eu|west=1"}, {"user_id": 2, "region": "eu|west=1"},
                             {"user_id": 3, "region": "eu|west=1"}, {"user_id": None, "region": "x"}],
                     list(TYPED.features), now=now)
    first = got[0]
    assert first["n_int"] == 2 ** 53 + 1 and type(first["n_int"]) is int
    assert first["n_float"] == 0.1 and type(first["n_float"]) is float
    assert first["n_decimal"] == Decimal("12.30")
    assert (first["s"], first["flag"], first["nothing"]) == ("héllo", True, None)
    assert first["at"] == datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert first["day"] == date(2024, 5, 1)
    assert first["tags"] == ["a", "b"] and first["attrs"] == {"k": 1, "v": "x"}
    assert got[1] is None  # two hours old, TTL one hour: None although DynamoDB still has it
    assert got[2] is None and got[3] is None  # missing key, NULL key
    # readable items: plain attributes, readable key, TTL attribute
    item = store.client.get_item(TableName="rt_typed", Key={"entity_key": {"S": "user_id=1|region=eu%7Cwest%3D1"}})["Item"]
    assert item["s"] == {"S": "héllo"} and item["n_int"] == {"N": str(2 ** 53 + 1)} and "_expires_at" in item
    ttl = store.client.describe_time_to_live(TableName="rt_typed")["TimeToLiveDescription"]
    if dynamodb_has_ttl:
        assert ttl["AttributeName"] == "_expires_at" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    else:  # dynalite: TTL cannot be enabled; the read above applied it (got[1] is None)
        assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_dynamodb_limits_are_enforced_here(dynamodb):
    proxy = FaultyDynamoDB(dynamodb)  # no faults: it records what crosses the wire
    try:
        store = online_store(proxy.url, "lim_", workers=4)
        rows = [typed_row(i, datetime(2025, 1, 1)) for i in range(1000)]
        report = store.write(TYPED, rows)
        assert report.written == 1000 and report.rejected == []
        assert largest_requests(proxy)["BatchGetItem"] == 100  # the versions read before writing
        proxy.seen.clear()
        got = store.read(TYPED, [{"user_id": i, "region": "eu|west=1"} for i in range(1000)], ["n_int"],
                         now=datetime(2025, 1, 1, 0, 30, tzinfo=UTC))
        assert len(got) == 1000 and all(g and g["n_int"] == 2 ** 53 + 1 for g in got)
        assert largest_requests(proxy)["BatchGetItem"] == 100
        with pytest.raises(FeatureStoreError, match="3-255 characters"):
            online_store(dynamodb, "").config.table_name("ab")  # moto would accept it; DynamoDB does not
        report = store.write(TYPED, [typed_row(5000, datetime(2025, 1, 1), s="x" * 500_000)])
        assert report.written == 0 and [(r.feature, "400 KB" in r.reason) for r in report.rejected] == [("item", True)]
    finally:
        proxy.close()


def test_an_older_event_never_replaces_a_newer_one(dynamodb):
    store = online_store(dynamodb, "ord_")
    new, old = datetime(2025, 3, 1), datetime(2025, 2, 1)
    store.write(TYPED, [typed_row(1, new, n_int=2)])
    report = store.write(TYPED, [typed_row(1, old, n_int=1)])
    assert report.skipped_stale == 1 and report.written == 0
    later_version = typed_row(1, new, n_int=3, created_timestamp=new + timedelta(hours=1))
    assert store.write(TYPED, [later_version]).written == 1  # same event, created later: a correction
    got = store.read(TYPED, [{"user_id": 1, "region": "eu|west=1"}], ["n_int"], now=new)[0]
    assert got["n_int"] == 3


def test_two_concurrent_syncs_with_interleaved_versions_keep_the_newest(dynamodb):
    rng = random.Random(5)
    base = datetime(2025, 1, 1)
    versions = {key: sorted(rng.sample(range(1, 500), 6)) for key in range(300)}
    # each sync gets every other version of each key, shuffled: they interleave
    syncs = [[], []]
    for key, minutes in versions.items():
        for index, minute in enumerate(minutes):
            syncs[index % 2].append(typed_row(key, base + timedelta(minutes=minute), n_int=minute))
    for rows in syncs:
        rng.shuffle(rows)
    stores = [online_store(dynamodb, "conc_", workers=4) for _ in syncs]
    errors = []

    def run(store, rows):
        for start in range(0, len(rows), 100):  # several writes each, so the leases alternate
            try:
                store.write(UNTIMED, rows[start:start + 100])
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(stores, syncs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    got = stores[0].read(UNTIMED, [{"user_id": key, "region": "eu|west=1"} for key in versions], ["n_int"],
                         now=base + timedelta(minutes=500))
    assert [g["n_int"] for g in got] == [max(minutes) for minutes in versions.values()]


# -- sync from a real dbt project ----------------------------------------------------------------


@pytest.fixture(scope="module")
def online_project(copied_demo, dynamodb):
    """A copy of the demo on a small dataset, built once for both endpoints, with its own table prefix."""
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": dynamodb, "FEATURESTORE_TABLE_PREFIX": "sync_"}
    return copied_demo(JaffleSize(customers=400, stores=2, days=50), seed=11), env


def current_rows(store: FeatureStore, view: str) -> dict:
    registry = store.registry
    keys = registry.join_keys(registry.view(view))
    with store.connect() as warehouse:
        table = warehouse.fetch_arrow(f"select * from main.{view} where valid_to is null")
    return {tuple(row[k] for k in keys): row for row in table.to_pylist()}


def test_sync_then_incremental_sync_after_new_dbt_data(online_project, monkeypatch):
    from featurestore import sync as sync_module

    monkeypatch.setattr(sync_module, "ROWS_PER_WRITE", 97)  # several slices per view
    project_dir, env = online_project
    store = FeatureStore(project_dir, env=env)
    first = {r.view: r for r in store.sync()}
    assert first["customer_features"].mode == "full"
    assert first["customer_features"].written == first["customer_features"].rows_read > 97
    again = {r.view: r for r in store.sync()}
    assert all(r.mode == "incremental" and r.rows_read == 0 for r in again.values())
    # ten more days of orders arrive; dbt builds incrementally; only new rows are pushed
    write_raw_files(project_dir / "data" / "raw", JaffleSize(customers=400, stores=2, days=60), seed=11)
    project_env(project_dir, **env).run("build", "--quiet")
    after = {r.view: r for r in store.sync()}
    rows = current_rows(store, "customer_features")
    assert after["customer_features"].mode == "incremental"
    assert 0 < after["customer_features"].rows_read <= len(rows)
    assert after["customer_features"].watermark_after > first["customer_features"].watermark_after
    status = {row["view"]: row for row in store.sync_status()}
    assert status["customer_features"]["lag_seconds"] == 0.0
    # the store loses the view's table (its sync state kept): the next sync is full, not an empty increment
    store.online.client.delete_table(TableName=store.online.live_table_name("customer_features"))
    store.online.client.get_waiter("table_not_exists").wait(TableName=store.online.live_table_name("customer_features"))
    assert store.online.missing_tables(["customer_features", "store_features"]) == ["customer_features"]
    restored = {r.view: r for r in store.sync(["customer_features"])}["customer_features"]
    assert (restored.mode, restored.reason) == ("full", "the view's online table is missing (the store lost it since "
                                                        "the last sync)")
    assert restored.written == len(rows) and store.online.missing_tables(["customer_features"]) == []


def test_training_and_serving_agree(online_project):
    project_dir, env = online_project
    store = FeatureStore(project_dir, env=env)
    store.sync()
    rows = current_rows(store, "customer_features")
    sync_time = max(row["feature_ts"] for row in rows.values())
    keys = sorted(rows)[:25]
    entity_rows = [{"customer_id": key[0], "store_id": None} for key in keys]
    online = store.get_online_features(feature_service="churn_model", entity_rows=entity_rows, now=sync_time).to_dict()
    import pandas as pd

    frame = pd.DataFrame({"customer_id": [key[0] for key in keys], "event_timestamp": [sync_time] * len(keys)})
    offline = store.get_historical_features(frame, [f"customer_features:{f}" for f in (
        "total_orders_30d", "avg_order_value_30d", "days_since_last_order", "customer_segment", "lifetime_value")]).to_arrow()
    for feature in ("total_orders_30d", "avg_order_value_30d", "days_since_last_order", "customer_segment", "lifetime_value"):
        # exact values on both sides, as to_dict gives them (a decimal as the nearest float, like the server)
        assert online[feature] == [plain_value(v) for v in offline.column(feature).to_pylist()], feature
    assert any(v is not None for v in online["total_orders_30d"])


def test_endpoint_goes_away_mid_sync_and_a_rerun_completes(online_project, dynamodb):
    project_dir, env = online_project
    proxy = FaultProxy(int(dynamodb.rsplit(":", 1)[1]))
    env = {**env, "FEATURESTORE_DYNAMODB_ENDPOINT": proxy.url, "FEATURESTORE_TABLE_PREFIX": "fault_"}
    store = FeatureStore(project_dir, env=env)
    store.online.deadline_seconds = 3
    store.online.workers = 2
    written_before_cut = []

    def cut_after_first_batch(n):
        written_before_cut.append(n)
        proxy.cut()

    with pytest.raises(OnlineStoreError):
        store.sync(["customer_product_features"], on_batch=cut_after_first_batch)
    proxy.restore()
    assert written_before_cut  # the endpoint went away after some rows were written
    view = store.registry.view("customer_product_features")
    assert not (store.online.get_state(store.syncer().state_key(view)) or {}).get("watermark")  # not advanced
    store.online.deadline_seconds = 60
    result = store.sync(["customer_product_features"])[0]
    assert result.mode == "full"
    rows = current_rows(store, "customer_product_features")
    entity_rows = [{"customer_id": k[0], "product_type": k[1]} for k in rows]
    got = store.get_online_features(["customer_product_features:items_bought_90d"], entity_rows=entity_rows,
                                    now=max(r["feature_ts"] for r in rows.values())).to_dict()
    horizon = max(r["feature_ts"] for r in rows.values()) - timedelta(days=90)
    expected = [row["items_bought_90d"] if row["feature_ts"] >= horizon else None for row in rows.values()]
    assert got["items_bought_90d"] == expected  # every row present, none older than the warehouse's


def test_cli_get_sync_status_and_errors(online_project):
    project_dir, env = online_project
    store = FeatureStore(project_dir, env=env)
    store.sync()
    customer = sorted(current_rows(store, "customer_features"))[0][0]
    result = runner.invoke(app, ["sync", "status", "-p", str(project_dir), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert {row["view"] for row in __import__("json").loads(result.stdout)} == {
        "customer_features", "store_features", "customer_product_features", "customer_live_features"}
    result = runner.invoke(app, ["get", "-p", str(project_dir), "-f", "customer_features:lifetime_value",
                                 "-e", f"customer_id={customer}"], env=env)
    assert result.exit_code == 0 and customer in result.stdout
    result = runner.invoke(app, ["get", "-p", str(project_dir), "--service", "churn_model", "-e", f"customer_id={customer}"], env=env)
    assert result.exit_code == 1 and "need 'store_id'" in result.output
    result = runner.invoke(app, ["sync", "no_such_view", "-p", str(project_dir)], env=env)
    assert result.exit_code == 1 and "No feature view named 'no_such_view'" in result.output
    result = runner.invoke(app, ["sync", "-p", str(project_dir), "--every", "every tuesday"], env=env)
    assert result.exit_code == 1 and "neither a duration" in result.output


def test_scheduled_sync_stops_cleanly_on_sigterm(online_project):
    project_dir, env = online_project
    command = [str(Path(sys.executable).parent / "featurestore"), "sync", "-p", str(project_dir), "--every", "1h"]
    process = subprocess.Popen(command, env={**__import__("os").environ, **env, "FEATURESTORE_LOG_LEVEL": "info"},
                               stderr=subprocess.PIPE, text=True)  # the JSON event log, as a daemon would keep
    lines = []
    for line in process.stderr:
        lines.append(line)
        if '"event": "sleeping"' in line:
            break
    process.terminate()
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 0, "".join(lines) + rest
    assert any('"event": "synced"' in line for line in lines) and '"event": "stopped"' in rest


def test_audit_finds_no_skew_then_reports_a_planted_one(online_project):
    project_dir, env = online_project
    store = FeatureStore(project_dir, env=env)
    store.sync()
    rows = current_rows(store, "customer_features")
    at = max(row["feature_ts"] for row in rows.values())
    report = store.audit("customer_features", sample=40, now=at)
    assert report["keys"] == 40 and report["mismatches"] == []
    # plant skew: overwrite one item's value in DynamoDB behind the store's back
    key = sorted(rows)[0]
    name = store.online.live_table_name("customer_features")  # (a generation, once a bulk load replaced the table)
    store.online.client.update_item(TableName=name, Key={"entity_key": {"S": f"customer_id={key[0]}"}},
                                    UpdateExpression="SET total_orders_30d = :v",
                                    ExpressionAttributeValues={":v": {"N": "999"}})
    report = store.audit("customer_features", sample=len(rows), now=at)
    assert [(m["feature"], m["keys"], m["online"]) for m in report["mismatches"]] == [
        ("total_orders_30d", {"customer_id": key[0]}, 999)]
    result = runner.invoke(app, ["audit", "customer_features", "-p", str(project_dir), "--sample", "5"], env=env)
    assert result.exit_code == 0, result.output  # at the current time every value is past its TTL on both sides
