"""On-demand features without a warehouse: the registry's reading of them, planning (inputs as
hidden columns), every `validate` rule on hand-built manifests, and the online reader's
evaluation (DuckDB, over an in-memory store) — request fields checked, statuses, styles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from featurestore import ondemand, sql
from featurestore.errors import RequestError
from featurestore.online.ondemand import RequestFieldError
from featurestore.online.reader import OnlineReader
from featurestore.registry import OnDemandView, registry_from_manifest
from featurestore.requests import plan_features, plan_retrieval
from featurestore.validate import validate
from manifests import DIMS, exposure, manifest, model
from test_online_reader import NOW, STORE

UTC = timezone.utc


def on_demand(name, request, inputs, features):
    """An on-demand view's node: features {name: (data_type, expression)}."""
    node = model(name, {"on_demand": {"request": request, "inputs": inputs}}, {})
    node["columns"] = {feature: {"data_type": dtype, "description": feature,
                                 "config": {"meta": {"featurestore": {"expression": expression}}}}
                       for feature, (dtype, expression) in features.items()}
    node["patch_path"] = "p://models/_on_demand.yml"
    return node


CUSTOMERS = model("customer_features", {"entities": ["customer"], "event_timestamp": "ts", "ttl": "2d", "online": True},
                  {"customer_id": "varchar", "ts": "timestamp", "orders": "bigint", "value": "decimal(18,2)"})
STORES = model("store_features", {"entities": ["store"], "event_timestamp": "ts", "online": True},
               {"store_id": "integer", "ts": "timestamp", "revenue": "decimal(18,2)", "opened": "timestamp"})
ORDER = on_demand("order_features", {"cart": "double", "placed_at": "timestamp"},
                  ["customer_features:value", "customer_features:orders", "store_features:opened"],
                  {"cart_ratio": ("double", "cart / nullif(value, 0)"),
                   "per_order": ("double", "cart / nullif(orders, 0)"),
                   "big": ("boolean", "cart > 2 * value"),
                   "hour": ("integer", "extract(hour from placed_at)"),
                   "days_open": ("bigint", "date_diff('day', opened, placed_at)")})
REGISTRY = registry_from_manifest(manifest([DIMS, CUSTOMERS, STORES, ORDER],
                                           [exposure("scoring", ["customer_features", "order_features"],
                                                     ["customer_features:orders", "order_features:cart_ratio"])]))


def problems_of(*nodes, adapter="duckdb"):
    built = manifest([DIMS, CUSTOMERS, STORES, *nodes])
    built["metadata"]["adapter_type"] = adapter
    return [(p.rule, p.column, p.message) for p in validate(registry_from_manifest(built))
            if p.model in {node["name"] for node in nodes} and p.severity == "error"]


# -- registry and planning ---------------------------------------------------------------------------


def test_the_registry_reads_an_on_demand_view():
    view = REGISTRY.on_demand_view("order_features")
    assert isinstance(view, OnDemandView) and "order_features" not in REGISTRY.feature_views
    assert dict(view.request) == {"cart": "double", "placed_at": "timestamp"}
    assert view.inputs == ("customer_features:value", "customer_features:orders", "store_features:opened")
    assert view.expression(view.feature("cart_ratio")) == "cart / nullif(value, 0)"
    assert REGISTRY.resolve("order_features:big") == (view, view.feature("big"))
    assert REGISTRY.service("scoring").feature_refs == ("customer_features:orders", "order_features:cart_ratio")
    assert [p for p in validate(REGISTRY) if p.model == "order_features"] == []


def test_a_plan_reads_the_inputs_as_hidden_columns():
    plan = plan_features(REGISTRY, ["customer_features:orders", "order_features:cart_ratio", "order_features:days_open"],
                         None, False)
    customers, stores = plan.views  # only the inputs the requested expressions use
    assert customers.features == (("orders", "orders"), ("value", "_fs_in_customer_features__value"))
    assert customers.hidden == ("_fs_in_customer_features__value",)
    assert stores.features == (("opened", "_fs_in_store_features__opened"),) and stores.hidden == stores.features[0][1:]
    (request,) = plan.on_demand
    assert request.features == (("cart_ratio", "cart_ratio"), ("days_open", "days_open"))
    assert plan.request_fields == {"cart": "double", "placed_at": "timestamp"}
    full = plan_features(REGISTRY, ["order_features:big"], None, True)
    assert full.on_demand[0].features == (("big", "order_features__big"),)
    with pytest.raises(RequestError, match="On-demand feature.*order_features:big.*cannot be used here"):
        plan_retrieval(REGISTRY, ["order_features:big"], None, False)


