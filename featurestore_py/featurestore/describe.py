"""Plain-data descriptions of registry objects, shared by `list --json`, `describe` and the catalog."""

from __future__ import annotations

from .registry import Entity, FeatureService, FeatureView, OnDemandView, Registry


def entity_dict(entity: Entity) -> dict:
    return {
        "name": entity.name,
        "join_keys": list(entity.join_keys),
        "description": entity.description,
        "declared_in": entity.declared_in,
        "yaml_path": entity.yaml_path,
    }


def view_dict(registry: Registry, view: FeatureView) -> dict:
    return {
        "name": view.name,
        "description": view.description,
        "entities": list(view.entities),
        "join_keys": list(registry.join_keys(view)),
        "event_timestamp": view.event_timestamp,
        "created_timestamp": view.created_timestamp,
        "ttl": view.ttl_text,
        "online": view.online,
        "owner": view.owner,
        "tags": list(view.tags),
        "relation": view.relation_name,
        "yaml_path": view.yaml_path,
        "features": [_feature_dict(feature) for feature in view.features],
    }


def _feature_dict(feature, **extra) -> dict:
    return {"name": feature.name, "reference": feature.reference, "type": feature.dtype,
            "description": feature.description, "window": feature.window, **extra}


def on_demand_view_dict(view: OnDemandView) -> dict:
    return {
        "name": view.name,
        "description": view.description,
        "request": dict(view.request),
        "inputs": list(view.inputs),
        "yaml_path": view.yaml_path,
        "features": [_feature_dict(feature, window=None, expression=view.expression(feature))
                     for feature in view.features],
    }


def service_dict(service: FeatureService) -> dict:
    return {
        "name": service.name,
        "description": service.description,
        "owner": service.owner,
        "features": list(service.feature_refs),
        "depends_on": list(service.depends_on),
        "yaml_path": service.yaml_path,
    }


def registry_dict(registry: Registry) -> dict:
    return {
        "project": registry.project_name,
        "adapter": registry.adapter_type,
        "entities": [entity_dict(e) for e in registry.entities.values()],
        "feature_views": [view_dict(registry, v) for v in registry.feature_views.values()],
        "feature_services": [service_dict(s) for s in registry.services.values()],
        "on_demand_views": [on_demand_view_dict(v) for v in registry.on_demand_views.values()],
    }
