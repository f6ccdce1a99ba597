"""The registry read from a real dbt manifest of the demo project."""

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from featurestore import FeatureStore, RegistryError
from featurestore.cli import app

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

runner = CliRunner()


def test_list_json_shows_views_entities_and_service(demo_project):
    result = runner.invoke(app, ["list", "--json", "-p", str(demo_project)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    views = {view["name"]: view for view in data["feature_views"]}
    assert set(views) == {"customer_features", "store_features", "customer_product_features", "customer_live_features", "cart_events", "order_events"}
    assert {e["name"]: e["join_keys"] for e in data["entities"]} == {
        "customer": ["customer_id"], "store": ["store_id"], "product_type": ["product_type"]}
    assert views["customer_product_features"]["join_keys"] == ["customer_id", "product_type"]
    customer = {f["name"]: f for f in views["customer_features"]["features"]}
    assert set(customer) == {"total_orders_30d", "avg_order_value_30d", "days_since_last_order",
                             "customer_segment", "lifetime_value"}
    for feature in customer.values():
        assert feature["type"] and feature["description"]
    assert customer["total_orders_30d"]["window"] == "30d"
    services = {s["name"]: s for s in data["feature_services"]}
    assert "customer_features:total_orders_30d" in services["churn_model"]["features"]


def test_registry_objects_are_frozen_and_resolve_references(demo_project):
    registry = FeatureStore(demo_project).registry
    view, feature = registry.resolve("store_features:revenue_28d")
    assert (view.name, feature.dtype) == ("store_features", "decimal(18,2)")
    assert view.ttl.days == 2 and view.online
    assert "customer_features" in view.relation_name or "store_features" in view.relation_name
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.online = False
    with pytest.raises(RegistryError, match="no feature 'nope'"):
        registry.resolve("store_features:nope")
    with pytest.raises(RegistryError, match="No feature view named 'ghost'"):
        registry.resolve("ghost:x")
    with pytest.raises(RegistryError, match="not of the form"):
        registry.resolve("revenue_28d")


def test_describe_view_and_service(demo_project):
    result = runner.invoke(app, ["describe", "customer_product_features", "--json", "-p", str(demo_project)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entities"] == ["customer", "product_type"]
    result = runner.invoke(app, ["describe", "churn_model", "-p", str(demo_project)])
    assert result.exit_code == 0 and "store_features:orders_7d" in result.stdout
    result = runner.invoke(app, ["describe", "no_such_thing", "-p", str(demo_project)])
    assert result.exit_code == 1 and "neither a feature view" in result.output


def test_demo_project_validates_clean(demo_project):
    result = runner.invoke(app, ["validate", "-p", str(demo_project)])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.stdout