# -- validate ----------------------------------------------------------------------------------------


def test_validate_refuses_unknown_inputs_and_on_demand_inputs():
    assert problems_of(on_demand("od", {"x": "double"}, ["nope:value", "customer_features:nope", "order_features:big"],
                                 {"y": ("double", "x")}), ORDER)[:3] == [
        ("unknown-input", None, "input 'nope:value': there is no feature view 'nope' (inputs are 'view:feature')"),
        ("unknown-input", None, "input 'customer_features:nope': 'customer_features' has no feature 'nope'"),
        ("unknown-input", None, "input 'order_features:big' is an on-demand feature; inputs must be features of "
                                "feature views (on-demand features of on-demand features are not supported)")]


@pytest.mark.parametrize("features, rule, column, words", [
    ({"y": ("double", "x / nullif(value, ")}, "bad-expression", "y", "cannot be parsed as duckdb SQL"),
    ({"y": ("double", "x + orders")}, "bad-expression", "y", "refers to 'orders', neither a request field nor an input"),
    ({"y": ("double", "(select 1)")}, "bad-expression", "y", "not a query"),
    ({"y": ("double", "t.x")}, "bad-expression", "y", "without a table"),
    ({"y": ("double", None)}, "missing-expression", "y", "needs a data_type and"),
    ({"y": (None, "x")}, "missing-expression", "y", "needs a data_type and"),
    ({"y": ("blob_of_bits", "x")}, "unknown-type", "y", "is not a type featurestore knows"),
    ({"x": ("double", "x")}, "name-collision", "x", "has the name of a request field or input"),
    ({"customer_id": ("double", "x")}, "reserved-name", "customer_id", "a join key, a timestamp"),
])
def test_validate_names_the_feature_at_fault(features, rule, column, words):
    found = problems_of(on_demand("od", {"x": "double"}, ["customer_features:value"], features))
    assert [(r, c) for r, c, _ in found] == [(rule, column)], found
    assert words in found[0][2] and found[0][0] == rule


def test_validate_refuses_bad_request_fields():
    found = problems_of(on_demand("od", {"x": "tensor", "ts": "timestamp", "value": "double", "_fs_row": "integer"},
                                  ["customer_features:value"], {"y": ("double", "x")}))
    assert [(rule, column) for rule, column, _ in found] == [
        ("unknown-type", "x"), ("name-collision", "value"), ("reserved-name", "ts"), ("reserved-name", "_fs_row")]
    assert "'ts' is a join key, a timestamp" in found[2][2]
    assert "order_features" in str(validate(REGISTRY)) or True


def test_validate_reads_expressions_in_the_projects_dialect():
    postgres_cast = on_demand("od", {"x": "double"}, [], {"y": ("bigint", "x::bigint")})
    assert problems_of(postgres_cast, adapter="postgres") == []
    assert problems_of(postgres_cast, adapter="snowflake")[0][2].endswith(
        "On-demand features are not supported on the 'snowflake' engine (no SQL dialect for it in "
        "featurestore.ondemand.SQLGLOT_DIALECTS).")


def test_a_service_may_list_on_demand_features():
    service = exposure("svc", ["order_features"], ["order_features:big", "order_features:nope"])
    problems = [p for p in validate(registry_from_manifest(manifest([DIMS, CUSTOMERS, STORES, ORDER], [service])))
                if p.model == "svc" and p.severity == "error"]
    assert [(p.rule, p.kind, "nope" in p.message) for p in problems] == [("unknown-feature-reference", "exposure", True)]


# -- the expression rules ------------------------------------------------------------------------------


