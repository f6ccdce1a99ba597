"""One registry, read twice: the macros re-derive join keys (feature_view_spec) and feature
services (_service_features, in training_set) from dbt's graph, the SDK from the manifest
(registry.py: Registry.join_keys; plan_retrieval and plan_features with on-demand features; requests.ttl_seconds). Each table of
cases goes through both, like test_durations.py.

The Python side is what the SDK does: read the manifest, refuse it when `validate` finds an
error (FeatureStore.registry), then plan. The dbt side renders the macros with jinja2 over the
same manifest as `graph` (dbt's graph is the manifest's dict). A refusal must name the culprit
on both sides.
"""

from __future__ import annotations

import copy
import json

import pytest

from featurestore.errors import FeatureStoreError
from featurestore.registry import registry_from_manifest
from featurestore.validate import errors, validate
from macro_env import CompilerError, MacroNamespace

from featurestore.requests import plan_retrieval, ttl_seconds

class _Relation(str):
    """What ref() gives the macro: a relation (it renders); here one spelled like its name."""

    def render(self):
        return str(self)


LABELS = _Relation("labels")  # the entity relation of the training set, and its columns
LABEL_COLUMNS = ["customer_id", "account_id", "location_code", "event_timestamp"]


class Refused(str):
    """Expected: both sides refuse, each with a message containing this text."""


# -- a small project, as dbt writes it into manifest.json (only the keys either side reads) ------


def _columns(names, types=None):
    types = types or {}
    return {name: {"name": name, "data_type": types.get(name, "double"), "description": f"{name}."}
            for name in names}


def model(name, meta, columns, types=None):
    return {f"model.shop.{name}": {
        "resource_type": "model", "name": name, "unique_id": f"model.shop.{name}",
        "config": {"materialized": "feature_view" if "event_timestamp" in meta else "table",
                   "meta": {"featurestore": meta}},
        "columns": _columns(columns, types), "description": f"{name}.", "raw_code": "select 1",
        "original_file_path": f"models/{name}.sql", "patch_path": f"shop://models/{name}.yml",
        "relation_name": f'"shop"."main"."{name}"', "depends_on": {"nodes": []}}}


# customer and store are shared by views; store's join key is not its name; account has two keys
ENTITY_KEYS = {"customer": ["customer_id"], "account": ["customer_id", "account_id"], "store": ["location_code"]}


def entity(name, join_keys):
    return {"name": name, "join_keys": join_keys, "description": f"{name}."}


def view(name, entities, features, ttl="30d", created=None):
    meta = {"entities": entities, "event_timestamp": "event_ts", "owner": "ml@shop.test"}
    if ttl is not None:
        meta["ttl"] = ttl
    if created:
        meta["created_timestamp"] = created
    key_columns = [key for entity_name in (entities if isinstance(entities, list) else [])
                   for key in ENTITY_KEYS.get(entity_name, [])]
    timestamps = ["event_ts"] + ([created] if created else [])
    columns = list(dict.fromkeys(key_columns + timestamps + features))
    return model(name, meta, columns, {column: "timestamp" for column in timestamps} |
                 {key: "varchar" for key in key_columns})


def service(name, features=None, depends_on=()):
    meta = {"featurestore": {} if features is None else {"features": features}}
    return {f"exposure.shop.{name}": {
        "name": name, "type": "ml", "meta": meta, "config": {"enabled": True, "meta": meta},
        "depends_on": {"nodes": [f"model.shop.{view_name}" for view_name in depends_on]},
        "owner": {"email": "ml@shop.test"}, "original_file_path": "models/services.yml"}}


def manifest(*nodes, services=()):
    return {"metadata": {"project_name": "shop", "adapter_type": "duckdb"},
            "nodes": {uid: node for part in nodes for uid, node in part.items()},
            "sources": {},
            "exposures": {uid: exposure for part in services for uid, exposure in part.items()}}


