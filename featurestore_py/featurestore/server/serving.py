"""Online reads in Feast's feature-server shapes, over the registry and the online store only.

Request (POST /get-online-features), as Feast's Python feature server takes it:
    {"features": ["view:feature", ...]}  or  {"feature_service": "name"}
    "entities": {"join_key": [value, ...], ...}   (columns of equal length)
    "full_feature_names": false

Response, as Feast's server gives it: `metadata.feature_names` (the entity columns, then the
features), and per name `values`, `statuses` and `event_timestamps`, one entry per entity row.
Statuses say why a value is missing: NOT_FOUND (no item for the key, or a NULL key), NULL_VALUE
(the item holds NULL), OUTSIDE_MAX_AGE (the item is older than the view's TTL: no value is
served), PRESENT.

Client mistakes raise BadRequest with the HTTP status and a message naming the problem; the
server maps every other error to 503 (the online store) or 500 (a bug).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Mapping

from ..errors import FeatureStoreError
from ..online import OnlineStore, OnlineTable
from ..online.codec import INTEGER_TYPES, MAX_KEY_BYTES, entity_key
from ..registry import Registry
from ..sync import online_table
from ..training import ViewRequest, plan_retrieval

PRESENT, NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"
EPOCH = "1970-01-01T00:00:00Z"
_FIELDS = {"features", "feature_service", "entities", "full_feature_names"}
_STRING_TYPES = ("varchar", "text", "string", "char", "uuid")


class BadRequest(FeatureStoreError):
    """A request the server cannot answer because of what the client sent."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Served:
    """What one request served, for the served-vector log."""

    feature_service: str | None
    names: list[str]  # entity columns, then features (the response's order)
    references: list[str | None]  # per name: "view:feature", None for an entity column
    rows: int
    results: list[dict]  # the response's results


