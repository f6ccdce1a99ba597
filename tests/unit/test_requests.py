"""Request planning (featurestore.requests), the one equality (quality.audit.same_value), the
type families other modules ask types.py about, and the error types that decide HTTP statuses —
pure logic over a hand-built manifest: no dbt, no warehouse, no online store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest

from featurestore.errors import NotFound, NotOnline, RegistryError, RequestError
from featurestore.online.reader import OnlineReader
from featurestore.quality.audit import same_value
from featurestore.registry import registry_from_manifest
from featurestore.requests import (
    entity_columns,
    features_or_service,
    join_keys_of,
    online_table,
    plan_retrieval,
    require_online,
    ttl_seconds,
)
from featurestore.server.serving import OnlineServer
from featurestore.types import is_numeric, is_whole_number, key_family
from manifests import DIMS, exposure, manifest, model


MANIFEST = manifest([
    DIMS,
    model("customer_features", {"entities": ["customer"], "event_timestamp": "ts", "ttl": "2d", "online": True},
          {"customer_id": "varchar", "ts": "timestamp", "orders": "bigint", "value": "decimal(18,2)"}),
    model("store_features", {"entities": ["store"], "event_timestamp": "ts", "ttl": "90m", "online": True},
          {"store_id": "integer", "ts": "timestamp", "orders": "bigint", "revenue": "decimal(18,2)"}),
    model("pair_features", {"entities": ["store", "customer"], "event_timestamp": "ts"},
          {"store_id": "integer", "customer_id": "varchar", "ts": "timestamp", "visits": "integer"}),
], [exposure("churn", ["customer_features"], ["customer_features:orders", "store_features:revenue"]),
    exposure("everything", ["customer_features", "store_features"])])
REGISTRY = registry_from_manifest(MANIFEST)


# -- planning ---------------------------------------------------------------------------------------

def test_references_are_grouped_by_view_in_first_seen_order_without_duplicates():
    requests = plan_retrieval(REGISTRY, ["store_features:revenue", "customer_features:orders",
                                         "store_features:orders", "store_features:revenue"], None, True)
    assert [request.view.name for request in requests] == ["store_features", "customer_features"]
    assert requests[0].features == (("revenue", "store_features__revenue"), ("orders", "store_features__orders"))
    assert [request.alias for request in requests] == ["_fs_v0", "_fs_v1"]


def test_a_name_given_by_two_views_needs_full_feature_names():
    with pytest.raises(RequestError, match="'orders' is requested from both 'customer_features' and 'store_features'"):
        plan_retrieval(REGISTRY, ["customer_features:orders", "store_features:orders"], None, False)
    assert plan_retrieval(REGISTRY, ["customer_features:orders", "store_features:orders"], None, True)


@pytest.mark.parametrize("features, service", [(None, None), ([], None), (["customer_features:orders"], "churn")])
def test_features_or_a_service_never_both_nor_neither(features, service):
    with pytest.raises(RequestError, match="either features"):
        plan_retrieval(REGISTRY, features, service, False)


def test_a_service_lists_its_features_or_every_feature_of_its_views():
    explicit = plan_retrieval(REGISTRY, None, "churn", False)
    assert [(r.view.name, r.features) for r in explicit] == [("customer_features", (("orders", "orders"),)),
                                                             ("store_features", (("revenue", "revenue"),))]
    everything = plan_retrieval(REGISTRY, None, "everything", True)
    assert [name for r in everything for name, _ in r.features] == ["orders", "value", "orders", "revenue"]


@pytest.mark.parametrize("reference, kind, status", [
    ("nope:orders", NotFound, 404),
    ("customer_features:nope", NotFound, 404),
    ("customer_features", RegistryError, 400),
    (":orders", RegistryError, 400),
])
def test_the_error_type_carries_the_status(reference, kind, status):
    with pytest.raises(kind) as caught:
        plan_retrieval(REGISTRY, [reference], None, False)
    assert caught.value.status == status
    assert type(caught.value) is kind  # a malformed reference is not "not found"


def test_an_unknown_service_is_not_found():
    with pytest.raises(NotFound, match="No feature service named 'nope'"):
        plan_retrieval(REGISTRY, None, "nope", False)


def test_join_keys_follow_the_entities_order_once_each():
    requests = plan_retrieval(REGISTRY, ["pair_features:visits", "customer_features:orders"], None, False)
    assert requests[0].keys == (("store_id", "store_id"), ("customer_id", "customer_id"))
    assert join_keys_of(requests) == ["store_id", "customer_id"]


@pytest.mark.parametrize("view, seconds", [("customer_features", 172800), ("store_features", 5400),
                                           ("pair_features", None)])
def test_ttl_seconds_and_the_online_table(view, seconds):
    feature_view = REGISTRY.view(view)
    assert ttl_seconds(feature_view) == seconds
    table = online_table(REGISTRY, feature_view)
    assert (table.view, table.join_keys, table.ttl_seconds) == (view, REGISTRY.join_keys(feature_view), seconds)
    assert table.features == {feature.name: feature.dtype for feature in feature_view.features}


def test_not_online_is_refused_once_naming_every_view():
    require_online([REGISTRY.view("customer_features")])
    with pytest.raises(NotOnline, match="pair_features are not online .* cannot be synced") as caught:
        require_online([REGISTRY.view("customer_features"), REGISTRY.view("pair_features")], "synced")
    assert caught.value.status == 400


def test_features_may_be_a_service_object_but_not_a_string():
    assert features_or_service(REGISTRY.service("churn"), None) == (None, "churn")
    with pytest.raises(RequestError, match="not both"):
        features_or_service(REGISTRY.service("churn"), "churn")
    with pytest.raises(RequestError, match="not the string"):
        features_or_service("customer_features:orders", None)
    assert features_or_service(["customer_features:orders"], None) == (["customer_features:orders"], None)


# -- entity rows ------------------------------------------------------------------------------------

def test_entity_rows_as_a_list_or_as_columns():
    assert entity_columns([{"customer_id": "a", "store_id": 1}, {"customer_id": "b", "store_id": 2}]) == \
        {"customer_id": ["a", "b"], "store_id": [1, 2]}
    assert entity_columns({"customer_id": ["a", "b"]}) == {"customer_id": ["a", "b"]}
    assert entity_columns([]) == {}


def test_numpy_integer_keys_become_python_integers():
    columns = entity_columns({"store_id": np.array([1, 2], dtype=np.int64)})
    assert columns == {"store_id": [1, 2]} and all(type(value) is int for value in columns["store_id"])
    assert type(entity_columns([{"store_id": np.int32(7)}])["store_id"][0]) is int


@pytest.mark.parametrize("rows, message", [
    (None, "Pass entity_rows"),
    ({"customer_id": ["a"], "store_id": [1, 2]}, "same number of values; got customer_id: 1, store_id: 2"),
    ({"customer_id": "abc"}, "Entity column 'customer_id' must be a list"),
    ({"customer_id": 7}, "Entity column 'customer_id' must be a list"),
    ([{"customer_id": "a"}, ("b",)], "Entity row 1 is a tuple"),
    ([{"customer_id": "a"}, {"store_id": 1}], "Entity row 0 has no 'store_id'"),
])
def test_entity_rows_of_the_wrong_shape_are_refused(rows, message):
    with pytest.raises(RequestError, match=message):
        entity_columns(rows)


# -- the one online reader over the plan ------------------------------------------------------------

class NoStore:
    """An online store that must not be read (the request is refused before)."""

    def read_many(self, reads, now=None, with_expired=False, asked_at=None):
        raise AssertionError("read before the request was checked")


def test_the_reader_refuses_views_that_are_not_online_before_reading():
    reader = OnlineReader(REGISTRY, NoStore())
    with pytest.raises(NotOnline, match="pair_features"):
        reader.read(["pair_features:visits"], [{"store_id": 1, "customer_id": "a"}])


def test_the_reader_plans_once_per_request_shape():
    reader = OnlineReader(REGISTRY, NoStore())
    first = reader.plan(["customer_features:orders"], None)
    assert reader.plan(("customer_features:orders",), None) is first
    assert first[1]["customer_features"].ttl_seconds == 172800


def test_the_server_answers_not_found_and_not_online_by_type():
    server = OnlineServer(REGISTRY, NoStore())
    with pytest.raises(NotFound) as missing:
        server.get_online_features({"features": ["nope:orders"], "entities": {"customer_id": ["a"]}})
    assert missing.value.status == 404
    with pytest.raises(NotOnline) as offline:
        server.get_online_features({"features": ["pair_features:visits"],
                                    "entities": {"customer_id": ["a"], "store_id": [1]}})
    assert offline.value.status == 400
    with pytest.raises(RequestError, match="same number of values") as uneven:
        server.get_online_features({"features": ["customer_features:orders"],
                                    "entities": {"customer_id": ["a", "b"], "store_id": [1]}})
    assert uneven.value.status == 400


# -- the families other modules ask about -----------------------------------------------------------

@pytest.mark.parametrize("declared, whole", [
    ("bigint", True), ("integer", True), ("long", True), ("hugeint", True), ("decimal(10,0)", False),
    ("ubigint", True), ("decimal(18,2)", False), ("numeric", False), ("double", False), ("varchar", False),
    ("interval", False), ("date", False), (None, False), ("struct<a int>", False),
])
def test_whole_numbers(declared, whole):
    assert is_whole_number(declared) is whole


@pytest.mark.parametrize("declared, numeric", [
    ("int", True), ("long", True), ("double precision", True), ("real", True), ("numeric(12,4)", True),
    ("numeric", True), ("hugeint", True), ("interval", False), ("varchar", False), ("boolean", False),
    ("timestamp", False), (None, False),
])
def test_numbers(declared, numeric):
    assert is_numeric(declared) is numeric


@pytest.mark.parametrize("declared, family", [
    ("varchar(16)", "string"), ("text", "string"), ("string", "string"), ("uuid", "string"), ("bpchar", "string"),
    ("integer", "integer"), ("bigint", "integer"), ("smallint", "integer"), ("hugeint", "integer"),
    ("date", None), ("timestamp", None), ("decimal(10,0)", None), (None, None), ("interval", None),
])
def test_join_key_families(declared, family):
    assert key_family(declared) == family


# -- one rule of equality for both audits -----------------------------------------------------------

@pytest.mark.parametrize("served, expected, same", [
    (None, None, True), (None, 0, False), (0, None, False),
    (1.0, 1, True), (176.8, Decimal("176.80"), True), (176.80000000001, 176.8, True), (176.81, 176.8, False),
    (1e-10, 2e-10, True),  # below 1.0 the tolerance is absolute: DynamoDB's decimal text of a binary float
    (1e12 + 1, 1e12, True), (1e12 + 10_000, 1e12, False),
    ("1.0", 1.0, False), (True, 1.0, False), ("a", "a", True), ("a", "b", False), (3, 3, True), (3, 4, False),
    (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 1), True),
    (datetime(2026, 1, 1), datetime(2026, 1, 1) + timedelta(microseconds=1), False),
    ("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z", True),
])
def test_same_value(served, expected, same):
    assert same_value(served, expected) is same
