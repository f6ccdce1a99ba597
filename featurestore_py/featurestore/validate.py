"""Rules over the registry: each broken rule becomes a Problem naming the model, column and file.

`validate(registry)` returns every problem at once; `featurestore validate` prints them and
exits 1 when any is an error. The store runs the same rules when it loads.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection

import pyarrow as pa
import yaml

from . import ondemand
from .durations import parse_duration
from .errors import RegistryError
from .registry import FeatureView, OnDemandView, Registry
from .streaming import is_streaming, stream_spec
from .types import DATE, TIMESTAMP, declared_family, type_mismatch, unknown_type

ERROR, WARNING = "error", "warning"

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
WINDOW_SUFFIX = re.compile(r"_([0-9]+[smhdw])$")
EXPECT_KEYS = {"min", "max", "values", "max_null_rate"}
DRIFT_KEYS = {"max_psi", "max_tvd"}
VIEW_KEYS = {"entities", "event_timestamp", "created_timestamp", "ttl", "online", "owner", "tags", "max_staleness", "stream",
             "description", "push"}
COLUMN_KEYS = {"window", "expect", "drift"}
# Names the snapshot table, the online store's items or the SDK use themselves.
RESERVED_NAMES = {"valid_from", "valid_to", "superseded_at", "entity_key", "event_timestamp", "created_timestamp",
                  "_event_timestamp", "_created_timestamp", "_expires_at"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Problem:
    severity: str
    rule: str
    message: str
    file: str
    model: str | None = None  # the model, or the exposure of a feature service (kind)
    column: str | None = None
    kind: str = "model"

    def __str__(self) -> str:
        where = [self.file or "?"]
        if self.model:
            where.append(f"{self.kind} '{self.model}'")
        if self.column:
            where.append(f"column '{self.column}'")
        return f"{self.severity}: {', '.join(where)}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict:
        return {
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
            "file": self.file,
            "model": self.model,
            "column": self.column,
            "kind": self.kind,
        }


def validate(registry: Registry, project_dir: str | Path | None = None) -> list[Problem]:
    """Every problem of the registry; pass project_dir to also check the YAML files themselves."""
    problems: list[Problem] = []
    problems += _check_entities(registry)
    for view in registry.feature_views.values():
        problems += _check_view(registry, view)
        if project_dir is not None:
            problems += _check_yaml_duplicates(Path(project_dir), view)
    for view in registry.on_demand_views.values():
        problems += _check_on_demand(registry, view)
    problems += _check_services(registry)
    return problems


def built_type_problems(view: FeatureView | OnDemandView, built: pa.Schema, dialect: str) -> list[Problem]:
    """Each declared column of `view` whose built column (in `built`, the schema of its table)
    does not have the declared data_type (the rule: featurestore.types)."""
    columns = {name.lower(): built.field(name).type for name in built.names}
    problems = []
    for name, declared in view.columns.items():
        if name.lower() not in columns:
            continue  # a column missing from the table fails dbt build itself
        why = type_mismatch(declared, columns[name.lower()], dialect)
        if why:
            problems.append(Problem(ERROR, "type-mismatch", why, file=view.yaml_path,
                                    model=view.name, column=name))
    return problems


def built_types(registry: Registry, connect: Callable[[], Any], only: Collection[str] | None = None) -> list[Problem]:
    """built_type_problems for every feature view (or those named in `only`) whose table exists
    in the warehouse that `connect()` opens. Nothing to compare (no problem) when the warehouse
    cannot be opened (a project not built yet) or a view has no table yet."""
    from .errors import FeatureStoreError
    from .warehouse import WarehouseError

    try:
        warehouse = connect()
    except FeatureStoreError:
        return []
    problems = []
    with warehouse:
        for view in [*registry.feature_views.values(), *registry.on_demand_views.values()]:
            if only is not None and view.name not in only:
                continue
            try:
                built = warehouse.fetch_arrow(warehouse.render("relation_probe", probe="columns",
                                                               relation=view.relation_name)).schema
            except WarehouseError:
                continue
            problems += built_type_problems(view, built, warehouse.dialect)
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.severity == ERROR]


# -- entities ------------------------------------------------------------------------------------


def _check_entities(registry: Registry) -> list[Problem]:
    problems = []
    seen: dict[str, str] = {}
    for entity in registry.entity_declarations:
        where = dict(file=entity.yaml_path, model=entity.declared_in)
        if not SNAKE_CASE.match(entity.name):
            problems.append(Problem(ERROR, "naming", f"entity name '{entity.name}' is not snake_case", **where))
        if entity.name in seen:
            problems.append(Problem(
                ERROR, "duplicate-entity",
                f"entity '{entity.name}' is declared again; it is already declared on model '{seen[entity.name]}'. "
                "Declare each entity once.", **where))
        seen.setdefault(entity.name, entity.declared_in)
        if not entity.join_keys:
            problems.append(Problem(ERROR, "entity-join-keys", f"entity '{entity.name}' has no join_keys", **where))
        for key in entity.join_keys:
            if key not in registry.model_columns.get(entity.declared_in, ()):
                problems.append(Problem(
                    ERROR, "missing-join-key",
                    f"join key '{key}' of entity '{entity.name}' is not a column of the model that declares it",
                    column=key, **where))
        if not entity.description:
            problems.append(Problem(WARNING, "missing-description", f"entity '{entity.name}' has no description", **where))
    return problems


# -- feature views -------------------------------------------------------------------------------


def _check_view(registry: Registry, view: FeatureView) -> list[Problem]:
    where = dict(file=view.yaml_path, model=view.name)
    problems = []

    def problem(severity, rule, message, column=None):
        problems.append(Problem(severity, rule, message, column=column, **where))

    if not SNAKE_CASE.match(view.name):
        problem(ERROR, "naming", f"feature view name '{view.name}' is not snake_case")
    if not view.entities:
        problem(ERROR, "unknown-entity", "the feature view lists no entities; add `entities: [<entity name>]`")
    for name in view.entities:
        if name not in registry.entities:
            known = ", ".join(sorted(registry.entities)) or "none declared"
            problem(ERROR, "unknown-entity", f"entity '{name}' is not declared (declared entities: {known})")
            continue
        for key in registry.entities[name].join_keys:
            if key not in view.columns:
                problem(ERROR, "missing-join-key",
                        f"join key '{key}' of entity '{name}' is not among the model's columns", column=key)

    for key in view.entity_columns:
        if unknown := unknown_type(key.dtype):
            problem(WARNING, "unknown-type", f"{unknown}; online, this key then takes strings and integers alike (a "
                    "key sent as the wrong one is not found instead of refused)", column=key.name)
    problems += _check_view_types(view)
    problems += _check_timestamps(view)
    problems += _check_stream(view)
    if not view.owner:
        problem(ERROR, "missing-owner", "the feature view has no owner; add `owner:` under config.meta.featurestore")
    if not view.description:
        problem(WARNING, "missing-description", "the feature view has no description")
    if view.ttl_text is None:
        if not is_streaming(view) and view.meta.get("ttl", "") is not None:  # `ttl: null` says so on purpose
            problem(WARNING, "no-ttl", "the feature view has no ttl: its values never expire (write `ttl: null` "
                    "to say that this is meant)")
    elif isinstance(view.meta.get("ttl"), str):  # (another type is reported once, as bad-type)
        try:
            parse_duration(view.meta.get("ttl"))
        except ValueError as exc:
            problem(ERROR, "bad-ttl", f"ttl {exc}")
    if not view.features:
        problem(ERROR, "no-features", "the feature view has no feature columns declared in its YAML")

    names = Counter(feature.name.lower() for feature in view.features)
    for feature in view.features:
        if names[feature.name.lower()] > 1:
            problem(ERROR, "duplicate-feature",
                    f"feature '{feature.name}' is declared more than once (names are compared without case)",
                    column=feature.name)
        if not feature.description:
            problem(ERROR, "missing-description", "the feature has no description", column=feature.name)
        if not feature.dtype:
            problem(ERROR, "missing-type", "the feature has no data_type", column=feature.name)
        elif unknown := unknown_type(feature.dtype):
            problem(WARNING, "unknown-type", unknown, column=feature.name)
        problems += [
            Problem(ERROR, "naming", message, column=feature.name, **where) for message in _naming_problems(feature)
        ]
        if feature.name.lower() in RESERVED_NAMES or feature.name.lower().startswith("_fs_"):
            problem(ERROR, "reserved-name", f"feature name '{feature.name}' is used by featurestore itself (snapshot "
                    "columns, online items); rename the column", column=feature.name)
        for message in _expectation_problems(feature):
            problem(ERROR, "bad-expectation", message, column=feature.name)
    staleness = view.meta.get("max_staleness")
    if staleness is not None:
        try:
            parse_duration(staleness)
        except ValueError as exc:
            problem(ERROR, "bad-ttl", f"max_staleness {exc}")
    return problems


def _check_stream(view: FeatureView) -> list[Problem]:
    """A streaming view's `stream:` block (streaming.stream_spec's rules), its created timestamp
    (the push time of its events) and no TTL (its windows say how long an event counts)."""
    if not is_streaming(view):
        return []
    where = dict(file=view.yaml_path, model=view.name)
    problems = []
    try:
        stream_spec(view)
    except RegistryError as exc:
        problems.append(Problem(ERROR, "bad-stream", str(exc), **where))
    if not view.created_timestamp:
        problems.append(Problem(ERROR, "bad-stream", "a streaming view needs a `created_timestamp` (the macro "
                                "stream_windows writes each row's time there)", **where))
    if view.ttl_text is not None:
        problems.append(Problem(ERROR, "bad-stream", "a streaming view takes no `ttl`: its windows say how long an "
                                "event counts, and a key with no event in the longest window has no values", **where))
    if view.meta.get("push") is False:
        problems.append(Problem(ERROR, "bad-stream", "a streaming view is pushed to: remove `push: false`", **where))
    return problems


def _check_view_types(view: FeatureView) -> list[Problem]:
    """Each value of the view's meta has the type it must have: nothing is coerced silently."""
    where = dict(file=view.yaml_path, model=view.name)
    problems = []
    meta = view.meta

    def bad(key, wanted, example):
        problems.append(Problem(ERROR, "bad-type", f"`{key}: {meta.get(key)!r}` must be {wanted}, e.g. `{key}: {example}`",
                                **where))

    if "entities" in meta and not (isinstance(meta["entities"], list) and all(isinstance(e, str) for e in meta["entities"])):
        bad("entities", "a list of entity names", "[store]")
    for key in ("event_timestamp", "created_timestamp", "owner"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(key, "a string", "feature_ts" if "timestamp" in key else "team@example.com")
    for key in ("online", "push"):
        if key in meta and not isinstance(meta[key], bool):
            bad(key, "true or false (a YAML boolean, not a string)", "true")
    if meta.get("tags") is not None and not (isinstance(meta["tags"], list) and all(isinstance(t, str) for t in meta["tags"])):
        bad("tags", "a list of strings", "[orders]")
    if meta.get("ttl") is not None and not isinstance(meta["ttl"], str):
        bad("ttl", "a duration string", "2d")
    unknown = set(meta) - VIEW_KEYS
    if unknown:
        problems.append(Problem(WARNING, "unknown-key", f"config.meta.featurestore has unknown key(s) "
                                f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(VIEW_KEYS))}", **where))
    if view.created_timestamp and view.created_timestamp == view.event_timestamp:
        problems.append(Problem(WARNING, "created-is-event", _CREATED_IS_EVENT.format(created=view.created_timestamp),
                                column=view.created_timestamp, **where))
    elif (isinstance(view.created_timestamp, str) and isinstance(view.event_timestamp, str)
          and _same_source(view.raw_code, view.event_timestamp, view.created_timestamp)):
        problems.append(Problem(WARNING, "created-is-event", _CREATED_IS_EVENT.format(created=view.created_timestamp),
                                column=view.created_timestamp, **where))
    return problems


_CREATED_IS_EVENT = (
    "the created timestamp '{created}' is the event time: a late or corrected source row gets an old created "
    "time, so incremental builds and syncs never see it. Use when the row was loaded (see rolling_window's "
    "load_time_column and the README's modelling guide)")


# a column (not a type after `::`, not the end of a call), then `::type` casts, PostgreSQL's and DuckDB's:
# `::timestamp(3) with time zone`, `::decimal(18, 2)`: any words and one parenthesis each, up to ` as ` (3 at most)
_COLUMN = r"(?<![\w.:)\"'])([A-Za-z_][\w.]*)"
_CASTS = r"(?:\s*::\s*[A-Za-z_][^,():]*?(?:\([^)]*\)[^,():]*?)?){0,3}"


def _same_source(sql: str, event: str, created: str) -> bool:
    """Does the model's SQL select the same column as both the event and the created timestamp
    (`ordered_at as feature_ts, ordered_at as loaded_at`, casts such as `ordered_at::timestamp`
    included)? A heuristic for a warning: an alias of an expression (a call, `cast(...)`) has no
    source column."""
    def source_of(alias: str) -> str | None:
        match = re.search(rf"{_COLUMN}{_CASTS}\s+as\s+\"?{re.escape(alias)}\"?\b", sql, re.IGNORECASE)
        return match.group(1).split(".")[-1].lower() if match else None

    event_source, created_source = source_of(event), source_of(created)
    if created_source is not None and created_source == (event_source or event.lower()):
        return True
    return event_source is not None and event_source == created.lower()


def _expectation_problems(feature) -> list[str]:
    """expect: min/max numbers, values a list of numbers or strings, max_null_rate in [0, 1];
    drift: positive numbers; window a duration; no unknown keys."""
    messages = []
    for key, known in (("expect", EXPECT_KEYS), ("drift", DRIFT_KEYS)):
        block = feature.meta.get(key)
        if block is None:
            continue
        if not isinstance(block, dict):
            messages.append(f"`{key}` must be a mapping, e.g. `{key}: {{min: 0}}`" if key == "expect"
                            else f"`{key}` must be a mapping, e.g. `{key}: {{max_psi: 0.25}}`")
            continue
        unknown = set(block) - known
        if unknown:
            messages.append(f"{key} has unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    expect = feature.meta.get("expect") if isinstance(feature.meta.get("expect"), dict) else {}
    for bound in ("min", "max"):
        if bound in expect and not _is_number(expect[bound]):
            messages.append(f"expect.{bound} must be a number, not {expect[bound]!r}")
    if _is_number(expect.get("min")) and _is_number(expect.get("max")) and expect["min"] > expect["max"]:
        messages.append(f"expect.min {expect['min']} is greater than expect.max {expect['max']}")
    if "values" in expect:
        values = expect["values"]
        if not isinstance(values, list) or not values:
            messages.append(f"expect.values must be a non-empty list, not {values!r}")
        else:
            wrong = [v for v in values if not (isinstance(v, str) or _is_number(v))]
            if wrong:
                messages.append(f"expect.values may hold only strings and numbers; got {wrong!r}")
    if "max_null_rate" in expect and not (_is_number(expect["max_null_rate"]) and 0 <= expect["max_null_rate"] <= 1):
        messages.append(f"expect.max_null_rate must be a number from 0 to 1, not {expect['max_null_rate']!r}")
    drift = feature.meta.get("drift") if isinstance(feature.meta.get("drift"), dict) else {}
    for key, value in drift.items():
        if key in DRIFT_KEYS and not (_is_number(value) and value > 0):
            messages.append(f"drift.{key} must be a positive number, not {value!r}")
    unknown = set(feature.meta) - COLUMN_KEYS
    if unknown:
        messages.append(f"column meta has unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(COLUMN_KEYS))}")
    return messages


def _check_timestamps(view: FeatureView) -> list[Problem]:
    where = dict(file=view.yaml_path, model=view.name)
    problems = []
    if not view.event_timestamp:
        problems.append(Problem(ERROR, "missing-timestamp",
                                "the feature view has no event_timestamp column in config.meta.featurestore", **where))
    for role, column in (("event_timestamp", view.event_timestamp), ("created_timestamp", view.created_timestamp)):
        if not column:
            continue
        if column not in view.columns:
            problems.append(Problem(ERROR, "missing-timestamp",
                                    f"{role} column '{column}' is not among the model's columns", column=column, **where))
            continue
        dtype = (view.columns[column] or "").lower()
        if not dtype:
            problems.append(Problem(ERROR, "missing-type", f"{role} column has no data_type", column=column, **where))
        elif declared_family(dtype) not in (TIMESTAMP, DATE):
            problems.append(Problem(ERROR, "bad-timestamp-type",
                                    f"{role} column has data_type '{dtype}'; it must be a timestamp or date",
                                    column=column, **where))
    return problems


def _naming_problems(feature) -> list[str]:
    messages = []
    if not SNAKE_CASE.match(feature.name):
        messages.append(f"feature name '{feature.name}' is not snake_case")
    if feature.window is not None:
        try:
            parse_duration(feature.window)
        except ValueError as exc:
            messages.append(f"window {exc}")
            return messages
        if not feature.name.endswith(f"_{str(feature.window).strip().lower()}"):
            messages.append(
                f"feature '{feature.name}' is a {feature.window} windowed aggregate; its name must end in "
                f"'_{feature.window}' (e.g. '{feature.name}_{feature.window}')")
    else:
        suffix = WINDOW_SUFFIX.search(feature.name)
        if suffix:
            messages.append(
                f"feature '{feature.name}' ends in a window suffix '_{suffix.group(1)}' but declares no "
                f"`window: {suffix.group(1)}` in its column meta")
    return messages


def _check_yaml_duplicates(project_dir: Path, view: FeatureView) -> list[Problem]:
    """dbt keeps only one of two columns with the same name, so duplicates are found in the YAML."""
    path = project_dir / view.yaml_path
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    problems = []
    for model in document.get("models") or []:
        if not isinstance(model, dict) or model.get("name") != view.name:
            continue
        counts = Counter(column.get("name") for column in model.get("columns") or [] if isinstance(column, dict))
        for name, count in counts.items():
            if count > 1:
                problems.append(Problem(
                    ERROR, "duplicate-feature",
                    f"column '{name}' is declared {count} times in the YAML; dbt keeps only one of them",
                    file=view.yaml_path, model=view.name, column=name))
    return problems


# -- feature services ----------------------------------------------------------------------------


def _check_services(registry: Registry) -> list[Problem]:
    problems = []
    for service in registry.services.values():
        where = dict(file=service.yaml_path, model=service.name, kind="exposure")
        listed = service.meta.get("features")
        if listed is not None and not (isinstance(listed, list) and all(isinstance(r, str) for r in listed)):
            problems.append(Problem(ERROR, "bad-type", f"`features: {listed!r}` must be a list of 'view:feature' "
                                    "references, e.g. `features: [customer_features:total_orders_30d]`", **where))
        if not service.feature_refs:
            problems.append(Problem(ERROR, "unknown-feature-reference",
                                    "the feature service uses no features: list `features:` or depend on a feature view",
                                    **where))
        for reference in service.feature_refs:
            view_name, sep, feature_name = reference.partition(":")
            if not sep or not view_name or not feature_name:
                problems.append(Problem(ERROR, "unknown-feature-reference",
                                        f"feature reference '{reference}' is not of the form 'view:feature'", **where))
            elif view_name not in registry.feature_views and view_name not in registry.on_demand_views:
                problems.append(Problem(ERROR, "unknown-feature-reference",
                                        f"feature reference '{reference}': there is no feature view '{view_name}'",
                                        **where))
            elif feature_name not in {f.name for f in (registry.feature_views.get(view_name)
                                                       or registry.on_demand_views[view_name]).features}:
                problems.append(Problem(ERROR, "unknown-feature-reference",
                                        f"feature reference '{reference}': view '{view_name}' has no feature "
                                        f"'{feature_name}'", **where))
            elif view_name not in service.depends_on:
                problems.append(Problem(WARNING, "service-lineage",
                                        f"feature '{reference}' is used but '{view_name}' is not in depends_on; "
                                        f"add ref('{view_name}') so dbt's lineage shows it", **where))
    return problems


def _check_on_demand(registry: Registry, view: OnDemandView) -> list[Problem]:
    """An on-demand view's request fields, inputs and expressions (featurestore.ondemand)."""
    problems = []

    def problem(rule, message, column=None):
        problems.append(Problem(ERROR, rule, message, file=view.yaml_path, model=view.name, column=column))

    spec = view.meta
    if not isinstance(spec.get("request", {}), dict) or not isinstance(spec.get("inputs", []), list):
        problem("bad-type", "`on_demand:` needs `request: {field: type}` and `inputs: [view:feature, ...]`")
    reserved = set(RESERVED_NAMES)
    bare_names: Counter = Counter(list(view.request))
    for reference in view.inputs:
        source_name, _, feature_name = reference.partition(":")
        if source_name in registry.on_demand_views:
            problem("unknown-input", f"input '{reference}' is an on-demand feature; inputs must be features of "
                    "feature views (on-demand features of on-demand features are not supported)")
        elif source_name not in registry.feature_views:
            problem("unknown-input", f"input '{reference}': there is no feature view '{source_name}' "
                    "(inputs are 'view:feature')")
        elif feature_name not in {feature.name for feature in registry.feature_views[source_name].features}:
            problem("unknown-input", f"input '{reference}': '{source_name}' has no feature '{feature_name}'")
        else:
            source = registry.feature_views[source_name]
            if all(entity in registry.entities for entity in source.entities):
                reserved |= set(registry.join_keys(source))
            reserved |= {source.event_timestamp, source.created_timestamp} - {None}
        bare_names[feature_name] += 1
    for name, dtype in view.request.items():
        if declared_family(dtype) is None:
            problem("unknown-type", f"request field '{name}' has type {dtype!r}, which featurestore does not know; "
                    "use a type such as double, bigint, varchar, boolean or timestamp", column=name)
    for name, count in bare_names.items():
        if count > 1:
            problem("name-collision", f"'{name}' names more than one request field or input; expressions name each "
                    "by its bare name, so they must differ", column=name)
    for name in [*bare_names, *(feature.name for feature in view.features)]:
        if name.lower() in reserved or name.lower().startswith("_fs_"):
            problem("reserved-name", f"'{name}' is a join key, a timestamp or a name featurestore uses itself; "
                    "rename the request field or feature", column=name)
    input_types = {f"{source.name}:{feature.name}": feature.dtype for source in registry.feature_views.values()
                   for feature in source.features}
    for feature in view.features:
        if feature.name in bare_names:
            problem("name-collision", f"feature '{feature.name}' has the name of a request field or input",
                    column=feature.name)
        expression = view.expression(feature)
        if not feature.dtype or not expression:
            problem("missing-expression", "an on-demand feature needs a data_type and `config: {meta: {featurestore: "
                    "{expression: ...}}}`", column=feature.name)
            continue
        if declared_family(feature.dtype) is None:
            problem("unknown-type", f"data_type {feature.dtype!r} is not a type featurestore knows", column=feature.name)
            continue
        try:
            unknown = [name for name in ondemand.referenced_names(expression, registry.adapter_type)
                       if name not in bare_names]
            scope = ondemand.scope_types(view, input_types)
            translated = ondemand.duckdb_cast(expression, feature.dtype, registry.adapter_type, scope)
            if not unknown:  # an unknown name is reported below, by name
                ondemand.check_in_duckdb(translated, scope)
        except ondemand.ExpressionError as exc:
            problem("bad-expression", f"expression {expression!r} {exc}", column=feature.name)
            continue
        if unknown:
            problem("bad-expression", f"expression {expression!r} refers to {', '.join(map(repr, unknown))}, neither "
                    f"a request field nor an input (it may use: {', '.join(bare_names) or 'nothing'})",
                    column=feature.name)
    return problems