DIMENSIONS = [
    model("customers", {"entities": [entity("customer", ENTITY_KEYS["customer"]),
                                     entity("account", ENTITY_KEYS["account"])]},
          ["customer_id", "account_id"], {"customer_id": "varchar", "account_id": "varchar"}),
    model("stores", {"entities": [entity("store", ENTITY_KEYS["store"])]}, ["location_code"],
          {"location_code": "varchar"}),
]
VIEWS = [
    view("customer_features", ["customer"], ["order_count", "avg_basket"], ttl="30d"),
    view("store_features", ["store"], ["revenue", "visits"], ttl="12h", created="loaded_at"),
    view("customer_store_features", ["customer", "store"], ["visit_count"], ttl="90m"),
    view("account_features", ["customer", "account"], ["balance"], ttl=None),  # keys overlap: customer_id once
    view("basket_features", ["customer"], ["order_count"], ttl=""),  # a feature name customer_features has too
]
SERVICES = [
    service("explicit", ["store_features:visits", "customer_features:order_count", "store_features:revenue"],
            depends_on=["store_features", "customer_features"]),
    # the default: every feature of the feature views it depends on (the dimension model is not one)
    service("whole_views", depends_on=["customers", "customer_features", "customer_store_features"]),
    service("empty_list", [], depends_on=["store_features"]),
    # a list wins over depends_on: only the listed features, not all of customer_features'
    service("listed_and_depends_on", ["account_features:balance"],
            depends_on=["customer_features", "account_features"]),
    service("duplicates", ["customer_features:avg_basket", "customer_features:avg_basket", "account_features:balance",
                           "customer_features:order_count", "account_features:balance"],
            depends_on=["customer_features", "account_features"]),
    service("same_feature_name", ["customer_features:order_count", "basket_features:order_count"],
            depends_on=["customer_features", "basket_features"]),
]
PROJECT = manifest(*DIMENSIONS, *VIEWS, services=SERVICES)


def variant(*replacements, services=()):
    """The project with some nodes replaced or added, and these services instead of its own."""
    return manifest(*DIMENSIONS, *VIEWS, *replacements, services=services)


# -- the two sides ---------------------------------------------------------------------------------


def outcome(function, *args):
    """What a side returns, or Refused(its message)."""
    try:
        return function(*args)
    except (FeatureStoreError, CompilerError) as exc:
        return Refused(str(exc))


def _python_registry(manifest_):
    registry = registry_from_manifest(copy.deepcopy(manifest_))
    found = errors(validate(registry))
    if found:
        raise FeatureStoreError("; ".join(map(str, found)))
    return registry


def python_join_keys(manifest_, view_name):
    registry = _python_registry(manifest_)
    return list(registry.join_keys(registry.view(view_name)))


def python_training_views(manifest_, service_name, full_feature_names=False):
    """(view, keys, features, TTL seconds, created timestamp) of each view the SDK would join."""
    registry = _python_registry(manifest_)
    return [(request.view.name, [list(pair) for pair in request.keys], [list(pair) for pair in request.features],
             ttl_seconds(request.view), request.view.created_timestamp)
            for request in plan_retrieval(registry, None, service_name, full_feature_names)]


def _macros(manifest_, **context):
    return MacroNamespace("snapshot.sql", "training_set.sql", "durations.sql", "on_demand.sql",
                          graph=copy.deepcopy(manifest_), **context)


def dbt_join_keys(manifest_, view_name):
    return _macros(manifest_).feature_view_spec(manifest_["nodes"][f"model.shop.{view_name}"])["keys"]


def dbt_training_views(manifest_, service_name, full_feature_names=False):
    """The same, from the views training_set hands to point_in_time."""
    macros = _macros(manifest_, execute=True, model={"name": "churn_training_set"}, ref=lambda name: name,
                     relation_columns={LABELS: LABEL_COLUMNS})
    macros.point_in_time = lambda **arguments: arguments  # the shared template; here, what it is given
    views = macros.training_set(LABELS, service_name, "event_timestamp", full_feature_names)["views"]
    return [(v["relation"], [list(pair) for pair in v["join_keys"]], [list(pair) for pair in v["features"]],
             v["ttl_seconds"], v["created"]) for v in views]


def assert_both(expected, python, dbt):
    if isinstance(expected, Refused):
        assert isinstance(python, Refused), f"Python accepted: {python}"
        assert isinstance(dbt, Refused), f"the macros accepted: {dbt}"
        assert expected in python and expected in dbt, (python, dbt)
    else:
        assert python == expected
        assert dbt == expected


# -- join keys -------------------------------------------------------------------------------------

JOIN_KEYS = {
    "one entity": (PROJECT, "customer_features", ["customer_id"]),
    "key not named like its entity": (PROJECT, "store_features", ["location_code"]),
    "two entities": (PROJECT, "customer_store_features", ["customer_id", "location_code"]),
    "overlapping keys, each once": (PROJECT, "account_features", ["customer_id", "account_id"]),
    "unknown entity": (variant(view("ghost_features", ["customer", "ghost"], ["x"])), "ghost_features",
                       Refused("entity 'ghost'")),
    "no entities": (variant(view("lonely_features", [], ["x"])), "lonely_features", Refused("lonely_features")),
    "entities as one name": (variant(view("named_features", "customer", ["x"])), "named_features",
                             Refused("named_features")),
    "join_keys as one name": (
        variant(model("customers", {"entities": [entity("customer", "customer_id"),
                                                 entity("account", ["customer_id", "account_id"])]},
                      ["customer_id", "account_id"], {"customer_id": "varchar", "account_id": "varchar"})),
        "customer_features", ["customer_id"]),
    "entity without join_keys": (
        variant(model("customers", {"entities": [entity("customer", []),
                                                 entity("account", ["customer_id", "account_id"])]},
                      ["customer_id", "account_id"])),
        "customer_features", Refused("entity 'customer'")),
    "entity declared twice": (
        variant(model("more_customers", {"entities": [entity("customer", ["customer_id"])]}, ["customer_id"])),
        "customer_features", Refused("entity 'customer'")),
}


