"""The feature registry: the only reader of dbt's `manifest.json`.

Feature-store metadata lives in dbt YAML under `config: meta: featurestore:`:

* on any model, `entities: [{name, join_keys, description}]` declares entities;
* on a feature-view model, `entities: [names]`, `event_timestamp`, `created_timestamp`, `ttl`,
  `online`, `owner`, `tags` make it a feature view; every column that is neither a join key nor
  a timestamp is a feature;
* on a model whose SQL is `{{ featurestore.on_demand_view() }}`, `on_demand: {request: {field: type},
  inputs: [view:feature]}` makes it an on-demand view: each column is a feature computed at request
  time by its `expression` (column meta) from the request fields and the inputs (featurestore.ondemand);
* an exposure of `type: ml` is a feature service; `features: ["view:feature", ...]` in its meta
  picks features, otherwise it uses every feature of the views it depends on.

This module turns that into frozen objects and reads nothing else of the manifest. It does not
judge the metadata: `validate.py` does, so that one run can report every problem at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .durations import parse_duration
from .errors import ManifestError, NotFound, RegistryError

META_KEY = "featurestore"


@dataclass(frozen=True)
class Entity:
    """Something features describe, identified by one or more join keys."""

    name: str
    join_keys: tuple[str, ...]
    description: str
    declared_in: str  # the model whose YAML declares it
    yaml_path: str

    @property
    def join_key(self) -> str:
        """The join key of a single-key entity (Feast's `Entity.join_key`); a composite entity has
        several: read `join_keys`."""
        if len(self.join_keys) != 1:
            raise RegistryError(f"Entity '{self.name}' has {len(self.join_keys)} join keys "
                                f"({', '.join(self.join_keys) or 'none'}); read .join_keys.")
        return self.join_keys[0]


@dataclass(frozen=True)
class Field:
    """A declared column that is not a feature (a join key), as Feast's `Field`: name, dtype, description."""

    name: str
    dtype: str | None
    description: str = ""


@dataclass(frozen=True)
class Feature:
    """One feature column of a feature view."""

    name: str
    view: str
    dtype: str | None
    description: str
    window: str | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def reference(self) -> str:
        return f"{self.view}:{self.name}"


@dataclass(frozen=True)
class FeatureView:
    """A dbt model whose rows are feature values of one or more entities over time."""

    name: str
    unique_id: str
    relation_name: str
    description: str
    entities: tuple[str, ...]
    event_timestamp: str | None
    created_timestamp: str | None
    ttl_text: str | None
    online: bool
    owner: str | None
    tags: tuple[str, ...]
    features: tuple[Feature, ...]
    columns: Mapping[str, str | None]  # every declared column -> data_type
    materialized: str
    yaml_path: str
    sql_path: str
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # all of config.meta.featurestore
    raw_code: str = ""  # the model's SQL as written (validate reads patterns in it)
    compiled_code: str = ""  # the SQL as dbt compiled it (after dbt compile/build), else empty
    upstream: tuple[tuple[str, str, str], ...] = ()  # (unique_id, name, resource type) of every ancestor

    @property
    def ttl(self) -> timedelta | None:
        """The TTL as a timedelta, None when the view has none; ValueError if it is malformed."""
        return parse_duration(self.ttl_text) if self.ttl_text else None

    @property
    def takes_pushes(self) -> bool:
        """`push: true` (a YAML boolean) in its meta: rows pushed to it are landed and written online."""
        return self.meta.get("push") is True

    @property
    def entity_columns(self) -> tuple[Field, ...]:
        """The view's join-key columns, in their YAML order (Feast's `FeatureView.entity_columns`)."""
        features = {feature.name for feature in self.features}
        timestamps = {self.event_timestamp, self.created_timestamp}
        return tuple(Field(name, dtype) for name, dtype in self.columns.items()
                     if name not in features and name not in timestamps)

    @property
    def schema(self) -> tuple[Field | Feature, ...]:
        """The join-key columns, then the features (Feast's `FeatureView.schema`), each with .name and .dtype."""
        return self.entity_columns + self.features

    def companion_relation(self, suffix: str) -> str:
        """A table the materialization keeps beside the view's (`__build`, `__rejected`), named
        and quoted the way dbt quoted the view's relation."""
        name = self.relation_name
        if name and name[-1] in "\"`":
            return name[:-1] + suffix + name[-1]
        return name + suffix

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        known = ", ".join(f.name for f in self.features)
        raise NotFound(f"Feature view '{self.name}' has no feature '{name}'; it has: {known}.")


@dataclass(frozen=True)
class OnDemandView:
    """A dbt model of features computed at request time: each feature's `expression` (its column's
    `meta: featurestore: expression`, SQL of the project's engine) over the request fields and the
    input features, by bare name; see featurestore.ondemand."""

    name: str
    unique_id: str
    description: str
    relation_name: str  # the zero-row view `dbt build` makes (it checks every expression)
    request: Mapping[str, str | None]  # request field -> its declared type
    inputs: tuple[str, ...]  # "view:feature" references
    features: tuple[Feature, ...]  # each with meta["expression"]
    yaml_path: str
    sql_path: str
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # config.meta.featurestore.on_demand
    online: bool = True  # computed wherever its inputs are read

    @property
    def columns(self) -> Mapping[str, str | None]:
        """Every feature -> its data_type (the columns of the zero-row view)."""
        return MappingProxyType({feature.name: feature.dtype for feature in self.features})

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        known = ", ".join(f.name for f in self.features)
        raise NotFound(f"On-demand view '{self.name}' has no feature '{name}'; it has: {known}.")

    @staticmethod
    def expression(feature: Feature) -> str | None:
        value = feature.meta.get("expression")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FeatureViewProjection:
    """The features a service takes from one view (Feast's `FeatureViewProjection`)."""

    name: str  # the view
    features: tuple[Feature, ...]
    name_alias: str | None = None

    def name_to_use(self) -> str:
        return self.name_alias or self.name


@dataclass(frozen=True)
class FeatureService:
    """An ML model (a dbt exposure of type `ml`) and the features it is trained and served on."""

    name: str
    description: str
    owner: str | None
    feature_refs: tuple[str, ...]
    depends_on: tuple[str, ...]  # model names
    explicit: bool  # True when the YAML lists features; False when derived from depends_on
    yaml_path: str
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # feature_refs grouped by view, with the views' Feature objects (references that do not
    # resolve are left out: validate reports them)
    feature_view_projections: tuple[FeatureViewProjection, ...] = ()


@dataclass(frozen=True)
class Registry:
    """Everything the feature store knows about the dbt project, read from one manifest."""

    project_name: str
    adapter_type: str
    entities: Mapping[str, Entity]
    feature_views: Mapping[str, FeatureView]
    services: Mapping[str, FeatureService]
    entity_declarations: tuple[Entity, ...]  # every declaration, duplicates included
    model_columns: Mapping[str, tuple[str, ...]]  # model name -> declared columns
    exposures_using: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))  # model -> exposures
    on_demand_views: Mapping[str, OnDemandView] = field(default_factory=lambda: MappingProxyType({}))

    # -- lookups -----------------------------------------------------------------------------
    def view(self, name: str) -> FeatureView:
        try:
            return self.feature_views[name]
        except KeyError:
            raise NotFound(
                f"No feature view named '{name}'. Feature views: {', '.join(sorted(self.feature_views)) or 'none'}."
            ) from None

    def entity(self, name: str) -> Entity:
        try:
            return self.entities[name]
        except KeyError:
            raise NotFound(
                f"No entity named '{name}'. Entities: {', '.join(sorted(self.entities)) or 'none'}."
            ) from None

    def service(self, name: str) -> FeatureService:
        try:
            return self.services[name]
        except KeyError:
            raise NotFound(
                f"No feature service named '{name}'. Services (exposures of type ml): "
                f"{', '.join(sorted(self.services)) or 'none'}."
            ) from None

    def on_demand_view(self, name: str) -> OnDemandView:
        try:
            return self.on_demand_views[name]
        except KeyError:
            raise NotFound(f"No on-demand view named '{name}'. On-demand views: "
                           f"{', '.join(sorted(self.on_demand_views)) or 'none'}.") from None

    def join_keys(self, view: FeatureView) -> tuple[str, ...]:
        """The view's join keys: its entities' keys in the order the entities are listed."""
        keys: list[str] = []
        for entity_name in view.entities:
            for key in self.entity(entity_name).join_keys:
                if key not in keys:
                    keys.append(key)
        return tuple(keys)

    def resolve(self, reference: str) -> tuple[FeatureView, Feature]:
        """`view:feature` -> (view, feature), with an error that names what is missing."""
        view_name, sep, feature_name = reference.partition(":")
        if not sep or not view_name or not feature_name:
            raise RegistryError(
                f"Feature reference '{reference}' is not of the form 'view:feature', "
                "e.g. 'customer_features:total_orders_30d'."
            )
        view = self.view(view_name) if view_name not in self.on_demand_views else self.on_demand_views[view_name]
        return view, view.feature(feature_name)


