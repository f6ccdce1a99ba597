"""The dbt side of a Feast repository: sources, a `feature_view` model per view with its YAML
meta, an entity declaration per entity, the services as `ml` exposures, and (for a new project)
dbt_project.yml, profiles.yml (DuckDB) and packages.yml installing featurestore."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ..durations import format_duration
from ..errors import FeatureStoreError
from .definitions import FeastEntity, FeastField, FeastRepo, FeastView, Note, dtype_text
from .reader import Call, Symbol

SOURCE_GROUP = "feast"
MODEL_FOLDER = Path("models") / "feast"
PLACEHOLDER_OWNER = "unknown (imported from Feast)"

# Feast's primitive types -> the data_type declared in the YAML (DuckDB's names; the registry's
# type families in frames.py and online/codec.py read them: integer, bigint, float, double ...).
FEAST_TYPES = {
    "Int32": "integer", "Int64": "bigint", "Float32": "float", "Float64": "double", "String": "varchar",
    "Bool": "boolean", "UnixTimestamp": "timestamp", "ZonedTimestamp": "timestamp", "Bytes": "blob",
    "PdfBytes": "blob", "ImageBytes": "blob", "Json": "varchar", "Uuid": "varchar", "TimeUuid": "varchar",
}
VALUE_TYPES = {"INT32": "integer", "INT64": "bigint", "FLOAT": "float", "DOUBLE": "double", "STRING": "varchar",
               "BOOL": "boolean", "BYTES": "blob", "UNIX_TIMESTAMP": "timestamp"}
_SIMPLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Column:
    name: str
    expression: str  # SQL reading it from the source, cast to data_type
    data_type: str | None
    description: str
    role: str  # "key", "event_timestamp", "created_timestamp" or "feature"


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(name: str) -> str:
    """A DuckDB identifier, always quoted (Feast names may be SQL keywords or MixedCase). Only
    plain identifiers: dbt renders a model's SQL as Jinja, so a name holding `{{ ... }}` would run
    as code at `dbt build`."""
    if not _IDENTIFIER.match(name):
        raise FeatureStoreError(f"The column name {name!r} is not a plain identifier (letters, digits and _); "
                                "import-feast writes no other names into dbt models: rename it in Feast or in "
                                "its source first.")
    return '"' + name.replace('"', '""') + '"'


def inert(value: Any) -> Any:
    """Text from the Feast repository with Jinja's openers broken (`{{` -> `{ {`): dbt renders
    model SQL and YAML as Jinja, and a description is no place for code."""
    if isinstance(value, str):
        return value.replace("{{", "{ {").replace("{%", "{ %").replace("{#", "{ #")
    if isinstance(value, dict):
        return {inert(key): inert(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [inert(item) for item in value]
    return value


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("featurestore.feast_import", "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["q"] = quote
    env.filters["inert"] = inert
    return env


class Schemas:
    """The column types of Parquet file sources, read by DuckDB from the files' metadata: Feast's
    Map has no declared keys and only the data says whether a timestamp carries a zone."""

    def __init__(self, repo: FeastRepo):
        self.repo = repo
        self._cache: dict[str, dict[str, str] | None] = {}

    def path(self, location: str) -> Path | None:
        if "://" in location:
            return None
        path = Path(location)
        return path if path.is_absolute() else self.repo.path / path

    def of(self, location: str) -> dict[str, str] | None:
        if location not in self._cache:
            import duckdb

            path = self.path(location)
            schema = None
            if path is not None and path.exists():
                try:
                    with duckdb.connect() as con:
                        rows = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
                    schema = {name: column_type.lower() for name, column_type, *_ in rows}
                except duckdb.Error as exc:
                    self.repo.notes.append(Note(None, f"file {location}", f"cannot be read as Parquet ({exc})"))
            elif path is None:
                self.repo.notes.append(Note(None, f"file {location}", "remote: its types come from the Feast "
                                            "definitions only, and DuckDB needs its httpfs extension to read it"))
            self._cache[location] = schema
        return self._cache[location]


def data_type(dtype: Any, file_type: str | None) -> str:
    """The YAML data_type of a Feast dtype (Map, ScalarMap and Decimal: the file's type); ValueError
    saying why when there is none."""
    if isinstance(dtype, Symbol):
        if dtype.name in FEAST_TYPES:
            return FEAST_TYPES[dtype.name]
        if dtype.name in ("Map", "ScalarMap", "Decimal"):
            if file_type:
                return file_type
            raise ValueError(f"a {dtype.name} is typed only by its data, and the source's file cannot be read")
    if isinstance(dtype, Call) and dtype.name in ("Array", "Set") and len(dtype.args) == 1:
        return data_type(dtype.args[0], None) + "[]"
    if isinstance(dtype, Call) and dtype.name == "Struct" and len(dtype.args) == 1 and isinstance(dtype.args[0], dict):
        return "struct(" + ", ".join(f"{quote(str(k))} {data_type(v, None)}" for k, v in dtype.args[0].items()) + ")"
    raise ValueError(f"Feast type {dtype_text(dtype)} has no translation")


def _timestamp_expression(column: str, file_type: str | None) -> str:
    if file_type and (file_type.startswith("timestamptz") or "with time zone" in file_type):
        return f"timezone('UTC', {quote(column)})"  # an instant -> its UTC wall time
    return f"cast({quote(column)} as timestamp)"


def view_columns(view: FeastView, repo: FeastRepo, schemas: Schemas) -> list[Column]:
    """The model's columns: join keys, event and created timestamps, then features."""
    source = view.source
    schema = schemas.of(source.location) if source.kind == "file" else None
    to_source = {feast: column for column, feast in source.field_mapping}
    columns: list[Column] = []

    def file_type(name: str) -> str | None:
        return (schema or {}).get(to_source.get(name, name))

    def note(subject: str, text: str) -> None:
        repo.notes.append(Note(view.where, f"feature view {view.name}: {subject}", text))

    for entity in view.entities:
        for key in entity.join_keys:
            if any(c.name == key for c in columns):
                continue
            declared = VALUE_TYPES.get(entity.value_type or "") or file_type(key)
            if declared is None:
                note(f"join key {key}", "its type is unknown (no value_type, no readable file): set its data_type")
            expression = f"cast({quote(to_source.get(key, key))} as {declared})" if declared else quote(to_source.get(key, key))
            columns.append(Column(key, expression, declared, entity.description or f"Join key of the {entity.name} entity.", "key"))
    for role, name in (("event_timestamp", source.timestamp_field), ("created_timestamp", source.created_timestamp_column)):
        if name:
            columns.append(Column(name, _timestamp_expression(to_source.get(name, name), file_type(name)), "timestamp",
                                  "When the values became valid (Feast's timestamp_field)." if role == "event_timestamp"
                                  else "When the row was written (Feast's created_timestamp_column).", role))
    taken = {c.name for c in columns}
    fields = view.fields
    if fields is None:  # Feast infers the schema from the source: so do we, from the file
        if schema is None:
            note("schema", "not given and the source cannot be read: no features translated")
            return columns
        mapping = dict(source.field_mapping)
        inferred = [mapping.get(column, column) for column in schema if mapping.get(column, column) not in taken]
        note("schema", f"not given: every other column of the file is a feature ({', '.join(inferred)})")
        fields = tuple(FeastField(name, None, "") for name in inferred)
    for field in fields:
        if field.name in taken:
            continue
        try:
            declared = file_type(field.name) if field.dtype is None else data_type(field.dtype, file_type(field.name))
            if declared is None:
                raise ValueError("its type is unknown")
            if declared.startswith("struct"):
                # (the feature_view materialization takes struct columns on DuckDB, not on every engine)
                raise ValueError(f"a struct ({declared}); struct features are not translated yet: on DuckDB, "
                                 "add the column to the model and its YAML yourself")
        except ValueError as exc:
            note(f"feature {field.name}", f"not translated: {exc}")
            continue
        kind = "its type from the file" if field.dtype is None else dtype_text(field.dtype)
        description = field.description or f"{field.name} (imported from Feast, {kind}): describe it."
        columns.append(Column(field.name, f"cast({quote(to_source.get(field.name, field.name))} as {declared})",
                              declared, description, "feature"))
    return columns


@dataclass
class Output:
    """What the import writes (relative path -> text) and what it translated."""

    files: dict[str, str]
    views: dict[str, list[Column]]  # translated view -> its columns
    services: list[str]  # translated services


def render(repo: FeastRepo, out_dir: Path, new_project: bool, package: str) -> Output:
    """Every file of the dbt side; what is left out is added to repo.notes."""
    schemas = Schemas(repo)
    views = {name: view_columns(view, repo, schemas) for name, view in repo.views.items()}
    views = {name: columns for name, columns in views.items() if any(c.role == "feature" for c in columns)}
    templates = _templates()
    files = {str(MODEL_FOLDER / f"{name}.sql"): templates.get_template("feature_view.sql.j2").render(
        view=repo.views[name], columns=columns, source_group=SOURCE_GROUP) for name, columns in views.items()}
    files[str(MODEL_FOLDER / "_sources.yml")] = _yaml(
        "Imported from Feast: the data sources the feature views read.",
        {"version": 2, "sources": [{"name": SOURCE_GROUP, "tables": _sources(repo, views, schemas, out_dir)}]})
    entity_models = []
    for entity in _used_entities(repo, views):
        parts = _entity_parts(repo, views, entity)
        files[str(MODEL_FOLDER / f"{entity.name}_keys.sql")] = templates.get_template("entity_keys.sql.j2").render(
            entity=entity, parts=parts, source_group=SOURCE_GROUP)
        entity_models.append(_entity_model(entity, parts[0]["columns"]))
    files[str(MODEL_FOLDER / "_models.yml")] = _yaml(
        "Imported from Feast: one model per entity (its declaration) and one feature_view model per feature view.",
        {"version": 2, "models": entity_models + [_view_model(repo.views[name], columns)
                                                  for name, columns in views.items()]})
    exposures = [exposure for exposure in (_exposure(repo, service, views) for service in repo.services.values())
                 if exposure]
    if exposures:
        files[str(MODEL_FOLDER / "_services.yml")] = _yaml(
            "Imported from Feast: each feature service as an exposure of type ml.", {"version": 2, "exposures": exposures})
    if new_project:
        files.update(_project_files(repo, package))
    return Output(files, views, [exposure["name"] for exposure in exposures])


def _sources(repo: FeastRepo, views: dict, schemas: Schemas, out_dir: Path) -> list[dict]:
    tables: dict[str, dict] = {}
    for name in views:
        source = repo.views[name].source
        if source.name in tables:
            continue
        if source.kind == "file":
            path = schemas.path(source.location)
            # dbt runs from the project directory: a path relative to it works wherever dbt is started
            location = source.location if path is None else os.path.relpath(path.resolve(), out_dir.resolve())
            tables[source.name] = {"name": source.name, "description": f"Feast FileSource {source.name} ({source.where}).",
                                   "config": {"meta": {"external_location": f"read_parquet({_sql_text(location)})"}}}
            continue
        parts = source.location.split(".")
        tables[source.name] = {"name": source.name, "identifier": parts[-1],
                               "description": f"Feast table source {source.location} ({source.where})."}
        if len(parts) >= 2:
            tables[source.name]["schema"] = parts[-2]
        repo.notes.append(Note(source.where, f"table source {source.name}",
                               f"declared as the dbt source table {source.location}: your profile must reach it"))
    return list(tables.values())


def _entity_parts(repo: FeastRepo, views: dict, entity: FeastEntity) -> list[dict]:
    """One select of the entity's keys per source that holds them."""
    parts: list[dict] = []
    for view_name, columns in views.items():
        view = repo.views[view_name]
        if entity in view.entities and not any(part["source"] == view.source.name for part in parts):
            parts.append({"source": view.source.name, "columns": [c for c in columns if c.name in entity.join_keys]})
    return parts


def _entity_model(entity: FeastEntity, keys: list[Column]) -> dict:
    return {"name": f"{entity.name}_keys",
            "description": f"Every key of the {entity.name} entity in the feature views' sources.",
            "config": {"materialized": "view", "meta": {"featurestore": {"entities": [{
                "name": entity.name, "join_keys": list(entity.join_keys),
                "description": entity.description or f"{entity.name} (imported from Feast): describe it."}]}}},
            "columns": [_column_yaml(c) for c in keys]}


def _view_model(view: FeastView, columns: list[Column]) -> dict:
    meta: dict[str, Any] = {"entities": [e.name for e in view.entities], "event_timestamp": view.source.timestamp_field}
    if view.source.created_timestamp_column:
        meta["created_timestamp"] = view.source.created_timestamp_column
    if view.ttl is not None:
        meta["ttl"] = format_duration(view.ttl)  # the one duration grammar: 1d, 36h
    meta["online"] = view.online
    meta["owner"] = view.owner or PLACEHOLDER_OWNER
    if view.push_source:
        meta["push"] = True
    if view.tags:
        meta["tags"] = [f"{key}:{value}" for key, value in view.tags]
    return {"name": view.name, "description": view.description or f"Feast feature view {view.name} ({view.where}).",
            "config": {"materialized": "feature_view", "meta": {"featurestore": meta}},
            "columns": [_column_yaml(c) for c in columns]}


def _exposure(repo: FeastRepo, service, views: dict) -> dict | None:
    """The service as an ml exposure listing its translated features (None when none are)."""
    refs, depends = [], []
    for view_name, selected in service.features:
        if view_name not in views:
            continue
        available = [c.name for c in views[view_name] if c.role == "feature"]
        for feature in selected or available:
            if feature in available:
                refs.append(f"{view_name}:{feature}")
            else:
                repo.notes.append(Note(service.where, f"feature service {service.name}",
                                       f"{view_name}:{feature} left out (not translated)"))
        if f"ref('{view_name}')" not in depends:
            depends.append(f"ref('{view_name}')")
    if not refs:
        repo.notes.append(Note(service.where, f"feature service {service.name}", "not translated: none of its "
                                                                                  "features were"))
        return None
    owner = {"email": service.owner} if service.owner and "@" in service.owner else \
        {"name": service.owner or PLACEHOLDER_OWNER}
    return {"name": service.name, "type": "ml", "owner": owner,
            "description": service.description or f"Feast feature service {service.name} ({service.where}).",
            "depends_on": depends, "config": {"meta": {"featurestore": {"features": refs}}}}


def _project_files(repo: FeastRepo, package: str) -> dict[str, str]:
    project = _dbt_name(repo.project)
    return {
        "dbt_project.yml": _yaml(
            f"Imported from the Feast repository {repo.path.name} (project {repo.project}) by `featurestore import-feast`.",
            {"name": project, "version": "0.1.0", "config-version": 2, "profile": project, "model-paths": ["models"],
             "flags": {"send_anonymous_usage_stats": False},
             "vars": {"featurestore_online": {"endpoint_url": "auto", "region": "us-east-1",
                                              "table_prefix": f"{project}_"}}}),
        "profiles.yml": _yaml(
            "DuckDB, in this folder; the Parquet sources are read in place.",
            {project: {"target": "duckdb", "outputs": {"duckdb": {
                "type": "duckdb", "path": f"{{{{ env_var('FEATURESTORE_DUCKDB_PATH', '{project}.duckdb') }}}}",
                "schema": "main", "threads": 2}}}}, jinja=True),
        "packages.yml": _yaml("featurestore's macros (the feature_view materialization).",
                              {"packages": [{"local": package}]}),
    }


def _used_entities(repo: FeastRepo, views: dict) -> list[FeastEntity]:
    used: list[FeastEntity] = []
    for name in views:
        for entity in repo.views[name].entities:
            if entity not in used:
                used.append(entity)
    return used


def _column_yaml(column: Column) -> dict:
    entry: dict[str, Any] = {"name": column.name, "description": column.description}
    if column.data_type:
        entry["data_type"] = column.data_type
    return entry


def _yaml(comment: str, data: dict, jinja: bool = False) -> str:
    """A YAML file; text in it cannot open Jinja unless `jinja` (our own templating, such as the
    profile's env_var, over names already made safe)."""
    if not jinja:
        comment, data = inert(comment), inert(data)
    return f"# {comment}\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def _dbt_name(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return cleaned if _SIMPLE_NAME.match(cleaned) else f"feast_{cleaned}"


def check_names(repo: FeastRepo) -> None:
    """dbt model names are file names and identifiers: refuse Feast names that cannot be one."""
    for kind, names in (("feature view", repo.views), ("entity", repo.entities), ("feature service", repo.services)):
        for name, item in names.items():
            if not _SIMPLE_NAME.match(name):
                raise FeatureStoreError(f"{item.where}: the {kind} name '{name}' is not a dbt model name "
                                        "(lowercase letters, digits and _): rename it in Feast first.")
    clashes = {f"{entity}_keys" for entity in repo.entities} & set(repo.views)
    if clashes:
        raise FeatureStoreError(f"A feature view is named like an entity's key model ({', '.join(sorted(clashes))}); "
                                "rename it in Feast first.")


def report_text(repo: FeastRepo, output: Output, out_dir: Path) -> str:
    lines = [f"# Imported from Feast: {repo.project}", "",
             f"Feast repository: {repo.path}", f"dbt project: {out_dir}", "", "## Translated", ""]
    for name, columns in output.views.items():
        view = repo.views[name]
        features = [c.name for c in columns if c.role == "feature"]
        lines.append(f"- feature view `{name}` ({view.where}): {len(features)} features ({', '.join(features)}), "
                     f"ttl {format_duration(view.ttl) if view.ttl else 'none'}, online {str(view.online).lower()}"
                     + (f", push (Feast push source {view.push_source})" if view.push_source else ""))
    for entity in _used_entities(repo, output.views):
        lines.append(f"- entity `{entity.name}` ({entity.where}): join keys {', '.join(entity.join_keys)}, "
                     f"declared on `{entity.name}_keys`")
    for name in output.services:
        service = repo.services[name]
        lines.append(f"- feature service `{name}` ({service.where}): an `ml` exposure")
    lines += ["", "## Not translated, or translated with a placeholder", ""]
    notes = len(lines)
    lines += [f"- {note}" for note in repo.notes]
    placeholders = [name for name, view in repo.views.items() if name in output.views and not view.owner]
    if placeholders:
        lines.append(f"- owner of {', '.join(placeholders)}: `{PLACEHOLDER_OWNER}` (Feast gave none; validate needs one)")
    undescribed = [f"{name}.{c.name}" for name, columns in output.views.items() for c in columns
                   if c.role == "feature" and c.description.endswith("describe it.")]
    if undescribed:
        lines.append(f"- descriptions of {len(undescribed)} features are placeholders ending in 'describe it.' "
                     f"({', '.join(undescribed)})")
    if len(lines) == notes:
        lines.append("- nothing")
    return "\n".join(lines) + "\n"