@pytest.mark.parametrize("case", JOIN_KEYS)
def test_join_keys_agree(case):
    manifest_, view_name, expected = JOIN_KEYS[case]
    assert_both(expected, outcome(python_join_keys, manifest_, view_name), outcome(dbt_join_keys, manifest_, view_name))


# -- feature services ------------------------------------------------------------------------------

CUSTOMER = ["customer_features", [["customer_id", "customer_id"]]]
STORE = ["store_features", [["location_code", "location_code"]]]
CUSTOMER_STORE = ["customer_store_features", [["customer_id", "customer_id"], ["location_code", "location_code"]]]
ACCOUNT = ["account_features", [["customer_id", "customer_id"], ["account_id", "account_id"]]]
BASKET = ["basket_features", [["customer_id", "customer_id"]]]
TTL = {"customer_features": 30 * 86400, "store_features": 12 * 3600, "customer_store_features": 90 * 60,
       "account_features": None, "basket_features": None}


def joined(view_, *features, full_names=False):
    """One view of a training set: its keys, features (as named in the output), TTL and created timestamp."""
    name, keys = view_
    pairs = [[feature, f"{name}__{feature}" if full_names else feature] for feature in features]
    return (name, keys, pairs, TTL[name], "loaded_at" if name == "store_features" else None)


SERVICE_CASES = {
    "listed features, grouped by view in listed order": (
        PROJECT, "explicit", False, [joined(STORE, "visits", "revenue"), joined(CUSTOMER, "order_count")]),
    "every feature of its views": (
        PROJECT, "whole_views", False, [joined(CUSTOMER, "order_count", "avg_basket"),
                                        joined(CUSTOMER_STORE, "visit_count")]),
    "an empty list is no list": (PROJECT, "empty_list", False, [joined(STORE, "revenue", "visits")]),
    "a list wins over depends_on": (PROJECT, "listed_and_depends_on", False, [joined(ACCOUNT, "balance")]),
    "duplicates once, first place": (
        PROJECT, "duplicates", False, [joined(CUSTOMER, "avg_basket", "order_count"), joined(ACCOUNT, "balance")]),
    "one name from two views": (PROJECT, "same_feature_name", False, Refused("order_count")),
    "one name from two views, full names": (
        PROJECT, "same_feature_name", True, [joined(CUSTOMER, "order_count", full_names=True),
                                             joined(BASKET, "order_count", full_names=True)]),
    "no such service": (PROJECT, "nope", False, Refused("nope")),
    "no such view": (variant(services=[service("s", ["nope_features:x"])]), "s", False, Refused("nope_features")),
    "no such feature": (variant(services=[service("s", ["customer_features:nope"])]), "s", False, Refused("nope")),
    "a join key is no feature": (
        variant(services=[service("s", ["customer_features:customer_id"])]), "s", False, Refused("customer_id")),
    "not view:feature": (variant(services=[service("s", ["customer_features"])]), "s", False,
                         Refused("customer_features")),
    "a name, not a list": (variant(services=[service("s", "customer_features:order_count")]), "s", False,
                           Refused("customer_features:order_count")),
    "no features at all": (variant(services=[service("labels_only", depends_on=["customers"])]), "labels_only", False,
                           Refused("labels_only")),
    "a listed view with an unknown entity": (
        variant(view("ghost_features", ["ghost"], ["x"]), services=[service("s", ["ghost_features:x"])]), "s", False,
        Refused("entity 'ghost'")),
    "a depended-on view without entities": (
        variant(view("lonely_features", [], ["x"]), services=[service("s", depends_on=["lonely_features"])]),
        "s", False, Refused("lonely_features")),
}


@pytest.mark.parametrize("case", SERVICE_CASES)
def test_training_set_views_agree(case):
    manifest_, name, full_names, expected = SERVICE_CASES[case]
    assert_both(expected, outcome(python_training_views, manifest_, name, full_names),
                outcome(dbt_training_views, manifest_, name, full_names))