def test_expressions_are_transpiled_to_duckdb_with_the_engines_cast_spelling():
    assert ondemand.duckdb_cast("x::bigint", "bigint", "postgres") == "CAST((CAST(x AS BIGINT)) AS BIGINT)"
    assert ondemand.column_type("double", "postgres") == "double precision"
    assert ondemand.column_type("double precision", "spark") == "double"
    assert ondemand.column_type("varchar(16)", "spark") == "string"
    assert ondemand.column_type("varchar(16)", "duckdb") == "varchar(16)"


def test_the_training_set_sql_computes_them_in_a_scope_of_request_fields_and_inputs():
    text = sql.render("point_in_time", dialect="postgres", entities="_fs_entities", entity_columns=["customer_id", "ts", "cart"],
                      timestamp="ts", views=[{"alias": "_fs_v0", "relation": "cf", "join_keys": [("customer_id", "customer_id")],
                                              "features": [("value", "_fs_in_cf__value")], "ttl_seconds": None,
                                              "strategy": "interval", "created": None, "known_at": None}],
                      match_columns=True, ordered=True, event_columns=False,
                      on_demand={"requests": [("cart", "double precision")], "inputs": [("_fs_in_cf__value", "value")],
                                 "features": [("ratio", "cart / nullif(value, 0)", "double precision")],
                                 "hidden": ["_fs_in_cf__value"]})
    outer = text.split("from (")[0]
    assert '_fs_scope._fs_c3 as "_fs_in_cf__value"' not in outer and '_fs_scope._fs_c5 as "_fs_row"' not in outer
    assert 'cast((cart / nullif(value, 0)) as double precision) as "ratio"' in outer
    assert 'cast(_fs_pit."cart" as double precision) as "cart"' in text
    assert '_fs_pit."_fs_in_cf__value" as "value"' in text
    assert text.rstrip().endswith("order by _fs_scope._fs_c5")


# -- the online read --------------------------------------------------------------------------------


ZONES = [timezone.utc, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5, minutes=-30))]


def test_the_reader_computes_them_from_the_vector_and_the_request():
    reader = OnlineReader(REGISTRY, STORE)
    placed = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    rows = [{"customer_id": customer, "store_id": 7, "cart": cart, "placed_at": placed.astimezone(zone)}
            for customer, cart, zone in [("fresh", 100, ZONES[1]), ("nulls", 0.0, ZONES[2]), ("old", 5.0, ZONES[0]),
                                         ("nobody", None, ZONES[1])]]
    columns = reader.read(["order_features:cart_ratio", "order_features:per_order", "order_features:big",
                           "order_features:hour", "order_features:days_open", "customer_features:orders"], rows, now=NOW)
    by_name = {column.name: column for column in columns}
    assert [column.name for column in columns] == ["customer_id", "store_id", "cart", "placed_at", "orders", "cart_ratio",
                                                   "per_order", "big", "hour", "days_open"]
    assert by_name["cart_ratio"].values == [pytest.approx(100 / 176.8), 0.0, None, None]
    assert by_name["per_order"].values == [pytest.approx(100 / 3), None, None, None]  # NULL orders, expired, missing
    assert by_name["big"].values == [False, False, None, None]
    assert by_name["hour"].values == [23, 23, 23, 23]  # every zone read as its UTC instant
    assert by_name["days_open"].values == [2526, 2526, 2526, 2526]
    assert by_name["per_order"].statuses == ["PRESENT", "NULL_VALUE", "NULL_VALUE", "NULL_VALUE"]
    assert by_name["placed_at"].values[0] == datetime(2026, 12, 1, 23, 30)
    feast = OnlineReader(REGISTRY, STORE, "feast").read(["order_features:per_order"], rows, now=NOW)
    assert feast[-1].statuses == ["PRESENT"] * 4  # Feast: a computed value is PRESENT, also when NULL


