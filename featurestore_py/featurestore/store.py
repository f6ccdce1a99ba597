"""`FeatureStore`: the façade SDK users and the CLI hold; it wires registry, dbt and warehouse."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Mapping

from .dbt import DbtProject
from .errors import InvalidRegistryError
from .registry import Registry, load_manifest, registry_from_manifest
from .validate import Problem, errors, validate


class FeatureStore:
    """A dbt project seen as a feature store.

    >>> store = FeatureStore(".")              # reads target/manifest.json (dbt parse if stale)
    >>> store.registry.view("customer_features").features
    """

    def __init__(self, project_dir: str | os.PathLike = ".", target: str | None = None, *,
                 strict: bool = True, env: Mapping[str, str] | None = None):
        self.project = DbtProject.at(project_dir, target, env)
        self.strict = strict

    @cached_property
    def registry(self) -> Registry:
        """The registry, validated: an error in the YAML raises InvalidRegistryError (unless strict=False)."""
        registry = registry_from_manifest(load_manifest(self.project.ensure_manifest()))
        if self.strict:
            found = errors(validate(registry, self.project.project_dir))
            if found:
                raise InvalidRegistryError(found)
        return registry

    def validate(self) -> list[Problem]:
        """Every problem of the project's feature metadata, errors and warnings."""
        registry = registry_from_manifest(load_manifest(self.project.ensure_manifest()))
        return validate(registry, self.project.project_dir)

    def build(self, *dbt_args: str):
        """`dbt build` with the project's profiles; returns dbt's result."""
        return self.project.run("build", *dbt_args)