# -- reading the manifest ------------------------------------------------------------------------


def load_manifest(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ManifestError(f"No dbt manifest at {path}; run `featurestore parse` (dbt parse).") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"Cannot read the dbt manifest {path}: {exc}") from None


def registry_from_manifest(manifest: Mapping[str, Any]) -> Registry:
    metadata = manifest.get("metadata", {})
    nodes = manifest.get("nodes", {})
    models = [node for node in nodes.values() if node.get("resource_type") == "model"]

    declarations = tuple(
        declaration for model in models for declaration in _entity_declarations(model)
    )
    entities: dict[str, Entity] = {}
    for declaration in declarations:
        entities.setdefault(declaration.name, declaration)

    views = {}
    for model in models:
        meta = _featurestore_meta(model.get("config", {}))
        if "event_timestamp" in meta or ("entities" in meta and _is_view_meta(meta)) or isinstance(meta.get("entities"), str):
            view = _feature_view(model, meta, entities, _upstream(model, nodes, manifest.get("sources", {})))
            views[view.name] = view
    on_demand = {}
    for model in models:
        meta = _featurestore_meta(model.get("config", {}))
        if "on_demand" in meta and model["name"] not in views:
            on_demand[model["name"]] = _on_demand_view(model, meta)
    exposures_using: dict[str, list[str]] = {}
    for exposure in manifest.get("exposures", {}).values():
        for uid in exposure.get("depends_on", {}).get("nodes", []):
            if uid in nodes:
                exposures_using.setdefault(nodes[uid]["name"], []).append(exposure["name"])

    services = {}
    for exposure in manifest.get("exposures", {}).values():
        if exposure.get("type") == "ml" and _is_feature_service(exposure, nodes, views):
            service = _feature_service(exposure, nodes, views)
            services[service.name] = service

    return Registry(
        project_name=metadata.get("project_name", ""),
        adapter_type=metadata.get("adapter_type", ""),
        entities=MappingProxyType(entities),
        feature_views=MappingProxyType(views),
        services=MappingProxyType(services),
        entity_declarations=declarations,
        model_columns=MappingProxyType(
            {model["name"]: tuple(model.get("columns", {})) for model in models}
        ),
        exposures_using=MappingProxyType({name: tuple(names) for name, names in exposures_using.items()}),
        on_demand_views=MappingProxyType(on_demand),
    )