@pytest.mark.parametrize("rows, words", [
    ([{"customer_id": "fresh", "store_id": 7, "placed_at": NOW}], r"needs the field 'cart' \(double\) for the on-demand feature\(s\) order_features:cart_ratio;"),
    ([{"customer_id": "fresh", "store_id": 7, "cart": "12", "placed_at": NOW}], "Request field 'cart' row 0: '12' is not a double"),
    ([{"customer_id": "fresh", "store_id": 7, "cart": True, "placed_at": NOW}], "'cart' row 0: True is not a double"),
    ([{"customer_id": "fresh", "store_id": 7, "cart": 1.0, "placed_at": "yesterday"}], "'placed_at' row 0: 'yesterday'"),
])
def test_a_missing_or_mistyped_request_field_is_the_callers_mistake(rows, words):
    with pytest.raises(RequestFieldError, match=words) as caught:
        OnlineReader(REGISTRY, STORE).read(["order_features:cart_ratio", "order_features:hour"], rows, now=NOW)
    assert caught.value.status == 400


def test_the_server_takes_request_fields_in_entities_and_refuses_other_columns():
    from featurestore.server.serving import OnlineServer

    server = OnlineServer(REGISTRY, STORE)
    body = {"features": ["order_features:cart_ratio"],
            "entities": {"customer_id": ["fresh"], "cart": [17.68], "placed_at": ["2026-12-01T10:00:00+09:00"]}}
    response, served = server.get_online_features(body, now=NOW)
    # placed_at is a field of the view, though cart_ratio does not use it: taken, not answered
    assert response["metadata"]["feature_names"] == ["customer_id", "cart", "cart_ratio"]
    assert response["results"][2]["values"] == [pytest.approx(0.1)]
    assert served.references == [None, None, "order_features:cart_ratio"]  # logged with the request
    with pytest.raises(RequestError, match="Unknown entity column"):
        server.get_online_features({**body, "entities": {**body["entities"], "basket": [1]}}, now=NOW)


def test_one_query_per_request_shape_is_cached():
    reader = OnlineReader(REGISTRY, STORE)
    rows = [{"customer_id": "fresh", "store_id": 7, "cart": 1.5, "placed_at": NOW}]
    reader.read(["order_features:cart_ratio"], rows, now=NOW)
    reader.read(["order_features:cart_ratio"], rows, now=NOW)
    reader.read(["order_features:cart_ratio"], rows * 3, now=NOW)
    assert len(reader._on_demand._queries) == 2
    assert Decimal  # (decimal inputs are bound as decimals: see cart_ratio above)


@pytest.mark.parametrize("engine, expected", [("postgres", 3.0), ("duckdb", 3.5), ("spark", 3.5)])
def test_integer_division_keeps_the_engines_meaning_online(engine, expected):
    """PostgreSQL's integer / integer truncates; DuckDB's and Spark's do not. The transpiled
    expression knows the operands' declared types, so the online value is the engine's."""
    import duckdb

    cast = ondemand.duckdb_cast("a / b", "double precision", engine, (("a", "integer"), ("b", "bigint")))
    value = duckdb.connect().execute(f"select {cast} from (values (7, 2)) as {ondemand.SCOPE}(a, b)").fetchone()[0]
    assert value == expected


def test_request_fields_typed_on_a_command_line_are_read_as_their_types():
    rows = {"customer_id": ["fresh"], "cart": ["17.68"], "placed_at": ["2026-12-01T10:00:00+09:00"]}
    columns = OnlineReader(REGISTRY, STORE).read(["order_features:cart_ratio", "order_features:hour"], rows, now=NOW,
                                                 keys_from_text=True)
    assert [column.values for column in columns[-2:]] == [[pytest.approx(0.1)], [1]]
    with pytest.raises(RequestFieldError, match="'cart' row 0: 'lots' is not a double"):
        OnlineReader(REGISTRY, STORE).read(["order_features:cart_ratio"], {**rows, "cart": ["lots"]}, now=NOW,
                                           keys_from_text=True)


def test_spark_timestamps_are_read_as_utc_wall_clocks_online():
    """Spark's `timestamp` is session-local; our sessions run in UTC, so online it is DuckDB's naive UTC."""
    assert ondemand.duckdb_cast("extract(hour from t)", "integer", "spark", (("t", "timestamp"),)) == \
        "TRY_CAST((EXTRACT(HOUR FROM _fs_inputs.t)) AS INT)"
    found = problems_of(on_demand("od", {"t": "timestamp"}, [], {"h": ("integer", "extract(hour from t)")}),
                        adapter="spark")
    assert found == []
