"""The registry from a small manifest, and validate's type rules: nothing in the YAML meta is
coerced silently (`online: "false"` is an error, never true)."""

import copy

import pytest

from featurestore.registry import registry_from_manifest
from featurestore.validate import ERROR, WARNING, validate

VIEW_META = {"entities": ["customer"], "event_timestamp": "ts", "created_timestamp": "loaded_at", "ttl": "2d",
             "online": True, "owner": "a@b.c"}
COLUMNS = {"customer_id": {"data_type": "varchar", "description": "id"},
           "ts": {"data_type": "timestamp", "description": "t"},
           "loaded_at": {"data_type": "timestamp", "description": "l"},
           "orders_7d": {"data_type": "bigint", "description": "n",
                         "config": {"meta": {"featurestore": {"window": "7d", "expect": {"min": 0}}}}}}


def manifest(view_meta=None, columns=None, raw_code="select 1", service_meta=None):
    return {
        "metadata": {"project_name": "p", "adapter_type": "duckdb"},
        "nodes": {
            "model.p.customers": {"resource_type": "model", "name": "customers", "unique_id": "model.p.customers",
                                  "config": {"meta": {"featurestore": {"entities": [
                                      {"name": "customer", "join_keys": ["customer_id"], "description": "c"}]}}},
                                  "columns": {"customer_id": {}}, "original_file_path": "models/c.sql"},
            "model.p.features": {"resource_type": "model", "name": "features", "unique_id": "model.p.features",
                                 "config": {"materialized": "feature_view",
                                            "meta": {"featurestore": view_meta if view_meta is not None else VIEW_META}},
                                 "columns": columns if columns is not None else COLUMNS, "raw_code": raw_code,
                                 "description": "d", "original_file_path": "models/f.sql",
                                 "patch_path": "p://models/f.yml"},
        },
        "exposures": {"exposure.p.svc": {"name": "svc", "type": "ml", "depends_on": {"nodes": ["model.p.features"]},
                                         "config": {"meta": {"featurestore": service_meta or {}}},
                                         "original_file_path": "models/e.yml"}},
    }


def problems(**kwargs):
    registry = registry_from_manifest(manifest(**kwargs))
    return registry, [(p.severity, p.rule, p.column) for p in validate(registry)], validate(registry)


def with_meta(**changes):
    meta = dict(VIEW_META)
    meta.update(changes)
    return meta


def with_column_meta(**featurestore):
    columns = copy.deepcopy(COLUMNS)
    columns["orders_7d"]["config"]["meta"]["featurestore"] = {"window": "7d", **featurestore}
    return columns


def test_a_clean_manifest_validates():
    registry, found, _ = problems()
    assert [p for p in found if p[0] == ERROR] == []
    view = registry.view("features")
    assert view.online is True and registry.join_keys(view) == ("customer_id",)


@pytest.mark.parametrize("meta, words", [
    (with_meta(online="false"), "must be true or false"),
    (with_meta(online="true"), "must be true or false"),
    (with_meta(online=1), "must be true or false"),
    (with_meta(entities="customer"), "must be a list of entity names"),
    (with_meta(tags="orders"), "must be a list of strings"),
    (with_meta(owner=["a"]), "must be a string"),
    (with_meta(ttl=7), "must be a duration string"),
    (with_meta(ttl="99999999999d"), "longer than 100 years"),
    (with_meta(ttl="0d"), "not a duration"),
    (with_meta(max_staleness="3 days"), "not a duration"),
    (with_meta(event_timestamp=5), "must be a string"),
])
def test_wrongly_typed_view_meta_is_an_error(meta, words):
    registry, _, found = problems(view_meta=meta)
    assert any(p.severity == ERROR and words in p.message and p.model == "features" and p.file == "models/f.yml"
               for p in found), [str(p) for p in found]
    assert registry.feature_views["features"].online is (meta.get("online") is True)  # never coerced


@pytest.mark.parametrize("column_meta, words", [
    ({"expect": {"min": "zero"}}, "expect.min must be a number"),
    ({"expect": {"max": True}}, "expect.max must be a number"),
    ({"expect": {"min": 5, "max": 1}}, "greater than expect.max"),
    ({"expect": {"values": "a"}}, "non-empty list"),
    ({"expect": {"values": [{"a": 1}]}}, "only strings and numbers"),
    ({"expect": {"max_null_rate": 2}}, "from 0 to 1"),
    ({"expect": ["min"]}, "must be a mapping"),
    ({"drift": {"max_psi": -1}}, "positive number"),
    ({"expect": {"minimum": 1}}, "unknown key(s) minimum"),
    ({"windw": "7d"}, "unknown key(s) windw"),
])
def test_wrongly_typed_column_meta_is_an_error(column_meta, words):
    _, _, found = problems(columns=with_column_meta(**column_meta))
    assert any(p.severity == ERROR and words in p.message and p.column == "orders_7d" for p in found), \
        [str(p) for p in found]


def test_a_string_with_a_quote_is_a_valid_expected_value():
    _, found, _ = problems(columns=with_column_meta(expect={"values": ["men's", "women's"]}))
    assert [p for p in found if p[0] == ERROR] == []


@pytest.mark.parametrize("name", ["entity_key", "_event_timestamp", "_expires_at", "valid_from", "_fs_row"])
def test_reserved_feature_names_are_errors(name):
    columns = copy.deepcopy(COLUMNS)
    columns[name] = {"data_type": "bigint", "description": "x"}
    _, found, _ = problems(columns=columns)
    assert (ERROR, "reserved-name", name) in found


@pytest.mark.parametrize("raw_code, view_meta", [
    ("select ordered_at as ts, ordered_at as loaded_at, 1 as orders_7d", VIEW_META),
    ("select ts, ts as loaded_at", VIEW_META),
    ("select ts", with_meta(created_timestamp="ts")),
])
def test_a_created_timestamp_that_is_the_event_time_is_warned(raw_code, view_meta):
    _, found, _ = problems(raw_code=raw_code, view_meta=view_meta)
    assert any(p[0] == WARNING and p[1] == "created-is-event" for p in found)


def test_a_real_load_time_is_not_warned():
    _, found, _ = problems(raw_code="select _fs_ts as ts, loaded_at from windowed")
    assert not any(p[1] == "created-is-event" for p in found)


def test_service_features_must_be_a_list():
    _, found, _ = problems(service_meta={"features": "features:orders_7d"})
    assert any(p[0] == ERROR and p[1] == "bad-type" for p in found)
