"""Rules over the registry: each broken rule becomes a Problem naming the model, column and file.

`validate(registry)` returns every problem at once; `featurestore validate` prints them and
exits 1 when any is an error. The store runs the same rules when it loads.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from .durations import parse_duration
from .registry import FeatureView, Registry

ERROR, WARNING = "error", "warning"

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
WINDOW_SUFFIX = re.compile(r"_([0-9]+[smhdw])$")
TIMESTAMP_TYPES = ("timestamp", "datetime", "date")
EXPECT_KEYS = {"min", "max", "values", "max_null_rate"}
DRIFT_KEYS = {"max_psi", "max_tvd"}


@dataclass(frozen=True)
class Problem:
    severity: str
    rule: str
    message: str
    file: str
    model: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file or "?"]
        if self.model:
            where.append(f"model '{self.model}'")
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
        }


def validate(registry: Registry, project_dir: str | Path | None = None) -> list[Problem]:
    """Every problem of the registry; pass project_dir to also check the YAML files themselves."""
    problems: list[Problem] = []
    problems += _check_entities(registry)
    for view in registry.feature_views.values():
        problems += _check_view(registry, view)
        if project_dir is not None:
            problems += _check_yaml_duplicates(Path(project_dir), view)
    problems += _check_services(registry)
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

    problems += _check_timestamps(view)
    if not view.owner:
        problem(ERROR, "missing-owner", "the feature view has no owner; add `owner:` under config.meta.featurestore")
    if not view.description:
        problem(WARNING, "missing-description", "the feature view has no description")
    if view.ttl_text is None:
        problem(WARNING, "no-ttl", "the feature view has no ttl: its values never expire")
    else:
        try:
            parse_duration(view.ttl_text)
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
        problems += [
            Problem(ERROR, "naming", message, column=feature.name, **where) for message in _naming_problems(feature)
        ]
        for key, known in (("expect", EXPECT_KEYS), ("drift", DRIFT_KEYS)):
            unknown = set(feature.meta.get(key) or {}) - known
            if unknown:
                problem(ERROR, "bad-expectation", f"{key} has unknown key(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(known))}", column=feature.name)
    staleness = view.meta.get("max_staleness")
    if staleness is not None:
        try:
            parse_duration(staleness)
        except ValueError as exc:
            problem(ERROR, "bad-ttl", f"max_staleness {exc}")
    return problems


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
        elif not dtype.startswith(TIMESTAMP_TYPES):
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
        where = dict(file=service.yaml_path, model=service.name)
        if not service.feature_refs:
            problems.append(Problem(ERROR, "unknown-feature-reference",
                                    "the feature service uses no features: list `features:` or depend on a feature view",
                                    **where))
        for reference in service.feature_refs:
            view_name, sep, feature_name = reference.partition(":")
            if not sep or not view_name or not feature_name:
                problems.append(Problem(ERROR, "unknown-feature-reference",
                                        f"feature reference '{reference}' is not of the form 'view:feature'", **where))
            elif view_name not in registry.feature_views:
                problems.append(Problem(ERROR, "unknown-feature-reference",
                                        f"feature reference '{reference}': there is no feature view '{view_name}'",
                                        **where))
            elif feature_name not in {f.name for f in registry.feature_views[view_name].features}:
                problems.append(Problem(ERROR, "unknown-feature-reference",
                                        f"feature reference '{reference}': view '{view_name}' has no feature "
                                        f"'{feature_name}'", column=feature_name, **where))
            elif view_name not in service.depends_on:
                problems.append(Problem(WARNING, "service-lineage",
                                        f"feature '{reference}' is used but '{view_name}' is not in depends_on; "
                                        f"add ref('{view_name}') so dbt's lineage shows it", **where))
    return problems