# -- TTLs ------------------------------------------------------------------------------------------

TTLS = {"30d": 30 * 86400, "12h": 12 * 3600, "90m": 90 * 60, "2w": 14 * 86400, "45s": 45, None: None, "": None,
        "7 days": Refused("7 days"), 7: Refused("timed_features"), "0d": Refused("0d")}


@pytest.mark.parametrize("ttl", TTLS, ids=repr)
def test_ttl_seconds_agree(ttl):
    manifest_ = variant(view("timed_features", ["customer"], ["x"], ttl=ttl),
                        services=[service("s", depends_on=["timed_features"])])
    expected = TTLS[ttl]
    if not isinstance(expected, Refused):
        expected = [("timed_features", [["customer_id", "customer_id"]], [["x", "x"]], expected, None)]
    assert_both(expected, outcome(python_training_views, manifest_, "s"), outcome(dbt_training_views, manifest_, "s"))


# -- the registry tables (macros/registry.sql) read the same rules ----------------------------------


def _registry_rows(manifest_, table):
    macros = MacroNamespace("snapshot.sql", "training_set.sql", "durations.sql", "registry.sql",
                            graph=copy.deepcopy(manifest_), tojson=json.dumps)
    return macros._registry_rows(table)


def test_the_registry_tables_list_the_registrys_services_and_join_keys():
    registry = _python_registry(PROJECT)
    services = {row[0]: json.loads(row[1]) for row in _registry_rows(PROJECT, "services")}
    assert set(services) == set(registry.services)
    for name, references in services.items():  # grouped by view in the table; the same set of features
        assert sorted(references) == sorted(dict.fromkeys(registry.service(name).feature_refs)), name
    views = {row[0]: json.loads(row[3]) for row in _registry_rows(PROJECT, "feature_views")}
    assert views == {name: list(registry.join_keys(view)) for name, view in registry.feature_views.items()}


def test_an_ml_exposure_of_no_feature_view_is_not_a_feature_service():
    """A model trained elsewhere (an ml exposure of a dimension model only, listing no features)
    is none of the feature store's business: not a service on either side, not a compile error in
    every project's `dbt build`, not a registry error for every command."""
    project = variant(services=[service("trained_elsewhere", depends_on=["customers"]), SERVICES[0]])
    services = {row[0]: json.loads(row[1]) for row in _registry_rows(project, "services")}
    registry = _python_registry(project)  # validates: no "uses no features" error
    assert set(services) == set(registry.services) == {"explicit"}
    # listing `features:` makes it one, even an empty list (which both sides then refuse)
    listed = variant(services=[service("listed_nothing", [], depends_on=["customers"])])
    assert "listed_nothing" in registry_from_manifest(listed).services
    assert isinstance(outcome(python_training_views, listed, "listed_nothing"), Refused)
    assert isinstance(outcome(dbt_training_views, listed, "listed_nothing"), Refused)


# -- on-demand features (requests.plan_features, retrieval.job.on_demand_spec; the macro's _plan_on_demand) --

ON_DEMAND_LABELS = LABEL_COLUMNS + ["cart", "placed_at"]


def on_demand_view(name, request, inputs, features):
    """An on-demand view: features {name: (data_type, expression)}."""
    node = model(name, {"on_demand": {"request": request, "inputs": inputs}}, [])
    node[f"model.shop.{name}"]["columns"] = {
        feature: {"name": feature, "data_type": dtype, "description": f"{feature}.",
                  "config": {"meta": {"featurestore": {"expression": expression}}}}
        for feature, (dtype, expression) in features.items()}
    return node


ORDER_FEATURES = on_demand_view(
    "order_features", {"cart": "double", "placed_at": "timestamp", "coupon": "varchar"},
    ["store_features:revenue", "customer_features:avg_basket", "customer_features:order_count"],
    {"cart_ratio": ("double", "cart / nullif(avg_basket, 0)"), "hour": ("integer", "extract(hour from placed_at)"),
     "store_share": ("double precision", "cart / nullif(revenue, 0)")})


def python_on_demand(manifest_, service_name, full_feature_names=False, dialect="duckdb"):
    """(the views joined, the on_demand argument of point_in_time) as the SDK plans them."""
    from featurestore.requests import plan_features
    from featurestore.retrieval.job import on_demand_spec

    plan = plan_features(_python_registry(manifest_), None, service_name, full_feature_names)
    views = [(request.view.name, [list(pair) for pair in request.keys], [list(pair) for pair in request.features])
             for request in plan.views]
    missing = [name for name in plan.request_fields if name not in ON_DEMAND_LABELS]
    if missing:
        raise FeatureStoreError(f"the entity rows have no column '{missing[0]}'")
    spec = on_demand_spec(plan.on_demand, dialect)
    return views, {key: [list(item) if isinstance(item, tuple) else item for item in value] for key, value in spec.items()}


