"""`FeatureStore`: the façade SDK users and the CLI hold; it wires registry, dbt and warehouse."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Mapping

from pathlib import Path

from .dbt import DbtProject
from .errors import FeatureStoreError, InvalidRegistryError
from .profiles import load_target
from .registry import Registry, load_manifest, registry_from_manifest
from .validate import Problem, errors, validate
from .warehouse import Warehouse, connect

RAW_TABLES = ("raw_customers", "raw_orders", "raw_items", "raw_products", "raw_stores")


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

    @cached_property
    def target(self) -> dict:
        """The rendered dbt target (type, path or host, schema ...)."""
        return load_target(self.project)

    def connect(self) -> Warehouse:
        """A new connection to the target's warehouse; close it (or use `with`)."""
        return connect(self.target)

    def load_raw(self, directory: str | Path | None = None) -> dict[str, int]:
        """Load the demo's raw CSV files into the `raw` schema (for warehouses that cannot read files)."""
        folder = Path(directory or self.project.variables()["FEATURESTORE_RAW_DIR"])
        missing = [name for name in RAW_TABLES if not (folder / f"{name}.csv").is_file()]
        if missing:
            raise FeatureStoreError(f"{folder} lacks {', '.join(m + '.csv' for m in missing)}; run `make data` first.")
        counts = {}
        with self.connect() as warehouse:
            warehouse.execute("create schema if not exists raw")
            for name in RAW_TABLES:
                table = f"raw.{warehouse.quote(name)}"
                warehouse.load_csv(table, folder / f"{name}.csv")
                counts[name] = warehouse.fetch_all(f"select count(*) from {table}")[0][0]
        return counts
