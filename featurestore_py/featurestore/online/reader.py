"""The online read: feature values with a status per value, for the SDK, the CLI and the server.

`OnlineReader(registry, store)` is the one reader: it plans the request (featurestore.requests),
refuses views that are not online, checks the entity keys against their declared types, and
reads every requested view in one batch (`OnlineStore.read_many`). The answer has, per output
column, the values, a status per value and the event timestamps; the feature server turns them
into JSON, `get_online_features` into an `OnlineResponse`, `featurestore get` into its vector.

Statuses say why a value is missing: NOT_FOUND (no item for the key, or a NULL key), NULL_VALUE
(the item holds NULL), OUTSIDE_MAX_AGE (the item is older than the view's TTL: no value is
read), else PRESENT.

Two response styles (FEATURESTORE_RESPONSES), differing only where Feast's server does:
- `featurestore` (default): the entity columns in the views' join-key order; a stored NULL is
  NULL_VALUE.
- `feast`: as Feast 0.67's feature server answers — the entity columns in the order the request
  gives them, and a stored NULL is PRESENT (with a null value).
In both, features follow the entity columns grouped by view, views in the order of their first
requested feature and features in the order requested. (Feast orders the features of one view
as a Python set, which changes from one server process to the next; the requested order is one
of the orders Feast gives, and the only stable one.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, Mapping, Sequence

from .. import types
from ..errors import FeatureStoreError, RequestError
from ..registry import Registry
from ..requests import FeaturePlan, ViewRequest, entity_columns, join_keys_of, online_table, plan_features, require_online
from . import OnlineStore, OnlineTable
from .codec import MAX_KEY_BYTES, entity_key

PRESENT, NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"
RESPONSES_ENV = "FEATURESTORE_RESPONSES"
_DECIMAL_INTEGER = re.compile(r"[+-]?[0-9]+")
RESPONSE_STYLES = ("featurestore", "feast")


class EntityKeyError(RequestError):
    """A join key missing from the entity rows, a key value of the wrong type, or (where refused)
    an entity column no requested view joins on."""


@dataclass(frozen=True)
class OnlineColumn:
    """One column of an online read: an entity column (reference None) or a feature."""

    name: str  # the output name (`view__feature` with full feature names)
    reference: str | None  # "view:feature"; None for an entity column
    dtype: str | None  # the declared data_type
    values: list  # as the online store decodes them (a decimal is a Decimal); None when there is no value
    statuses: list[str]
    event_timestamps: list[datetime | None]  # the item's event time; None without an item (and for keys)


@dataclass(frozen=True)
class CheckedRead:
    """A read planned and its entity rows checked (OnlineReader.check): all that is left is the store's."""

    plan: FeaturePlan
    tables: Mapping[str, OnlineTable]
    entities: Mapping[str, list]  # join key -> values, of the declared types
    keys: list[str]  # the join keys of the answer, in its order
    fields: Mapping[str, list]  # an on-demand feature's request fields -> values


def response_style(value: str | None) -> str:
    """The checked value of FEATURESTORE_RESPONSES (empty or unset: featurestore)."""
    style = (value or "featurestore").strip().lower()
    if style not in RESPONSE_STYLES:
        raise FeatureStoreError(f"{RESPONSES_ENV} must be {' or '.join(RESPONSE_STYLES)}, not {value!r}.")
    return style


