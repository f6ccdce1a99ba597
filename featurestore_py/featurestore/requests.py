"""Request planning: which views, features, output names and join keys a read needs, for the
offline retrieval, the online read, sync and push alike — over the registry only (no warehouse,
no online store), so the feature server can plan without the offline side.

The rules that live here and nowhere else:
- a request is `features=[view:feature, ...]` or a feature service, never both nor neither;
- output names are the feature names, or `view__feature` with full feature names, and two views
  giving one output name is an error;
- a view's join keys are its entities' keys (`Registry.join_keys`), entity column = view column;
- a view's TTL in seconds (`ttl_seconds`), what the online table and the point-in-time SQL use;
- a view must be `online: true` to be read, synced or pushed online (`require_online`);
- entity rows (a list of {key: value} or {key: [values]}) as columns of equal length.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from . import ondemand
from .errors import NotOnline, RequestError
from .online import OnlineTable
from .registry import FeatureService, FeatureView, OnDemandView, Registry
from .streaming import stream_spec

__all__ = ["FeaturePlan", "OnDemandRequest", "ViewRequest", "entity_columns", "features_or_service", "join_keys_of",
           "online_table", "plan_features", "plan_retrieval", "require_online", "ttl_seconds"]


@dataclass(frozen=True)
class ViewRequest:
    """One feature view of a retrieval: which of its features, under which output names."""

    view: FeatureView
    alias: str
    keys: tuple[tuple[str, str], ...]  # (entity column, view column)
    features: tuple[tuple[str, str], ...]  # (view column, output column)
    hidden: tuple[str, ...] = ()  # output columns read only as inputs of on-demand features


@dataclass(frozen=True)
class OnDemandRequest:
    """One on-demand view of a request: which of its features, under which output names, and
    where its inputs are (a hidden output column of a ViewRequest, by the input's bare name)."""

    view: OnDemandView
    features: tuple[tuple[str, str], ...]  # (feature, output column)
    inputs: tuple[tuple[str, str], ...]  # (bare name, the column holding the input)
    request: tuple[tuple[str, str | None], ...] = ()  # (request field, its declared type)


@dataclass(frozen=True)
class FeaturePlan:
    """A request planned: the feature views to read (inputs of on-demand features included, as
    hidden columns), then the on-demand features computed from them and the request fields."""

    views: tuple[ViewRequest, ...]
    on_demand: tuple[OnDemandRequest, ...] = ()

    @property
    def request_fields(self) -> dict[str, str | None]:
        """Every request field the on-demand features need -> its declared type."""
        return {name: dtype for request in self.on_demand for name, dtype in request.request}


def require_one_way(features: Any, feature_service: Any,
                    words: tuple[str, str] = ("features=[...]", "feature_service=...")) -> None:
    """The features of a request are named one way: references, or a feature service (given:
    truthy). `words`: the caller's names of the two (the SDK's arguments, the CLI's options,
    the HTTP body's fields)."""
    if bool(features) == bool(feature_service):
        raise RequestError(f"Pass either {words[0]} or {words[1]}, not both and not neither.")


def features_or_service(features, feature_service: str | None) -> tuple[Sequence[str] | None, str | None]:
    """Feast passes a feature service as `features=`; ours also takes its name as `feature_service=`."""
    if isinstance(features, FeatureService):
        require_one_way(features, feature_service is not None)
        return None, features.name
    if isinstance(features, str):
        raise RequestError(f"features must be a list of 'view:feature' references, not the string {features!r}.")
    return features, feature_service


def plan_retrieval(registry: Registry, features: Sequence[str] | None, feature_service: str | None,
                   full_feature_names: bool) -> list[ViewRequest]:
    """Group the requested `view:feature` references by view, with checked output names; for a
    caller that reads feature views only (an on-demand feature is refused, naming it)."""
    plan = plan_features(registry, features, feature_service, full_feature_names)
    if plan.on_demand:
        names = [f"{request.view.name}:{name}" for request in plan.on_demand for name, _ in request.features]
        raise RequestError(f"On-demand feature(s) {', '.join(names)} are computed at request time and cannot be "
                           "used here.")
    return list(plan.views)


def plan_features(registry: Registry, features: Sequence[str] | None, feature_service: str | None,
                  full_feature_names: bool) -> FeaturePlan:
    """Group the requested `view:feature` references by view, with checked output names; the
    inputs the requested on-demand features' expressions use are read too, as hidden columns
    `_fs_in_<view>__<feature>`, and the request fields they use are asked for."""
    require_one_way(features, feature_service)
    references = list(registry.service(feature_service).feature_refs) if feature_service else list(features)
    by_view: dict[str, list[str]] = {}
    by_on_demand: dict[str, list[str]] = {}
    for reference in references:
        view, feature = registry.resolve(reference)
        names = (by_on_demand if isinstance(view, OnDemandView) else by_view).setdefault(view.name, [])
        if feature.name not in names:
            names.append(feature.name)
    hidden: dict[str, list[str]] = {}  # feature view -> its features read as inputs
    on_demand, outputs = [], {}
    for view_name, names in by_on_demand.items():
        view = registry.on_demand_view(view_name)
        used = {name for feature in names
                for name in ondemand.referenced_names(ondemand.expression_of(view, view.feature(feature)),
                                                      registry.adapter_type)}
        inputs = []
        for reference in view.inputs:
            if ondemand.bare_name(reference) not in used:
                continue
            source, feature = registry.resolve(reference)
            if isinstance(source, OnDemandView):
                raise RequestError(f"On-demand view '{view_name}' reads '{reference}', another on-demand feature; "
                                   "inputs must be features of feature views.")
            if feature.name not in hidden.setdefault(source.name, []):
                hidden[source.name].append(feature.name)
            inputs.append((feature.name, f"_fs_in_{source.name}__{feature.name}"))
        fields = tuple((name, dtype) for name, dtype in view.request.items() if name in used)
        on_demand.append(OnDemandRequest(view, tuple((name, _output(outputs, view_name, name, full_feature_names))
                                                     for name in names), tuple(inputs), fields))
    requests = []
    for index, view_name in enumerate(dict.fromkeys([*by_view, *hidden])):
        view = registry.view(view_name)
        keys = tuple((key, key) for key in registry.join_keys(view))
        pairs = [(name, _output(outputs, view_name, name, full_feature_names)) for name in by_view.get(view_name, [])]
        inputs = [(name, f"_fs_in_{view_name}__{name}") for name in hidden.get(view_name, [])]
        requests.append(ViewRequest(view, f"_fs_v{index}", keys, tuple(pairs + inputs),
                                    tuple(column for _, column in inputs)))
    return FeaturePlan(tuple(requests), tuple(on_demand))


def _output(outputs: dict[str, str], view_name: str, name: str, full_feature_names: bool) -> str:
    """The output column of `view_name:name`, checked against those given out so far."""
    output = f"{view_name}__{name}" if full_feature_names else name
    if output in outputs:
        raise RequestError(
            f"Feature '{name}' is requested from both '{outputs[output]}' and '{view_name}'; "
            "pass full_feature_names=True to name columns view__feature."
        )
    outputs[output] = view_name
    return output


def join_keys_of(requests: Sequence[ViewRequest]) -> list[str]:
    """Every join key the requested views need, in the views' order."""
    keys: list[str] = []
    for request in requests:
        for key, _ in request.keys:
            if key not in keys:
                keys.append(key)
    return keys


def ttl_seconds(view: FeatureView) -> int | None:
    """The view's TTL in whole seconds (None: no TTL)."""
    return int(view.ttl.total_seconds()) if view.ttl else None


def online_table(registry: Registry, view: FeatureView) -> OnlineTable:
    """Where and how a view lives in the online store."""
    return OnlineTable(view=view.name, join_keys=registry.join_keys(view),
                       features={feature.name: feature.dtype for feature in view.features},
                       ttl_seconds=ttl_seconds(view), stream=stream_spec(view))


def require_online(views: Iterable[FeatureView], doing: str = "read online") -> None:
    """NotOnline naming every view of `views` without `online: true`."""
    offline = [view.name for view in views if not view.online]
    if offline:
        raise NotOnline(f"Feature view(s) {', '.join(offline)} are not online (`online: true` in their YAML), "
                        f"so they cannot be {doing}.")


def entity_columns(entity_rows) -> dict[str, list]:
    """Entity rows as columns: from a list of {key: value} (every row with the same keys) or from
    {key: [values]} (every column as long)."""
    if entity_rows is None:
        raise RequestError("Pass entity_rows: a list of {join key: value}, one per entity row.")
    if isinstance(entity_rows, Mapping):
        for key, values in entity_rows.items():
            if isinstance(values, (str, bytes)) or not (isinstance(values, Sequence) or hasattr(values, "tolist")):
                raise RequestError(f"Entity column '{key}' must be a list of values, one per entity row; got "
                                   f"{type(values).__name__} {values!r} (entity rows as a list: [{{'{key}': ...}}]).")
        columns = {key: [_plain_key(value) for value in values] for key, values in entity_rows.items()}
        if len({len(values) for values in columns.values()}) > 1:
            raise RequestError("Every entity column must have the same number of values; got "
                               + ", ".join(f"{key}: {len(values)}" for key, values in columns.items()) + ".")
        return columns
    rows = list(entity_rows)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise RequestError(f"Entity row {index} is a {type(row).__name__}, not a mapping of join keys to "
                               "values (entity_rows=[{'customer_id': 1}, ...]).")
    keys = list(dict.fromkeys(key for row in rows for key in row))
    for index, row in enumerate(rows):
        missing = [key for key in keys if key not in row]
        if missing:
            raise RequestError(f"Entity row {index} has no {', '.join(map(repr, missing))}; every entity row "
                               "needs the same keys.")
    return {key: [_plain_key(row[key]) for row in rows] for key in keys}


def _plain_key(value: Any) -> Any:
    """NumPy's integers (keys taken from a pandas Series) as Python's; other values as given."""
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)) else value
