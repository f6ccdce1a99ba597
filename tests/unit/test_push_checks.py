"""A batch push is checked whole before anything is written (featurestore.push): the online
store's own rule (make_item, through OnlineStore.refused), the server's clock for the created
timestamp, no silent truncation, one version of a key per event time. The store here points at a
port nobody listens on: a push that tried to write would fail with another error than the one
asserted, and nothing may appear in the landing area."""

from __future__ import annotations

import pytest

from featurestore.errors import RequestError
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
from featurestore.push import Pusher
from featurestore.registry import registry_from_manifest
from manifests import DIMS, manifest, model

LIVE = model("live", {"entities": ["customer"], "event_timestamp": "event_at", "created_timestamp": "pushed_at",
                      "online": True, "push": True},
             {"customer_id": "varchar", "event_at": "timestamp", "pushed_at": "timestamp", "cart_items": "bigint",
              "cart_value": "double", "note": "varchar"})
REGISTRY = registry_from_manifest(manifest([DIMS, LIVE]))
GOOD = {"customer_id": "c1", "event_at": "2026-12-01T10:00:00Z", "cart_items": 2, "cart_value": 9.5}


@pytest.fixture
def pusher(tmp_path):
    unreachable = DynamoDBOnlineStore(OnlineConfig("http://127.0.0.1:9", "us-east-1", "unit_", timeout_seconds=0.5))
    return Pusher(REGISTRY, unreachable, tmp_path / "landing")


CASES = {
    "NaN": ([GOOD, dict(GOOD, customer_id="c2", cart_value=float("nan"))], ["customer_id=c2", "cart_value", "nan"]),
    "Infinity": ([dict(GOOD, cart_value=float("inf"))], ["cart_value", "inf"]),
    "a 500 KB key": ([dict(GOOD, customer_id="k" * 500_000)], ["entity key", "2,048"]),
    "a 900 KB key": ([dict(GOOD, customer_id="k" * 900_000)], ["entity key", "2,048"]),
    "a 450 KB item": ([dict(GOOD, note="n" * 450_000)], ["customer_id=c1", "item", "400 KB"]),
    "a client's pushed_at": ([GOOD, dict(GOOD, customer_id="c2", pushed_at="2099-01-01T00:00:00")],
                             ["Row 1", "'pushed_at'", "server"]),
    "a client's null pushed_at": ([dict(GOOD, pushed_at=None)], ["Row 0", "'pushed_at'"]),
    "1.5 for a bigint": ([dict(GOOD, cart_items=1.5)], ["cart_items", "bigint", "1.5"]),
    "true for a bigint, shown as JSON": ([GOOD, dict(GOOD, customer_id="c2", cart_items=True)],
                                         ["Row 1", "'cart_items'", "bigint; true is not"]),
    "a word for a bigint, with its row": ([GOOD, dict(GOOD, customer_id="c2"), dict(GOOD, customer_id="c3", cart_items="three")],
                                          ["Row 2: 'cart_items' of 'live' is bigint; \"three\" is not a value of that type"]),
    "a number for a varchar, with its row": ([dict(GOOD, note=7)], ["Row 0: 'note' of 'live' is varchar; 7 is not"]),
    "an object for a key": ([dict(GOOD, customer_id={"a": 1})], ["Row 0", "'customer_id'", "not an object"]),
    "a repeated key and event time": ([GOOD, dict(GOOD, customer_id="c2"), dict(GOOD, cart_items=5)],
                                      ["Rows 0 and 2", "customer_id='c1'", "event_at=2026-12-01T10:00:00"]),
}


@pytest.mark.parametrize("to", ["online_and_offline", "offline", "online"])
@pytest.mark.parametrize("case", CASES)
def test_a_push_the_online_store_cannot_take_whole_is_refused_before_anything_is_written(pusher, case, to):
    rows, named = CASES[case]
    with pytest.raises(RequestError) as refused:
        pusher.push("live", rows, to=to)
    assert refused.value.status == 400
    message = str(refused.value)
    assert all(part in message for part in named), message
    assert not (pusher.landing / "live").exists() or not list((pusher.landing / "live").iterdir())
