"""Feast definitions, as read by `reader.py`, turned into what the importer translates: entities,
sources, feature views and feature services — and notes for everything it does not translate,
each with its file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ..errors import FeatureStoreError
from .reader import Call, Decorated, Projection, RepoReader, Symbol, Unresolved, Where

FEATURE_VIEWS = ("FeatureView", "BatchFeatureView", "StreamFeatureView")
# the arguments the importer translates; any other is named in the report
VIEW_ARGUMENTS = {"name", "entities", "ttl", "schema", "source", "online", "description", "owner", "tags"}
SERVICE_ARGUMENTS = {"name", "features", "description", "owner", "tags"}
STREAM_SOURCES = ("KafkaSource", "KinesisSource")


@dataclass(frozen=True)
class Note:
    """One thing the importer did not translate, or translated with a placeholder."""

    where: Where | None
    subject: str  # e.g. "on-demand feature view transformed_conv_rate"
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.subject}: {self.text}" if self.where else f"{self.subject}: {self.text}"


@dataclass(frozen=True)
class FeastEntity:
    name: str
    join_keys: tuple[str, ...]
    value_type: str | None  # ValueType's name (INT64, STRING ...) when given
    description: str
    where: Where


@dataclass(frozen=True)
class FeastSource:
    name: str
    kind: str  # "file" or "table"
    location: str  # the file path or the table name
    timestamp_field: str
    created_timestamp_column: str | None
    field_mapping: tuple[tuple[str, str], ...]  # (column in the source, name in Feast)
    where: Where


@dataclass(frozen=True)
class FeastField:
    name: str
    dtype: Any  # Symbol("Float32"), Call("Array", [Symbol]) or Call("Struct", [{name: dtype}])
    description: str


@dataclass(frozen=True)
class FeastView:
    name: str
    entities: tuple[FeastEntity, ...]
    ttl: timedelta | None
    fields: tuple[FeastField, ...] | None  # None: no schema given (Feast infers it from the source)
    source: FeastSource
    push_source: str | None  # the PushSource's name when the view reads one
    online: bool
    description: str
    owner: str | None
    tags: tuple[tuple[str, str], ...]
    where: Where


@dataclass(frozen=True)
class FeastService:
    name: str
    features: tuple[tuple[str, tuple[str, ...] | None], ...]  # (view, features or None: all)
    description: str
    owner: str | None
    where: Where


@dataclass
class FeastRepo:
    path: Path
    project: str
    offline_store: str
    entities: dict[str, FeastEntity] = field(default_factory=dict)
    views: dict[str, FeastView] = field(default_factory=dict)
    services: dict[str, FeastService] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)


class Untranslatable(Exception):
    """A definition that cannot be translated; the message says why (it becomes a Note)."""


def read_repo(path: Path) -> FeastRepo:
    """Read `feature_store.yaml` and the Python definitions of a Feast repository."""
    config_path = path / "feature_store.yaml"
    if not config_path.is_file():
        raise FeatureStoreError(f"{path} is not a Feast repository: it has no feature_store.yaml "
                                "(pass the folder where `feast apply` runs, e.g. my_repo/feature_repo).")
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        raise FeatureStoreError(f"feature_store.yaml:{line}: not valid YAML ({getattr(exc, 'problem', exc)}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("project"), str):
        raise FeatureStoreError("feature_store.yaml has no `project:` name.")
    offline = config.get("offline_store", "dask")
    offline = offline.get("type", "dask") if isinstance(offline, dict) else str(offline)
    repo = FeastRepo(path, config["project"], offline)
    if offline not in ("dask", "file", "duckdb"):
        repo.notes.append(Note(Where("feature_store.yaml", 0), f"offline store {offline}",
                               "the generated project reads Parquet files with DuckDB; table sources become dbt "
                               "sources your profile must reach"))
    definitions = RepoReader(path).definitions()
    builder = _Builder(repo)
    for name, value in definitions:  # entities and views first: services refer to them
        if isinstance(value, Call) and value.name in ("Entity", *FEATURE_VIEWS):
            builder.add(name, value)
    for name, value in definitions:
        if not (isinstance(value, Call) and value.name in ("Entity", *FEATURE_VIEWS)):
            builder.add(name, value)
    return repo


class _Builder:
    def __init__(self, repo: FeastRepo):
        self.repo = repo
        self.seen: set[int] = set()

    def note(self, where: Where | None, subject: str, text: str) -> None:
        self.repo.notes.append(Note(where, subject, text))

    def add(self, name: str, value: Any) -> None:
        if id(value) in self.seen:
            return
        self.seen.add(id(value))
        if isinstance(value, Decorated):
            if "on_demand" in value.decorator:
                self.note(value.where, f"on-demand feature view {value.name}",
                          "not translated: its pandas/Python transformation runs at request time (translate it "
                          "into SQL when on-demand features in SQL exist)")
            elif "feature_view" in value.decorator:
                self.note(value.where, f"{value.decorator} {value.name}", "not translated: a Python transformation")
            return
        if isinstance(value, Unresolved):
            return  # a module-level helper value; reported only where a definition uses it
        if not isinstance(value, Call):
            return
        try:
            if value.name == "Entity":
                entity = _entity(value)
                self.repo.entities[entity.name] = entity
            elif value.name in FEATURE_VIEWS:
                self._view(value)
            elif value.name == "FeatureService":
                self._service(value)
            elif value.name == "Project":
                pass  # feature_store.yaml names the project
            elif value.name == "OnDemandFeatureView":
                view_name = _text(value.get("name", 0), value, "name")
                self.note(value.where, f"on-demand feature view {view_name}",
                          "not translated: its transformation runs at request time")
            elif value.name == "LabelView":
                self.note(value.where, f"label view {value.get('name', 0)}",
                          "not translated: labels are a dbt model of yours, passed as the entity rows of "
                          "get_historical_features")
            elif value.name == "RequestSource":
                self.note(value.where, f"request source {value.get('name', 0)}",
                          "not translated: request-time values are columns of the entity rows")
            elif value.name in STREAM_SOURCES:
                self.note(value.where, f"stream source {value.get('name', 0)}",
                          "not translated: views on it read its batch source; nothing consumes the stream")
        except Untranslatable as exc:
            kind = {"Entity": "entity", "FeatureService": "feature service"}.get(value.name, "feature view")
            self.note(value.where, f"{kind} {value.get('name', 0) if isinstance(value.get('name', 0), str) else name}",
                      f"not translated: {exc}")

    def _view(self, call: Call) -> None:
        name = _text(call.get("name", 0), call, "name")
        if call.get("udf") is not None or call.get("feature_transformation") is not None:
            raise Untranslatable("it has a Python transformation (udf)")
        entities = []
        for entity in _list(call.get("entities", default=[]), call, "entities"):
            if isinstance(entity, Call) and entity.name == "Entity":
                entities.append(_entity(entity))
            elif isinstance(entity, str) and entity in self.repo.entities:
                entities.append(self.repo.entities[entity])
            else:
                raise Untranslatable(f"entity {_show(entity)} is not an Entity defined in the repository")
        if not entities:
            raise Untranslatable("it has no entities (an entity-less view has no join key to serve by)")
        ttl = call.get("ttl")
        if isinstance(ttl, Unresolved):
            raise Untranslatable(f"its ttl is {ttl}")
        if ttl is not None and not isinstance(ttl, timedelta):
            raise Untranslatable(f"its ttl {_show(ttl)} is not a timedelta")
        if ttl is not None and (ttl.total_seconds() <= 0 or ttl.total_seconds() != int(ttl.total_seconds())):
            if ttl.total_seconds() != 0:
                raise Untranslatable(f"its ttl {ttl} is not a whole, positive number of seconds")
            ttl = None  # Feast: a zero TTL means none
        source, push_source = self._source(call.get("source"), call)
        schema = call.get("schema")
        fields = None if schema is None else tuple(_field(item, call) for item in _list(schema, call, "schema"))
        online = call.get("online", default=True)
        if not isinstance(online, bool):
            raise Untranslatable(f"online={_show(online)} is not True or False")
        if call.name == "StreamFeatureView":
            self.note(call.where, f"stream feature view {name}",
                      f"translated from its batch source {source.name}; the stream itself is not read")
        self._unread_arguments(call, f"feature view {name}", VIEW_ARGUMENTS)
        tags = call.get("tags", default={}) or {}
        view = FeastView(
            name=name, entities=tuple(entities), ttl=ttl, fields=fields, source=source, push_source=push_source,
            online=online, description=_optional_text(call.get("description"), call, "description") or "",
            owner=_optional_text(call.get("owner"), call, "owner"),
            tags=tuple((str(k), str(v)) for k, v in tags.items()) if isinstance(tags, dict) else (),
            where=call.where)
        self.repo.views[name] = view

    def _unread_arguments(self, call: Call, subject: str, translated: set) -> None:
        unread = [key for key in call.kwargs if key not in translated]
        if unread:
            self.note(call.where, subject, f"translated without its argument(s) {', '.join(unread)}")

    def _source(self, source: Any, view: Call) -> tuple[FeastSource, str | None]:
        if isinstance(source, Unresolved):
            raise Untranslatable(f"its source is {source}")
        if not isinstance(source, Call):
            raise Untranslatable(f"its source {_show(source)} is not a data source")
        if source.name == "PushSource":
            batch, _ = self._source(source.get("batch_source"), view)
            return batch, _text(source.get("name", 0), source, "name")
        if source.name in STREAM_SOURCES:
            if source.get("batch_source") is None:
                raise Untranslatable(f"its stream source ({source.where}) has no batch source to read history from")
            return self._source(source.get("batch_source"), view)[0], None
        if source.name == "RequestSource":
            raise Untranslatable("its source is a request source (values that exist only at request time)")
        path, table, query = source.get("path"), source.get("table"), source.get("query")
        if source.name == "FileSource" or (path is not None and table is None):
            kind, location = "file", _text(path, source, "path")
            file_format = source.get("file_format")
            if file_format is not None and not (isinstance(file_format, Call) and file_format.name == "ParquetFormat"):
                raise Untranslatable(f"its source ({source.where}) is not in Parquet format ({_show(file_format)})")
        elif query is not None:
            raise Untranslatable(f"its source ({source.where}) is a query: write the query as a dbt model and "
                                 "select from it in the view's model")
        elif table is not None:
            kind, location = "table", _text(table, source, "table")
        else:
            raise Untranslatable(f"its source {source.name} ({source.where}) has neither a path nor a table")
        timestamp_field = source.get("timestamp_field") or source.get("event_timestamp_column")
        if not isinstance(timestamp_field, str) or not timestamp_field:
            raise Untranslatable(f"its source ({source.where}) has no timestamp_field")
        mapping = source.get("field_mapping", default={}) or {}
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise Untranslatable(f"the field_mapping of its source ({source.where}) is not a dict of names")
        name = source.get("name")
        if not isinstance(name, str) or not name:
            name = source.bound_to or Path(location).stem or "source"
        created = _optional_text(source.get("created_timestamp_column"), source, "created_timestamp_column") or None
        return FeastSource(name=name, kind=kind, location=location, timestamp_field=timestamp_field,
                           created_timestamp_column=created, field_mapping=tuple(mapping.items()),
                           where=source.where), None

    def _service(self, call: Call) -> None:
        name = _text(call.get("name", 0), call, "name")
        features, dropped = [], []
        for item in _list(call.get("features", default=[]), call, "features"):
            view, selected = (item.view, item.features) if isinstance(item, Projection) else (item, None)
            if isinstance(view, Decorated):
                view_name = view.name
            elif isinstance(view, Call):
                view_name = view.get("name", 0) if isinstance(view.get("name", 0), str) else "?"
            else:
                raise Untranslatable(f"feature {_show(view)} is not a feature view")
            if view_name in self.repo.views:
                features.append((view_name, selected))
            else:
                dropped.append(view_name)
        if dropped:
            self.note(call.where, f"feature service {name}",
                      f"translated without {', '.join(dropped)} (not translated, above)")
        if not features:
            raise Untranslatable("none of its features were translated")
        self._unread_arguments(call, f"feature service {name}", SERVICE_ARGUMENTS)
        self.repo.services[name] = FeastService(
            name=name, features=tuple(features),
            description=_optional_text(call.get("description"), call, "description") or "",
            owner=_optional_text(call.get("owner"), call, "owner"), where=call.where)


def _entity(call: Call) -> FeastEntity:
    name = _text(call.get("name", 0), call, "name")
    keys = call.get("join_keys", default=None)
    if keys is None:
        join_keys = (name,)  # Feast: without join_keys the entity's name is its key
    else:
        join_keys = tuple(_text(key, call, "join_keys") for key in _list(keys, call, "join_keys"))
    value_type = call.get("value_type")
    return FeastEntity(name=name, join_keys=join_keys,
                       value_type=value_type.name if isinstance(value_type, Symbol) else None,
                       description=_optional_text(call.get("description"), call, "description") or "",
                       where=call.where)


def _field(item: Any, view: Call) -> FeastField:
    if not (isinstance(item, Call) and item.name == "Field"):
        raise Untranslatable(f"schema item {_show(item)} is not a Field")
    name = _text(item.get("name", 0), item, "name")
    dtype = item.get("dtype", 1)
    if isinstance(dtype, Unresolved):
        raise Untranslatable(f"the dtype of field {name} is {dtype}")
    return FeastField(name=name, dtype=dtype,
                      description=_optional_text(item.get("description"), item, "description") or "")


def _text(value: Any, call: Call, argument: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Unresolved):
        raise Untranslatable(f"its {argument} is {value}")
    raise Untranslatable(f"its {argument} ({call.where}) is {_show(value)}, not a string")


def _optional_text(value: Any, call: Call, argument: str) -> str | None:
    if value is None or value == "":
        return value
    return _text(value, call, argument)


def _list(value: Any, call: Call, argument: str) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, Unresolved):
        raise Untranslatable(f"its {argument} is {value}")
    raise Untranslatable(f"its {argument} ({call.where}) is not a list")


def _show(value: Any) -> str:
    if isinstance(value, Call):
        return f"{value.name}(...) at {value.where}"
    if isinstance(value, Unresolved):
        return str(value)
    if isinstance(value, Symbol):
        return value.name
    return repr(value)


def dtype_text(dtype: Any) -> str:
    """A Feast dtype as written in Python: Float32, Array(Int64), Struct({'name': String})."""
    if isinstance(dtype, Symbol):
        return dtype.name
    if isinstance(dtype, Call):
        inner = ", ".join(
            "{" + ", ".join(f"{k!r}: {dtype_text(v)}" for k, v in arg.items()) + "}" if isinstance(arg, dict)
            else dtype_text(arg) for arg in dtype.args)
        return f"{dtype.name}({inner})"
    return _show(dtype)