class OnlineReader:
    """Reads feature vectors of a registry's online views from an online store.

    style: featurestore or feast (see the module docstring). Plans are cached per request shape
    (the registry does not change under a reader)."""

    def __init__(self, registry: Registry, online: OnlineStore, style: str = "featurestore"):
        self.registry = registry
        self.online = online
        self.style = response_style(style)
        self._plan = lru_cache(maxsize=256)(self._plan_uncached)

    def plan(self, features: Sequence[str] | None, feature_service: str | None,
             full_feature_names: bool = False) -> tuple[FeaturePlan, dict[str, OnlineTable]]:
        """The request planned (the views to read, every one online, else NotOnline, with the
        inputs of on-demand features) and the views' online tables."""
        return self._plan(tuple(features) if features else None, feature_service, full_feature_names)

    def _plan_uncached(self, features, feature_service, full_feature_names) -> tuple[FeaturePlan, dict]:
        plan = plan_features(self.registry, list(features) if features else None, feature_service, full_feature_names)
        require_online(request.view for request in plan.views)
        return plan, {request.view.name: online_table(self.registry, request.view) for request in plan.views}

    @cached_property
    def _on_demand(self):
        from .ondemand import OnDemandEvaluator

        return OnDemandEvaluator(self.registry.adapter_type)

    def read(self, features: Sequence[str] | None, entity_rows, *, feature_service: str | None = None,
             full_feature_names: bool = False, now: datetime | None = None, keys_from_text: bool = False,
             refuse_unknown: bool = False) -> list[OnlineColumn]:
        """The entity columns, then every requested feature, one value and status per entity row.

        entity_rows: a list of {join key: value} or {join key: [values]}. Keys the views do not
        need are left out of the answer, as Feast does, or refused (refuse_unknown). keys_from_text:
        the key values are text (a command line), converted to each join key's declared type."""
        return self.read_columns(features, entity_columns(entity_rows), feature_service=feature_service,
                                 full_feature_names=full_feature_names, now=now, keys_from_text=keys_from_text,
                                 refuse_unknown=refuse_unknown)

    def read_columns(self, features: Sequence[str] | None, entities: Mapping[str, list], *,
                     feature_service: str | None = None, full_feature_names: bool = False,
                     now: datetime | None = None, keys_from_text: bool = False,
                     refuse_unknown: bool = False) -> list[OnlineColumn]:
        """`read` of entity rows already shaped as columns by requests.entity_columns."""
        return self.read_checked(self.check(features, entities, feature_service=feature_service,
                                            full_feature_names=full_feature_names, keys_from_text=keys_from_text,
                                            refuse_unknown=refuse_unknown), now)

    def check(self, features: Sequence[str] | None, entities: Mapping[str, list], *,
              feature_service: str | None = None, full_feature_names: bool = False,
              keys_from_text: bool = False, refuse_unknown: bool = False) -> CheckedRead:
        """Every rule a request must meet, without the store: the plan (an unknown feature, view or
        service, a view not online), the request fields of on-demand features, and the entity
        keys (present, of their declared types and ranges; unknown ones where refused)."""
        plan, tables = self.plan(features, feature_service, full_feature_names)
        requests = plan.views
        entities = entities or {key: [] for key in [*join_keys_of(requests), *plan.request_fields]}  # no rows: no answer
        fields = {}
        if plan.on_demand:
            from .ondemand import request_values

            fields = request_values(plan.on_demand, plan.request_fields, entities, self.registry.adapter_type,
                                    from_text=keys_from_text)
            declared = {name for request in plan.on_demand for name in request.view.request}  # used or not
            entities = {key: values for key, values in entities.items() if key not in declared}
        if keys_from_text:
            dtypes = {key: request.view.columns.get(key) for request in requests for key, _ in request.keys}
            entities = {key: [key_from_text(key, text, dtypes.get(key)) for text in values]
                        for key, values in entities.items()}
        return CheckedRead(plan, tables, entities, answer_keys(requests, entities, refuse_unknown, self.style), fields)

    def read_checked(self, checked: CheckedRead, now: datetime | None = None,
                     asked_at: float | None = None) -> list[OnlineColumn]:
        """The store's part of a checked read. asked_at: see OnlineStore.read_many."""
        columns = _read_store(self.online, checked.tables, checked.plan.views, checked.entities, checked.keys, now,
                              self.style, asked_at)
        return self._with_on_demand(checked.plan, columns, checked.fields) if checked.plan.on_demand else columns

    def _with_on_demand(self, plan: FeaturePlan, columns: list[OnlineColumn], fields: dict[str, list]) -> list[OnlineColumn]:
        """The columns read, the inputs read only for on-demand features dropped, the request
        fields after the entity columns (as Feast answers), the on-demand features at the end:
        PRESENT when computed (also as NULL, in the feast style), else NULL_VALUE."""
        hidden = {column for request in plan.views for column in request.hidden}
        by_name = {column.name: column for column in columns}
        inputs = {bare: (by_name[column].dtype, by_name[column].values)
                  for request in plan.on_demand for bare, column in request.inputs}
        rows = len(columns[0].values) if columns else len(next(iter(fields.values()), []))
        keys = [column for column in columns if column.reference is None]
        answer = keys + [OnlineColumn(name, None, dtype, values, [PRESENT] * rows, [None] * rows)
                         for (name, values), dtype in zip(fields.items(), plan.request_fields.values())]
        answer += [column for column in columns if column.reference is not None and column.name not in hidden]
        computed = self._on_demand.evaluate(plan.on_demand, fields, inputs, rows)
        outputs = [(request.view, name, output) for request in plan.on_demand for name, output in request.features]
        null_status = PRESENT if self.style == "feast" else NULL_VALUE
        for (view, name, output), values in zip(outputs, computed):
            answer.append(OnlineColumn(output, f"{view.name}:{name}", view.feature(name).dtype, values,
                                       [null_status if value is None else PRESENT for value in values], [None] * rows))
        return answer


def key_from_text(key: str, text: str, dtype: str | None) -> Any:
    """A join key typed on the command line (`-e customer_id=42`) as the value of its declared type."""
    if types.key_family(dtype) != types.INTEGER:
        return text
    if not _DECIMAL_INTEGER.fullmatch(text.strip()):  # int() also takes `1_000` and other scripts' digits
        raise EntityKeyError(f"'{key}' is an integer join key ({dtype}); {text!r} is not an integer (ASCII digits, "
                             "an optional sign).")
    return int(text.strip())


