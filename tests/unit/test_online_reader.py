"""The one online read (featurestore.online.reader) over an in-memory online store: a status per
value, the two response styles, the join-key rules, and what `to_dict` gives."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from featurestore.errors import FeatureStoreError
from featurestore.online import OnlineStore
from featurestore.online.codec import entity_key
from featurestore.online.reader import EntityKeyError, key_from_text, read_online, response_style
from featurestore.online_response import OnlineResponse
from featurestore.registry import registry_from_manifest
from featurestore.requests import online_table, plan_retrieval
from manifests import DIMS, manifest, model

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


MANIFEST = manifest([
    DIMS,
    model("customer_features", {"entities": ["customer"], "event_timestamp": "ts", "ttl": "2d", "online": True},
          {"customer_id": "varchar", "ts": "timestamp", "orders": "bigint", "value": "decimal(18,2)"}),
    model("store_features", {"entities": ["store"], "event_timestamp": "ts", "online": True},
          {"store_id": "integer", "ts": "timestamp", "revenue": "decimal(18,2)", "opened": "timestamp"}),
])
REGISTRY = registry_from_manifest(MANIFEST)
TABLES = {name: online_table(REGISTRY, view) for name, view in REGISTRY.feature_views.items()}


class MemoryStore(OnlineStore):
    """Items by (view, entity key), read the way the DynamoDB store reads them (TTL at `now`)."""

    def __init__(self, items):
        self.items = items

    def read(self, table, keys, features, now=None, with_expired=False):
        answers = []
        for key in keys:
            item = None if any(key[k] is None for k in table.join_keys) else self.items.get(
                (table.view, entity_key(table.join_keys, key)))
            if item is None:
                answers.append(None)
                continue
            expired = bool(table.ttl_seconds) and (now - item["_event_timestamp"]).total_seconds() > table.ttl_seconds
            answers.append({**{f: item.get(f) for f in features}, "_event_timestamp": item["_event_timestamp"],
                            "_expired": expired})
        return answers

    def ensure_table(self, table): ...
    def write(self, table, rows, should_stop=None, on_batch=None, force=False): ...
    def ping(self, deadline=None): ...
    def missing_tables(self, views, deadline=None): ...
    def get_state(self, key): ...
    def put_state(self, key, state): ...


STORE = MemoryStore({
    ("customer_features", "customer_id=fresh"): {"orders": 3, "value": Decimal("176.80"), "_event_timestamp": NOW},
    ("customer_features", "customer_id=nulls"): {"orders": None, "value": Decimal("1.10"), "_event_timestamp": NOW},
    ("customer_features", "customer_id=old"): {"orders": 9, "value": Decimal("2.00"),
                                               "_event_timestamp": datetime(2026, 11, 1, tzinfo=UTC)},
    ("store_features", "store_id=7"): {"revenue": Decimal("10.50"), "opened": datetime(2020, 1, 1, tzinfo=UTC),
                                       "_event_timestamp": NOW},
})


def read(features, entities, style="featurestore", **options):
    requests = plan_retrieval(REGISTRY, features, None, False)
    return read_online(STORE, TABLES, requests, entities, now=NOW, style=style, **options)


def test_each_value_has_a_status_saying_why_it_is_missing():
    columns = read(["customer_features:orders", "customer_features:value"],
                   {"customer_id": ["fresh", "nulls", "old", "nobody", None]})
    by_name = {column.name: column for column in columns}
    assert [c.name for c in columns] == ["customer_id", "orders", "value"]
    assert by_name["orders"].statuses == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND", "NOT_FOUND"]
    assert by_name["orders"].values == [3, None, None, None, None]  # past the TTL: no value
    assert by_name["value"].statuses == ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND", "NOT_FOUND"]
    assert by_name["orders"].event_timestamps[:4] == [NOW, NOW, datetime(2026, 11, 1, tzinfo=UTC), None]
    assert by_name["customer_id"].statuses == ["PRESENT"] * 5


def test_the_feast_style_orders_keys_as_requested_and_a_stored_null_is_present():
    features = ["store_features:revenue", "customer_features:orders"]
    entities = {"customer_id": ["nulls"], "store_id": [7]}
    ours = read(features, entities)
    feast = read(features, entities, style="feast")
    assert [c.name for c in ours] == ["store_id", "customer_id", "revenue", "orders"]  # the views' order
    assert [c.name for c in feast] == ["customer_id", "store_id", "revenue", "orders"]  # the request's order
    assert ours[3].statuses == ["NULL_VALUE"] and feast[3].statuses == ["PRESENT"]
    assert ours[3].values == feast[3].values == [None]


def test_join_keys_are_checked_by_their_declared_type():
    with pytest.raises(EntityKeyError, match="need 'store_id' for feature view 'store_features'"):
        read(["store_features:revenue"], {"customer_id": ["x"]})
    with pytest.raises(EntityKeyError, match="integer column; got the string '7'"):
        read(["store_features:revenue"], {"store_id": ["7"]})
    with pytest.raises(EntityKeyError, match="string column; got the number 7"):
        read(["customer_features:orders"], {"customer_id": [7]})
    # beyond bigint (an `integer` key is given bigint's range: validate only warns of a narrower declaration)
    assert read(["store_features:revenue"], {"store_id": [2**63 - 1, -(2**63), 2**40]})[1].statuses == ["NOT_FOUND"] * 3
    with pytest.raises(EntityKeyError, match=r"'store_id' row 1: 9223372036854775808 is outside .*integer: "
                                             r"-9,223,372,036,854,775,808 to 9,223,372,036,854,775,807"):
        read(["store_features:revenue"], {"store_id": [7, 2**63]})
    with pytest.raises(EntityKeyError, match=r"row 0: -10000000000\.\.\. \(401 digits\) is outside"):
        read(["store_features:revenue"], {"store_id": [-(10**400)]})
    # a key no view needs: ignored (as Feast does), or refused (the server)
    assert [c.name for c in read(["store_features:revenue"], {"store_id": [7], "extra": [1]})] == ["store_id", "revenue"]
    with pytest.raises(EntityKeyError, match="Unknown entity column"):
        read(["store_features:revenue"], {"store_id": [7], "extra": [1]}, refuse_unknown=True)


def test_keys_typed_on_a_command_line_take_their_declared_type():
    assert key_from_text("store_id", "7", "integer") == 7
    assert key_from_text("customer_id", "7", "varchar") == "7"
    assert key_from_text("customer_id", "7", None) == "7"
    assert key_from_text("store_id", " -7 ", "integer") == -7
    for text in ("seven", "1_000", "\u0663", "7.0", ""):  # int() takes the 2nd and 3rd (an Arabic-Indic 3)
        with pytest.raises(EntityKeyError, match="'store_id' is an integer join key"):
            key_from_text("store_id", text, "integer")


def test_to_dict_gives_plain_values_like_the_server():
    response = OnlineResponse(read(["store_features:revenue", "store_features:opened"], {"store_id": [7, 8]}))
    values = response.to_dict()
    assert values == {"store_id": [7, 8], "revenue": [10.5, None], "opened": [datetime(2020, 1, 1, tzinfo=UTC), None]}
    assert type(values["revenue"][0]) is float  # not Decimal('10.50')
    json.dumps(values, default=str)
    assert response.statuses["revenue"] == ["PRESENT", "NOT_FOUND"]
    with_times = response.to_dict(include_event_timestamps=True)
    assert with_times["revenue__ts"] == [int(NOW.timestamp()), 0] and with_times["store_id__ts"] == [0, 0]


def test_the_response_style_setting_is_checked():
    assert response_style(None) == "featurestore" and response_style(" Feast ") == "feast"
    with pytest.raises(FeatureStoreError, match="FEATURESTORE_RESPONSES must be featurestore or feast"):
        response_style("feast067")



def test_entity_rows_of_the_wrong_shape_are_refused_and_numpy_keys_taken():
    import numpy as np

    from featurestore.errors import FeatureStoreError
    from featurestore.requests import entity_columns as _entity_columns

    with pytest.raises(FeatureStoreError, match="Entity column 'customer_id' must be a list"):
        _entity_columns({"customer_id": "C1"})  # would be two keys, 'C' and '1'
    with pytest.raises(FeatureStoreError, match="Entity column 'customer_id' must be a list"):
        _entity_columns({"customer_id": 5})
    with pytest.raises(FeatureStoreError, match="Entity row 0 is a str"):
        _entity_columns(["customer_id"])
    columns = _entity_columns({"customer_id": np.array([5, 6])})
    assert columns == {"customer_id": [5, 6]} and type(columns["customer_id"][0]) is int
    assert type(_entity_columns([{"customer_id": np.int64(7)}])["customer_id"][0]) is int


def test_blobs_and_sets_are_json_values():
    import json

    from featurestore.online_response import json_value

    assert json.dumps([json_value(b"\x00\xff"), json_value({"b", "a"})]) == '["AP8=", ["a", "b"]]'
