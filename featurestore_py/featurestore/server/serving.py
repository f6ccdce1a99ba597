"""Online reads in Feast's feature-server shapes, over the registry and the online store only.

Request (POST /get-online-features), as Feast's Python feature server takes it:
    {"features": ["view:feature", ...]}  or  {"feature_service": "name"}
    "entities": {"join_key": [value, ...], ...}   (columns of equal length)
    "full_feature_names": false

Response, as Feast's server gives it: `metadata.feature_names` (the entity columns, then the
features), and per name `values`, `statuses` and `event_timestamps`, one entry per entity row.
The values and statuses come from the one online read (featurestore.online.reader), in the
server's response style (`featurestore` or `feast`, FEATURESTORE_RESPONSES; see there).

Client mistakes raise RequestError (featurestore.errors), whose type carries the HTTP status
(NotFound: 404) and whose message names the problem; the server maps every other error to 503
(the online store) or 500 (a bug).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import FeatureStoreError, RequestError
from ..online import PROBE_SECONDS, OnlineStore
from ..online.reader import CheckedRead, OnlineReader
from ..online_response import iso_timestamp, json_value
from ..registry import Registry
from ..requests import entity_columns, online_table, require_one_way

EPOCH = "1970-01-01T00:00:00Z"
_FIELDS = {"features", "feature_service", "entities", "full_feature_names"}


@dataclass(frozen=True)
class Served:
    """What one request served, for the served-vector log."""

    feature_service: str | None
    names: list[str]  # entity columns, then features (the response's order)
    references: list[str | None]  # per name: "view:feature", None for an entity column
    rows: int
    results: list[dict]  # the response's results
    request_time: datetime | None = None  # the `now` of the read: the knowledge time an audit recomputes at


class NotReady(FeatureStoreError):
    """The online store answers but holds none of the views' tables (OnlineServer.ready)."""


@dataclass(frozen=True)
class Checked:
    """A request checked (OnlineServer.check): the read left to do, and what the log needs."""

    read: CheckedRead
    service: str | None  # the feature service named (it exists)
    rows: int
    asked_at: float  # time.monotonic() when checked: the store's timeout counts from it


class OnlineServer:
    """Answers Feast-shaped requests from the online store through the one online reader. Holds no
    warehouse connection."""

    def __init__(self, registry: Registry, online: OnlineStore, max_entities: int = 1000, style: str = "featurestore"):
        self.reader = OnlineReader(registry, online, style)
        self.max_entities = max_entities

    def ready(self) -> None:
        """Raise unless the online store answers and holds the table of at least one online view
        that `sync` fills (not a streaming view's events, not a view with `push: true`, whose
        table its first push makes): holding none, it has lost them all (an emulator restarted
        empty) or was never synced, and every read would be NOT_FOUND (NotReady). One view's
        table missing (a view added since the last sync) leaves the others served. The views
        are tried in turn until one is found: one pointer and one BatchGetItem when it is."""
        online, registry = self.reader.online, self.reader.registry
        views = [view.name for view in registry.feature_views.values() if view.online and not view.takes_pushes
                 and online_table(registry, view).stream is None]
        deadline = time.monotonic() + PROBE_SECONDS
        if not views:
            online.ping(deadline)
        elif all(online.missing_tables([view], deadline) for view in views):
            raise NotReady(f"the online store holds no table of the online views ({', '.join(views)}): it was never "
                           "synced, or it lost them (an emulator restarted empty); run `featurestore sync`.")

    # -- the request ---------------------------------------------------------------------------
    def parse(self, body: Any) -> tuple[tuple[str, ...] | None, str | None, bool, dict[str, list]]:
        if not isinstance(body, dict):
            raise RequestError("The request body must be a JSON object with `features` or `feature_service`, and `entities`.")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise RequestError(f"Unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(sorted(_FIELDS))}.")
        features, service = body.get("features"), body.get("feature_service")
        require_one_way(features is not None, service is not None,
                        ("`features` (a list of 'view:feature')", "`feature_service` (a name)"))
        if features is not None:
            if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
                raise RequestError("`features` must be a non-empty list of strings 'view:feature'.")
            features = tuple(features)
        elif not isinstance(service, str) or not service:
            raise RequestError("`feature_service` must be the name of a feature service (a string).")
        full = body.get("full_feature_names", False)
        if not isinstance(full, bool):
            raise RequestError("`full_feature_names` must be true or false.")
        entities = body.get("entities")
        if not isinstance(entities, dict) or not entities:
            raise RequestError("`entities` must be an object of join key -> list of values, e.g. {\"customer_id\": [\"c1\", \"c2\"]}.")
        for name, values in entities.items():
            if not isinstance(values, list):
                raise RequestError(f"Entity '{name}' must be a list of values (one per entity row), not "
                                   f"{type(values).__name__}.")
        entities = entity_columns(entities)  # of one length each, else a RequestError naming the lengths
        rows = len(next(iter(entities.values())))
        if rows == 0:
            raise RequestError("`entities` has no rows.")
        if rows > self.max_entities:
            raise RequestError(f"{rows:,} entity rows in one request; the limit is {self.max_entities:,} "
                             "(the server's --max-entities). Split the request.", status=413)
        return features, service, full, entities

    def check(self, body: Any) -> Checked:
        """The request parsed and checked against the registry (its features, views or service,
        its entity keys and request fields; no store): what the server does on its event loop, so
        that a client's mistake is answered even while every read thread waits for a slow store.
        The store's timeout counts from this moment, however long the request then waits for a
        read thread."""
        features, service, full, entities = self.parse(body)
        read = self.reader.check(features, entities, feature_service=service, full_feature_names=full,
                                 refuse_unknown=True)  # unknown: 404; not online, a key's type or range: 400
        return Checked(read, service, len(next(iter(entities.values()))), time.monotonic())

    # -- the answer ----------------------------------------------------------------------------
    def get_online_features(self, body: Any, now: datetime | None = None) -> tuple[dict, Served]:
        return self.answer(self.check(body), now)

    def answer(self, checked: Checked, now: datetime | None = None) -> tuple[dict, Served]:
        """The answer to a checked request: the online read, in the response's shape."""
        now = now or datetime.now(timezone.utc)  # one instant for the read and the served-vector log
        columns = self.reader.read_checked(checked.read, now, asked_at=checked.asked_at)
        names = [column.name for column in columns]
        references = [column.reference for column in columns]
        # an item's event time written once for all of its view's features (was a tenth of a 100-row answer's CPU)
        stamps: dict = {None: EPOCH}
        results = [{"values": [json_value(value, column.dtype) for value in column.values],
                    "statuses": column.statuses,
                    "event_timestamps": [stamps[moment] if moment in stamps else
                                         stamps.setdefault(moment, iso_timestamp(moment))
                                         for moment in column.event_timestamps]}
                   for column in columns]
        response = {"metadata": {"feature_names": names}, "results": results}
        return response, Served(checked.service, names, references, checked.rows, results, now)