def _is_feature_service(exposure: Mapping[str, Any], nodes: Mapping[str, Any], views: Mapping[str, FeatureView]) -> bool:
    """An ml exposure is a feature service when it lists `features:` or depends on a feature view;
    one of other models only (a model trained elsewhere) is none of the feature store's business."""
    if "features" in _featurestore_meta(exposure.get("config") or exposure):
        return True
    return any(uid in nodes and nodes[uid].get("name") in views and nodes[uid].get("resource_type") == "model"
               for uid in exposure.get("depends_on", {}).get("nodes", []))


def _upstream(model: Mapping[str, Any], nodes: Mapping[str, Any], sources: Mapping[str, Any]) -> tuple:
    """Every model, seed, snapshot and source the model is computed from, nearest first."""
    seen, order, queue = set(), [], list(model.get("depends_on", {}).get("nodes", []))
    while queue:
        uid = queue.pop(0)
        if uid in seen:
            continue
        seen.add(uid)
        node = nodes.get(uid) or sources.get(uid)
        if node is None:
            continue
        label = f"{node.get('source_name')}.{node['name']}" if node.get("resource_type") == "source" else node["name"]
        order.append((uid, label, node.get("resource_type", "")))
        queue += node.get("depends_on", {}).get("nodes", [])
    return tuple(order)


def _featurestore_meta(config: Mapping[str, Any]) -> dict:
    meta = (config or {}).get("meta") or {}
    value = meta.get(META_KEY) or {}
    return value if isinstance(value, dict) else {}


def _is_view_meta(meta: Mapping[str, Any]) -> bool:
    """`entities` on a feature view is a list of names; on a dimension model, of declarations."""
    entities = meta.get("entities")
    return isinstance(entities, list) and all(isinstance(item, str) for item in entities)


def _yaml_path(node: Mapping[str, Any]) -> str:
    patch = node.get("patch_path") or ""
    return patch.split("://", 1)[-1] if patch else node.get("original_file_path", "")


def _entity_declarations(model: Mapping[str, Any]) -> list[Entity]:
    meta = _featurestore_meta(model.get("config", {}))
    if _is_view_meta(meta):
        return []
    declared = []
    for item in meta.get("entities") or []:
        if not isinstance(item, dict):
            continue
        keys = item.get("join_keys") or []
        declared.append(
            Entity(
                name=str(item.get("name", "")),
                join_keys=tuple(str(k) for k in (keys if isinstance(keys, list) else [keys])),
                description=str(item.get("description") or ""),
                declared_in=model["name"],
                yaml_path=_yaml_path(model),
            )
        )
    return declared