def check_entities(requests: Sequence[ViewRequest], entities: Mapping[str, Sequence[Any]],
                   refuse_unknown: bool = False) -> list[str]:
    """The join keys needed, each present in `entities` with values of its declared type (else
    EntityKeyError naming the key, the row and the type). refuse_unknown: an entity column no
    requested view joins on is an error too (Feast ignores it; it is usually a misspelt key)."""
    for request in requests:
        for key, _ in request.keys:
            if key not in entities:
                raise EntityKeyError(f"Entity rows need '{key}' for feature view '{request.view.name}'; "
                                     f"got {', '.join(sorted(entities)) or 'no keys'}.")
            declared = request.view.columns.get(key)
            family, bounds = types.key_family(declared), types.key_range(declared)
            for index, value in enumerate(entities[key]):
                _check_key_value(key, index, value, family)
                if bounds and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
                    digits = str(value)
                    shown = digits if len(digits) <= 24 else f"{digits[:12]}... ({len(digits.lstrip('-')):,} digits)"
                    raise EntityKeyError(f"Entity '{key}' row {index}: {shown} is outside the range of the join key's "
                                         f"type ({declared}: {bounds[0]:,} to {bounds[1]:,}), so no row has it.")
    needed = join_keys_of(requests)
    extra = sorted(set(entities) - set(needed))
    if refuse_unknown and extra:
        raise EntityKeyError(f"Unknown entity column(s) {', '.join(map(repr, extra))}: the requested features join on "
                             f"{', '.join(needed)}.")
    return needed


def _check_key_value(key: str, index: int, value: Any, family: str | None) -> None:
    if value is None:
        return  # a NULL key: NOT_FOUND, like a key that is not there
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EntityKeyError(
            f"Entity '{key}' row {index}: {type(value).__name__} values are not join keys; send "
            f"{'a string' if family == types.STRING else 'an integer' if family == types.INTEGER else 'strings or integers'}.")
    if family == types.STRING and not isinstance(value, str):
        raise EntityKeyError(f"Entity '{key}' row {index}: the join key is a string column; got the number {value}.")
    if family == types.INTEGER and not isinstance(value, int):
        raise EntityKeyError(f"Entity '{key}' row {index}: the join key is an integer column; got the string {value!r}.")
    if isinstance(value, str) and len(entity_key([key], {key: value}).encode()) > MAX_KEY_BYTES:
        raise EntityKeyError(f"Entity '{key}' row {index}: the key is longer than DynamoDB's {MAX_KEY_BYTES:,}-byte limit.")


def read_online(online: OnlineStore, tables: Mapping[str, OnlineTable], requests: Sequence[ViewRequest],
                entities: Mapping[str, Sequence[Any]], now: datetime | None = None,
                style: str = "featurestore", refuse_unknown: bool = False) -> list[OnlineColumn]:
    """The entity columns, then every requested feature, one value and status per entity row.

    tables: view name -> its OnlineTable; entities: join key -> one value per row (every column
    the same length). Keys the views do not need are left out of the answer, as Feast does, or
    refused (refuse_unknown)."""
    return _read_store(online, tables, requests, entities, answer_keys(requests, entities, refuse_unknown, style),
                       now, style)


def answer_keys(requests: Sequence[ViewRequest], entities: Mapping[str, Sequence[Any]], refuse_unknown: bool,
                style: str) -> list[str]:
    """The entity columns of the answer, checked (check_entities), in the style's order."""
    keys = check_entities(requests, entities, refuse_unknown)
    return [key for key in entities if key in keys] if style == "feast" else keys  # Feast: the request's order


def _read_store(online: OnlineStore, tables: Mapping[str, OnlineTable], requests: Sequence[ViewRequest],
                entities: Mapping[str, Sequence[Any]], keys: list[str], now: datetime | None, style: str,
                asked_at: float | None = None) -> list[OnlineColumn]:
    """read_online's read, of entity rows checked already (`keys`: the answer's entity columns)."""
    rows = len(entities[keys[0]]) if keys else 0
    columns = [OnlineColumn(key, None, None, list(entities[key]), [PRESENT] * rows, [None] * rows) for key in keys]
    reads = [(tables[request.view.name], [{key: entities[key][i] for key, _ in request.keys} for i in range(rows)],
              [name for name, _ in request.features]) for request in requests]
    null_status = PRESENT if style == "feast" else NULL_VALUE
    answers = online.read_many(reads, now=now, with_expired=True, asked_at=asked_at)
    for request, (table, _, _), found in zip(requests, reads, answers):
        for name, output in request.features:
            values, statuses, stamps = [], [], []
            for item in found:
                if item is None:
                    values.append(None), statuses.append(NOT_FOUND), stamps.append(None)
                    continue
                stamps.append(item["_event_timestamp"])
                if item.get("_expired"):
                    values.append(None), statuses.append(OUTSIDE_MAX_AGE)
                elif item.get(name) is None:
                    values.append(None), statuses.append(null_status)
                else:
                    values.append(item[name]), statuses.append(PRESENT)
            columns.append(OnlineColumn(output, f"{request.view.name}:{name}", table.features.get(name), values,
                                        statuses, stamps))
    return columns
