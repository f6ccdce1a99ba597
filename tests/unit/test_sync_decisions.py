"""The sync's decisions, without a warehouse or an online store: full or incremental and why,
the sync state's key per source, the online table of a view, which views are synced."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest

from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.registry import Entity, Feature, FeatureView, Registry
from featurestore.sync import Syncer, online_table

BUILD = "b7e1"  # the id of the snapshot table's last full build
SYNCED = {"watermark": "2024-05-01T10:00:00.000000", "build_id": BUILD}


def feature_view(name="customer_features", created="loaded_at", ttl="2d", online=True, entities=("customer",),
                 relation='"shop"."main"."customer_features"', features=("orders_7d", "lifetime_value")) -> FeatureView:
    return FeatureView(
        name=name, unique_id=f"model.shop.{name}", relation_name=relation, description="", entities=entities,
        event_timestamp="feature_ts", created_timestamp=created, ttl_text=ttl, online=online, owner="o",
        tags=(), features=tuple(Feature(f, name, "double", "") for f in features),
        columns=MappingProxyType({}), materialized="feature_view", yaml_path="models/f.yml", sql_path="models/f.sql")


ENTITIES = {
    "customer": Entity("customer", ("customer_id",), "", "customers", "models/d.yml"),
    "product": Entity("product", ("product_type",), "", "products", "models/d.yml"),
    "customer_product": Entity("customer_product", ("customer_id", "product_type"), "", "pairs", "models/d.yml"),
}


def registry(*views: FeatureView, project="shop") -> Registry:
    return Registry(project_name=project, adapter_type="duckdb", entities=MappingProxyType(ENTITIES),
                    feature_views=MappingProxyType({v.name: v for v in views}), services=MappingProxyType({}),
                    entity_declarations=tuple(ENTITIES.values()), model_columns=MappingProxyType({}))


def syncer(*views: FeatureView, project="shop", source="/data/shop.duckdb") -> Syncer:
    """A Syncer that can decide but not connect: no warehouse, no online store."""
    return Syncer(registry(*views, project=project), connect=None, online=None, source=source)


def mode(state: dict, build_id: str = BUILD, full: bool = False, view: FeatureView | None = None):
    view = view or feature_view()
    return syncer(view)._mode(view, state, build_id, full)


# -- full or incremental -------------------------------------------------------------------------

INCREMENTAL = (True, "rows created after the watermark")
FIRST = (False, "first sync from this source")
REBUILT = (False, "the snapshot table was rebuilt since the last sync")
NO_CREATED = (False, "the view has no created_timestamp")
REQUESTED = (False, "full sync requested")


@pytest.mark.parametrize("state, build_id, expected", [
    (SYNCED, BUILD, INCREMENTAL),
    ({}, BUILD, FIRST),  # no state: never synced from this source
    ({"build_id": BUILD}, BUILD, FIRST),  # a state without a watermark
    ({"watermark": "", "build_id": BUILD}, BUILD, FIRST),  # the last sync read no row
    ({"watermark": None, "build_id": BUILD}, BUILD, FIRST),
    (SYNCED, "c0ff", REBUILT),  # a full refresh since: new build id
    (SYNCED, "", REBUILT),  # the build record is gone
    ({"watermark": SYNCED["watermark"]}, "", INCREMENTAL),  # a table built before 0.2 has no build id, nor its state
    ({"watermark": SYNCED["watermark"]}, BUILD, REBUILT),  # ... until the table is rebuilt with one
    ({**SYNCED, "last_mode": "full", "rows_last_read": 0}, BUILD, INCREMENTAL),  # the rest of the state is not read
])
def test_the_mode_follows_the_state_and_the_build(state, build_id, expected):
    assert mode(state, build_id) == expected


@pytest.mark.parametrize("state, build_id, rebuilt", [
    (SYNCED, BUILD, False), (SYNCED, "c0ff", True), (SYNCED, "", True), ({}, "c0ff", False),
    ({"watermark": SYNCED["watermark"]}, "", False), ({"watermark": SYNCED["watermark"]}, BUILD, True),
    ({"watermark": "", "build_id": BUILD}, "c0ff", True),  # a view without created_timestamp has no watermark
])
def test_a_rebuilt_table_rewrites_items_of_the_same_version(state, build_id, rebuilt):
    """The sync after a rebuild writes as --force does, whether it was asked to be full or not."""
    assert Syncer._rebuilt(state, build_id) is rebuilt
    if rebuilt and state.get("watermark"):
        assert mode(state, build_id) == REBUILT


@pytest.mark.parametrize("state, build_id", [(SYNCED, BUILD), ({}, BUILD), (SYNCED, "c0ff"), ({}, "")])
def test_a_requested_full_sync_is_full_whatever_the_state(state, build_id):
    assert mode(state, build_id, full=True) == REQUESTED
    assert mode(state, build_id, full=True, view=feature_view(created=None)) == REQUESTED


@pytest.mark.parametrize("state, build_id, expected", [
    (SYNCED, BUILD, NO_CREATED),
    (SYNCED, "c0ff", NO_CREATED),  # no created timestamp: nothing to compare a watermark with, rebuilt or not
    ({}, BUILD, FIRST),  # the first sync says it is the first
])
def test_a_view_without_created_timestamp_is_always_synced_in_full(state, build_id, expected):
    assert mode(state, build_id, view=feature_view(created=None)) == expected


# -- the sync state's key ------------------------------------------------------------------------


def test_a_state_key_is_the_view_and_a_hash_of_its_source():
    view = feature_view()
    key = syncer(view).state_key(view)
    assert re.fullmatch(r"customer_features#[0-9a-f]{16}", key)
    assert syncer(view).state_key(view) == key  # stable across runs and processes


@pytest.mark.parametrize("other", [
    {"source": "/data/other.duckdb"},  # another warehouse
    {"project": "other_shop"},  # another project on the same endpoint and prefix
    {"relation": '"shop"."staging"."customer_features"'},  # another schema of the same warehouse
])
def test_each_source_has_its_own_state(other):
    view = feature_view()
    mine = syncer(view).state_key(view)
    theirs_view = feature_view(relation=other["relation"]) if "relation" in other else view
    theirs = syncer(theirs_view, project=other.get("project", "shop"),
                    source=other.get("source", "/data/shop.duckdb")).state_key(theirs_view)
    assert theirs != mine and theirs.split("#")[0] == mine.split("#")[0] == "customer_features"


def test_two_views_of_one_source_have_two_states():
    first, second = feature_view(), feature_view("store_features", relation="store_features")
    sync = syncer(first, second)
    assert sync.state_key(first).split("#")[0] != sync.state_key(second).split("#")[0]


# -- the online table of a view ------------------------------------------------------------------


@pytest.mark.parametrize("ttl, seconds", [("2d", 172800), ("90m", 5400), ("1w", 604800), (None, None)])
def test_the_online_table_carries_the_ttl_in_seconds(ttl, seconds):
    view = feature_view(ttl=ttl)
    assert online_table(registry(view), view).ttl_seconds == seconds


def test_the_online_table_has_the_join_keys_of_the_entities_in_order_without_repeats():
    view = feature_view(entities=("customer_product", "customer", "product"))
    table = online_table(registry(view), view)
    assert table.join_keys == ("customer_id", "product_type")
    assert table.view == "customer_features"
    assert table.features == {"orders_7d": "double", "lifetime_value": "double"}


# -- which views are synced ----------------------------------------------------------------------


def test_without_names_only_online_views_are_synced():
    online, offline = feature_view(), feature_view("audit_features", online=False)
    assert syncer(online, offline).online_views() == [online]
    assert syncer(online, offline).online_views([]) == [online]


def test_named_views_are_synced_in_the_order_named():
    first, second = feature_view(), feature_view("store_features")
    assert syncer(first, second).online_views(["store_features", "customer_features"]) == [second, first]


def test_naming_an_offline_view_is_refused_naming_it():
    online, offline = feature_view(), feature_view("audit_features", online=False)
    with pytest.raises(FeatureStoreError, match=r"^Feature view\(s\) audit_features are not online \(`online: true`"):
        syncer(online, offline).online_views(["customer_features", "audit_features"])


def test_naming_an_unknown_view_lists_the_known_ones():
    with pytest.raises(RegistryError, match="No feature view named 'nope'. Feature views: customer_features."):
        syncer(feature_view()).online_views(["nope"])


def test_the_bulk_settings_are_read_and_checked(monkeypatch):
    import pytest

    from featurestore.errors import FeatureStoreError
    from featurestore.sync import BULK_MIN_ROWS, bulk_min_rows, from_workers

    assert bulk_min_rows() == BULK_MIN_ROWS and from_workers()
    monkeypatch.setenv("FEATURESTORE_BULK_MIN_ROWS", "0")
    monkeypatch.setenv("FEATURESTORE_SYNC_FROM_WORKERS", "0")
    assert bulk_min_rows() == 0 and not from_workers()
    monkeypatch.setenv("FEATURESTORE_BULK_MIN_ROWS", "-5")
    with pytest.raises(FeatureStoreError, match="0 or more"):
        bulk_min_rows()
    monkeypatch.setenv("FEATURESTORE_BULK_MIN_ROWS", "lots")
    monkeypatch.setenv("FEATURESTORE_SYNC_FROM_WORKERS", "maybe")
    with pytest.raises(FeatureStoreError, match="FEATURESTORE_BULK_MIN_ROWS"):
        bulk_min_rows()
    with pytest.raises(FeatureStoreError, match="FEATURESTORE_SYNC_FROM_WORKERS"):
        from_workers()


@pytest.mark.parametrize("before, newest, after", [
    (None, None, None),
    (None, "2026-12-01T10:00:00.000000", "2026-12-01T10:00:00.000000"),
    ("2026-12-01T10:00:00.000000", "2026-12-01T09:00:00.000000", "2026-12-01T10:00:00.000000"),  # never backwards
    ("2026-12-01T10:00:00.000000", "2026-12-01T11:00:00.000000", "2026-12-01T11:00:00.000000"),
    (None, "2099-01-01T00:00:00.000000", "2026-12-04T12:00:00.000000"),  # a row stamped in the future: the clock
    ("2026-12-01T10:00:00.000000", "2099-01-01T00:00:00.000000", "2026-12-04T12:00:00.000000"),
])
def test_the_watermark_never_passes_the_syncs_own_clock(before, newest, after):
    from featurestore.sync import next_watermark

    assert next_watermark(before, newest, "2026-12-04T12:00:00.000000") == after