def _feature_view(model: Mapping[str, Any], meta: Mapping[str, Any], entities: Mapping[str, Entity],
                  upstream: tuple = ()) -> FeatureView:
    listed = meta.get("entities") or []
    entity_names = tuple(str(name) for name in (listed if isinstance(listed, list) else [listed]))
    join_keys = {key for name in entity_names if name in entities for key in entities[name].join_keys}
    event_ts, created_ts = meta.get("event_timestamp"), meta.get("created_timestamp")
    not_features = join_keys | {event_ts, created_ts}
    columns = model.get("columns", {})
    stream_windows = _stream_windows(meta)
    features = tuple(
        Feature(
            name=name,
            view=model["name"],
            dtype=column.get("data_type"),
            description=column.get("description") or "",
            window=_featurestore_meta(column.get("config") or column).get("window") or stream_windows.get(name),
            meta=MappingProxyType(dict(_featurestore_meta(column.get("config") or column))),
        )
        for name, column in columns.items()
        if name not in not_features
    )
    ttl = meta.get("ttl")
    return FeatureView(
        name=model["name"],
        unique_id=model["unique_id"],
        relation_name=model.get("relation_name") or model["name"],
        description=model.get("description") or "",
        entities=entity_names,
        event_timestamp=event_ts,
        created_timestamp=created_ts,
        ttl_text=None if ttl in (None, "") else str(ttl),
        online=meta.get("online") is True,  # only a YAML boolean true; validate reports other values
        owner=meta.get("owner") if isinstance(meta.get("owner"), str) else None,
        tags=tuple(str(tag) for tag in meta.get("tags") or ()) if isinstance(meta.get("tags") or (), list) else (),
        features=features,
        columns=MappingProxyType({name: column.get("data_type") for name, column in columns.items()}),
        materialized=model.get("config", {}).get("materialized", ""),
        yaml_path=_yaml_path(model),
        sql_path=model.get("original_file_path", ""),
        meta=MappingProxyType(dict(meta)),
        raw_code=model.get("raw_code") or "",
        compiled_code=model.get("compiled_code") or "",
        upstream=upstream,
    )


def _stream_windows(meta: Mapping[str, Any]) -> dict[str, str]:
    """A streaming view's aggregate -> its window (declared once, under `stream: aggregates:`);
    streaming.stream_spec reads the block whole, and validate judges it."""
    stream = meta.get("stream")
    listed = stream.get("aggregates") if isinstance(stream, dict) else None
    return {entry["name"]: str(entry["window"]) for entry in listed or [] if isinstance(listed, list)
            and isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry.get("window")}


def _on_demand_view(model: Mapping[str, Any], meta: Mapping[str, Any]) -> OnDemandView:
    spec = meta.get("on_demand") if isinstance(meta.get("on_demand"), dict) else {}
    request = spec.get("request") if isinstance(spec.get("request"), dict) else {}
    inputs = spec.get("inputs") or []
    features = tuple(
        Feature(name=name, view=model["name"], dtype=column.get("data_type"),
                description=column.get("description") or "",
                meta=MappingProxyType(dict(_featurestore_meta(column.get("config") or column))))
        for name, column in model.get("columns", {}).items())
    return OnDemandView(
        name=model["name"], unique_id=model["unique_id"], description=model.get("description") or "",
        relation_name=model.get("relation_name") or model["name"], request=MappingProxyType({str(name): (None if kind is None else str(kind)) for name, kind in request.items()}),
        inputs=tuple(str(ref) for ref in (inputs if isinstance(inputs, list) else [inputs])),
        features=features, yaml_path=_yaml_path(model), sql_path=model.get("original_file_path", ""),
        meta=MappingProxyType(dict(spec)))


def _feature_service(
    exposure: Mapping[str, Any], nodes: Mapping[str, Any], views: Mapping[str, FeatureView]
) -> FeatureService:
    meta = _featurestore_meta(exposure.get("config") or exposure)
    depends_on = tuple(
        nodes[uid]["name"]
        for uid in exposure.get("depends_on", {}).get("nodes", [])
        if uid in nodes and nodes[uid].get("resource_type") == "model"
    )
    listed = meta.get("features")
    if listed:
        refs = tuple(str(ref) for ref in (listed if isinstance(listed, list) else [listed]))
    else:
        refs = tuple(f.reference for name in depends_on if name in views for f in views[name].features)
    owner = exposure.get("owner") or {}
    by_view: dict[str, list[Feature]] = {}
    for ref in refs:
        view_name, _, feature_name = ref.partition(":")
        found = [f for f in views[view_name].features if f.name == feature_name] if view_name in views else []
        if found and found[0] not in by_view.setdefault(view_name, []):
            by_view[view_name].append(found[0])
    return FeatureService(
        name=exposure["name"],
        description=exposure.get("description") or "",
        owner=owner.get("email") or owner.get("name"),
        feature_refs=refs,
        depends_on=depends_on,
        explicit=bool(listed),
        yaml_path=exposure.get("original_file_path", ""),
        meta=MappingProxyType(dict(meta)),
        feature_view_projections=tuple(FeatureViewProjection(name, tuple(features))
                                       for name, features in by_view.items() if features),
    )
