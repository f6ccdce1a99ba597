"""Registry objects read with the attribute names Feast users write (`.join_key`, `.schema`,
`.entity_columns`, `.ttl`, a service's `.feature_view_projections`): properties over the
registry's own frozen objects, no second registry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore.errors import RegistryError
from featurestore.registry import Feature, registry_from_manifest


def model(name, meta, columns):
    return {"resource_type": "model", "name": name, "unique_id": f"model.p.{name}", "config": {"meta": {"featurestore": meta}},
            "columns": {column: {"data_type": dtype, "description": f"{column}."} for column, dtype in columns.items()},
            "original_file_path": f"models/{name}.sql"}


REGISTRY = registry_from_manifest({
    "metadata": {"project_name": "p", "adapter_type": "duckdb"},
    "nodes": {
        "model.p.dims": model("dims", {"entities": [{"name": "customer", "join_keys": ["customer_id"]},
                                                    {"name": "basket", "join_keys": ["customer_id", "product"]}]},
                              {"customer_id": "varchar", "product": "varchar"}),
        "model.p.cf": model("cf", {"entities": ["customer"], "event_timestamp": "ts", "created_timestamp": "loaded_at",
                                   "ttl": "2d", "online": True, "owner": "a@b.c", "tags": ["growth"]},
                            {"customer_id": "varchar", "ts": "timestamp", "loaded_at": "timestamp", "orders": "bigint",
                             "value": "decimal(18,2)"}),
        "model.p.bf": model("bf", {"entities": ["basket"], "event_timestamp": "ts"},
                            {"product": "varchar", "customer_id": "varchar", "ts": "timestamp", "items": "bigint"}),
    },
    "exposures": {"exposure.p.svc": {"name": "svc", "type": "ml", "description": "A model.", "owner": {"email": "d@e.f"},
                                     "depends_on": {"nodes": ["model.p.cf", "model.p.bf"]},
                                     "config": {"meta": {"featurestore": {"features": [
                                         "cf:value", "bf:items", "cf:orders", "cf:nope", "cf:value"]}}},
                                     "original_file_path": "models/e.yml"}},
})


def test_a_view_reads_like_a_feast_feature_view():
    view = REGISTRY.view("cf")
    assert (view.name, view.entities, view.ttl, view.online, view.owner, view.tags) == (
        "cf", ("customer",), timedelta(days=2), True, "a@b.c", ("growth",))
    assert [(field.name, field.dtype) for field in view.entity_columns] == [("customer_id", "varchar")]
    assert [(field.name, field.dtype) for field in view.schema] == [
        ("customer_id", "varchar"), ("orders", "bigint"), ("value", "decimal(18,2)")]
    assert [field.name for field in REGISTRY.view("bf").entity_columns] == ["product", "customer_id"]
    assert REGISTRY.view("bf").ttl is None  # no TTL (Feast spells it timedelta(0))


def test_an_entity_has_a_join_key_unless_it_is_composite():
    assert REGISTRY.entity("customer").join_key == "customer_id"
    with pytest.raises(RegistryError, match="'basket' has 2 join keys \\(customer_id, product\\); read .join_keys"):
        REGISTRY.entity("basket").join_key


def test_a_service_has_feature_view_projections_in_reference_order():
    service = REGISTRY.service("svc")
    projections = service.feature_view_projections
    assert [(p.name_to_use(), [f.name for f in p.features]) for p in projections] == [
        ("cf", ["value", "orders"]), ("bf", ["items"])]  # grouped by view; duplicates once; `cf:nope` left to validate
    assert isinstance(projections[0].features[0], Feature) and projections[0].features[0] is REGISTRY.view("cf").features[1]
    assert (service.name, service.description, service.owner) == ("svc", "A model.", "d@e.f")