def dbt_on_demand(manifest_, service_name, full_feature_names=False, dialect="duckdb"):
    import re
    from types import SimpleNamespace

    macros = MacroNamespace("snapshot.sql", "training_set.sql", "durations.sql", "on_demand.sql", "push.sql", "spark.sql",
                            graph=copy.deepcopy(manifest_), execute=True, model={"name": "churn_training_set"},
                            ref=lambda name: name, relation_columns={LABELS: ON_DEMAND_LABELS},
                            modules=SimpleNamespace(re=re), adapter_type=dialect)
    macros.point_in_time = lambda **arguments: arguments
    arguments = macros.training_set(LABELS, service_name, "event_timestamp", full_feature_names)
    views = [(v["relation"], [list(pair) for pair in v["join_keys"]], [list(pair) for pair in v["features"]])
             for v in arguments["views"]]
    spec = arguments["on_demand"]
    return views, {key: [list(item) if isinstance(item, tuple) else item for item in value] for key, value in spec.items()}


ON_DEMAND_CASES = {
    "inputs as hidden columns, only those used, after the view's own features": (
        ["customer_features:order_count", "order_features:cart_ratio"], False, "duckdb",
        ([("customer_features", [["customer_id", "customer_id"]],
           [["order_count", "order_count"], ["avg_basket", "_fs_in_customer_features__avg_basket"]])],
         {"requests": [["cart", "double"]], "inputs": [["_fs_in_customer_features__avg_basket", "avg_basket"]],
          "features": [["cart_ratio", "cart / nullif(avg_basket, 0)", "double"]],
          "hidden": ["_fs_in_customer_features__avg_basket"]})),
    "a view read for an input only comes last; full names; types as the engine spells them": (
        ["order_features:store_share", "customer_features:order_count", "order_features:hour"], True, "spark",
        ([("customer_features", [["customer_id", "customer_id"]],
           [["order_count", "customer_features__order_count"]]),
          ("store_features", [["location_code", "location_code"]],
           [["revenue", "_fs_in_store_features__revenue"]])],
         {"requests": [["cart", "double"], ["placed_at", "timestamp"]],
          "inputs": [["_fs_in_store_features__revenue", "revenue"]],
          "features": [["order_features__store_share", "cart / nullif(revenue, 0)", "double"],
                       ["order_features__hour", "extract(hour from placed_at)", "integer"]],
          "hidden": ["_fs_in_store_features__revenue"]})),
    "postgres spells double": (
        ["order_features:cart_ratio"], False, "postgres",
        ([("customer_features", [["customer_id", "customer_id"]],
           [["avg_basket", "_fs_in_customer_features__avg_basket"]])],
         {"requests": [["cart", "double precision"]], "inputs": [["_fs_in_customer_features__avg_basket", "avg_basket"]],
          "features": [["cart_ratio", "cart / nullif(avg_basket, 0)", "double precision"]],
          "hidden": ["_fs_in_customer_features__avg_basket"]})),
    "an on-demand output named like a feature": (
        ["order_features:cart_ratio", "customer_features:cart_ratio"], False, "duckdb", Refused("cart_ratio")),
}


@pytest.mark.parametrize("case", ON_DEMAND_CASES)
def test_on_demand_features_in_training_sets_agree(case):
    features, full_names, dialect, expected = ON_DEMAND_CASES[case]
    views = [view("customer_features", ["customer"], ["order_count", "avg_basket", "cart_ratio"]), *VIEWS[1:]] \
        if "customer_features:cart_ratio" in features else VIEWS
    project = manifest(*DIMENSIONS, *views, ORDER_FEATURES, services=[service("s", features)])
    assert_both(expected, outcome(python_on_demand, project, "s", full_names, dialect),
                outcome(dbt_on_demand, project, "s", full_names, dialect))


def test_a_request_field_missing_from_the_entity_rows_is_refused_on_both_sides():
    fields = on_demand_view("basket_ratio", {"basket": "double"}, ["customer_features:avg_basket"],
                            {"ratio": ("double", "basket / avg_basket")})
    project = manifest(*DIMENSIONS, *VIEWS, fields, services=[service("s", ["basket_ratio:ratio"])])
    assert_both(Refused("'basket'"), outcome(python_on_demand, project, "s"), outcome(dbt_on_demand, project, "s"))