class OnlineServer:
    """Answers Feast-shaped requests from the online store. Holds no warehouse connection."""

    def __init__(self, registry: Registry, online: OnlineStore, max_entities: int = 1000):
        self.registry = registry
        self.online = online
        self.max_entities = max_entities
        self.tables: dict[str, OnlineTable] = {
            view.name: online_table(registry, view) for view in registry.feature_views.values() if view.online}
        self._plan = lru_cache(maxsize=256)(self._plan_uncached)

    # -- the request ---------------------------------------------------------------------------
    def parse(self, body: Any) -> tuple[tuple[str, ...] | None, str | None, bool, dict[str, list]]:
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object with `features` or `feature_service`, and `entities`.")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise BadRequest(f"Unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(sorted(_FIELDS))}.")
        features, service = body.get("features"), body.get("feature_service")
        if (features is None) == (service is None):
            raise BadRequest("Pass either `features` (a list of 'view:feature') or `feature_service` (a name), not both and not neither.")
        if features is not None:
            if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
                raise BadRequest("`features` must be a non-empty list of strings 'view:feature'.")
            features = tuple(features)
        elif not isinstance(service, str) or not service:
            raise BadRequest("`feature_service` must be the name of a feature service (a string).")
        full = body.get("full_feature_names", False)
        if not isinstance(full, bool):
            raise BadRequest("`full_feature_names` must be true or false.")
        entities = body.get("entities")
        if not isinstance(entities, dict) or not entities:
            raise BadRequest("`entities` must be an object of join key -> list of values, e.g. {\"customer_id\": [\"c1\", \"c2\"]}.")
        lengths = set()
        for name, values in entities.items():
            if not isinstance(values, list):
                raise BadRequest(f"Entity '{name}' must be a list of values (one per entity row), not {type(values).__name__}.")
            lengths.add(len(values))
        if len(lengths) != 1:
            raise BadRequest("Every entity column must have the same number of values; got "
                             + ", ".join(f"{name}: {len(values)}" for name, values in entities.items()) + ".")
        rows = lengths.pop()
        if rows == 0:
            raise BadRequest("`entities` has no rows.")
        if rows > self.max_entities:
            raise BadRequest(f"{rows:,} entity rows in one request; the limit is {self.max_entities:,} "
                             "(FEATURESTORE_SERVE_MAX_ENTITIES). Split the request.", status=413)
        return features, service, full, entities

    def _plan_uncached(self, features: tuple[str, ...] | None, service: str | None, full: bool) -> tuple[ViewRequest, ...]:
        try:
            requests = plan_retrieval(self.registry, list(features) if features else None, service, full)
        except FeatureStoreError as exc:
            text = str(exc)
            raise BadRequest(text, status=404 if text.startswith(("No feature service", "No feature view", "Feature view"))
                             or "has no feature" in text else 400) from None
        offline = [request.view.name for request in requests if request.view.name not in self.tables]
        if offline:
            raise BadRequest(f"Feature view(s) {', '.join(offline)} are not served online (`online: true` in their YAML).")
        return tuple(requests)

    def _check_keys(self, requests: tuple[ViewRequest, ...], entities: Mapping[str, list]) -> list[str]:
        needed: list[str] = []
        for request in requests:
            for key, _ in request.keys:
                if key not in entities:
                    raise BadRequest(f"Feature view '{request.view.name}' needs the join key '{key}' in `entities`; "
                                     f"got {', '.join(sorted(entities))}.")
                if key not in needed:
                    needed.append(key)
                family = _family(request.view.columns.get(key))
                for index, value in enumerate(entities[key]):
                    _check_key_value(key, index, value, family)
        extra = sorted(set(entities) - set(needed))
        if extra:
            raise BadRequest(f"Unknown entity column(s) {', '.join(map(repr, extra))}: the requested features join on "
                             f"{', '.join(needed)}.")
        return needed

    # -- the answer ----------------------------------------------------------------------------
    def get_online_features(self, body: Any, now: datetime | None = None) -> tuple[dict, Served]:
        features, service, full, entities = self.parse(body)
        requests = self._plan(features, service, full)
        keys = self._check_keys(requests, entities)
        rows = len(entities[keys[0]])
        names = list(keys)
        references: list[str | None] = [None] * len(keys)
        results = [{"values": list(entities[key]), "statuses": [PRESENT] * rows, "event_timestamps": [EPOCH] * rows}
                   for key in keys]
        reads = [(self.tables[request.view.name], [{key: entities[key][i] for key, _ in request.keys} for i in range(rows)],
                  [name for name, _ in request.features]) for request in requests]
        answers = self.online.read_many(reads, now=now, with_expired=True)
        for request, (table, _, _), found in zip(requests, reads, answers):
            for name, output in request.features:
                dtype = table.features.get(name)
                values, statuses, stamps = [], [], []
                for item in found:
                    if item is None:
                        values.append(None), statuses.append(NOT_FOUND), stamps.append(EPOCH)
                        continue
                    stamps.append(_iso(item["_event_timestamp"]))
                    if item.get("_expired"):
                        values.append(None), statuses.append(OUTSIDE_MAX_AGE)
                    elif item.get(name) is None:
                        values.append(None), statuses.append(NULL_VALUE)
                    else:
                        values.append(json_value(item[name], dtype)), statuses.append(PRESENT)
                names.append(output)
                references.append(f"{request.view.name}:{name}")
                results.append({"values": values, "statuses": statuses, "event_timestamps": stamps})
        response = {"metadata": {"feature_names": names}, "results": results}
        return response, Served(service, names, references, rows, results)


def _family(dtype: str | None) -> str | None:
    declared = (dtype or "").lower()
    if declared.startswith(INTEGER_TYPES):
        return "integer"
    if declared.startswith(_STRING_TYPES):
        return "string"
    return None  # undeclared or another type: strings and integers are both accepted


def _check_key_value(key: str, index: int, value: Any, family: str | None) -> None:
    if value is None:
        return  # a NULL key: NOT_FOUND, like a key that is not there
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest(f"Entity '{key}' row {index}: {type(value).__name__} values are not join keys; "
                         f"send {'a string' if family == 'string' else 'an integer' if family == 'integer' else 'strings or integers'}.")
    if family == "string" and not isinstance(value, str):
        raise BadRequest(f"Entity '{key}' row {index}: the join key is a string column; got the number {value}.")
    if family == "integer" and not isinstance(value, int):
        raise BadRequest(f"Entity '{key}' row {index}: the join key is an integer column; got the string {value!r}.")
    if isinstance(value, str) and len(entity_key([key], {key: value}).encode()) > MAX_KEY_BYTES:
        raise BadRequest(f"Entity '{key}' row {index}: the key is longer than DynamoDB's {MAX_KEY_BYTES:,}-byte limit.")


def json_value(value: Any, dtype: str | None = None) -> Any:
    """A feature value as JSON: decimals as numbers, times as ISO 8601."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and (dtype or "").lower().startswith(INTEGER_TYPES) \
            else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"
