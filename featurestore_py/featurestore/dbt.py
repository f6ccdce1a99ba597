"""The only place that invokes dbt and knows where a project keeps its files.

dbt runs in-process through `dbtRunner`, always with the project's `profiles/` directory, and
with the environment defaults the project's profiles expect made absolute, so commands work
from any working directory.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .errors import ManifestError

# Files whose change makes a parsed manifest stale.
_PROJECT_INPUTS = ("models", "macros", "tests/dbt", "seeds", "snapshots")
_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")


@dataclass(frozen=True)
class DbtProject:
    """Paths of one dbt project and the environment its profile reads."""

    project_dir: Path
    target: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def at(cls, project_dir: str | os.PathLike = ".", target: str | None = None,
           env: Mapping[str, str] | None = None) -> "DbtProject":
        """A project; `env` overrides environment variables for this project only (tests use it)."""
        path = Path(project_dir).resolve()
        if not (path / "dbt_project.yml").is_file():
            raise ManifestError(f"{path} is not a dbt project: it has no dbt_project.yml.")
        return cls(path, target, MappingProxyType(dict(env or {})))

    @property
    def profiles_dir(self) -> Path:
        env = os.environ.get("DBT_PROFILES_DIR")
        return Path(env).resolve() if env else self.project_dir / "profiles"

    @property
    def manifest_path(self) -> Path:
        return self.project_dir / "target" / "manifest.json"

    def environment_defaults(self) -> dict[str, str]:
        """Absolute defaults for the variables profiles.yml and the sources read."""
        return {
            "FEATURESTORE_DUCKDB_PATH": str(self.project_dir / "warehouse" / "featurestore.duckdb"),
            "FEATURESTORE_RAW_DIR": str(self.project_dir / "data" / "raw"),
        }

    def variables(self) -> dict[str, str]:
        """The environment as this project sees it: process env, then overrides, then defaults."""
        values = {name: os.environ.get(name, default) for name, default in self.environment_defaults().items()}
        values.update(self.env)
        if self.target:
            values["FEATURESTORE_TARGET"] = self.target
        return values

    @contextmanager
    def environment(self):
        """Set this project's variables in os.environ (dbt reads them there), restore them after."""
        wanted = self.variables()
        saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        Path(wanted["FEATURESTORE_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        try:
            yield wanted
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- manifest ----------------------------------------------------------------------------
    def manifest_is_stale(self) -> bool:
        manifest = self.manifest_path
        if not manifest.is_file():
            return True
        built = manifest.stat().st_mtime
        for name in _PROJECT_FILES:
            path = self.project_dir / name
            if path.is_file() and path.stat().st_mtime > built:
                return True
        for folder in _PROJECT_INPUTS:
            root = self.project_dir / folder
            if root.is_dir():
                for path in root.rglob("*"):
                    if path.suffix in (".sql", ".yml", ".yaml", ".csv", ".md") and path.stat().st_mtime > built:
                        return True
        return False

    @property
    def _parsed_for_path(self) -> Path:
        return self.project_dir / "target" / "featurestore_parsed_for.txt"

    def target_fingerprint(self) -> str:
        """What the manifest's relation names depend on: the rendered target, secrets left out."""
        import json

        from .profiles import load_target  # profiles imports this module

        target = {key: value for key, value in load_target(self).items() if "pass" not in key and "token" not in key}
        return json.dumps(target, sort_keys=True, default=str)

    def ensure_manifest(self) -> Path:
        """The manifest path, running `dbt parse` first when it is missing, older than the project,
        or written for another target (relation names depend on the target's database and schema)."""
        marker = self._parsed_for_path
        same_target = (marker.is_file() and self.manifest_path.is_file()
                       and self.manifest_path.stat().st_mtime <= marker.stat().st_mtime
                       and marker.read_text() == self.target_fingerprint())
        if self.manifest_is_stale() or not same_target:
            self.run("parse", "--quiet")
        return self.manifest_path

    # -- running dbt -------------------------------------------------------------------------
    def command_args(self, command: str, *args: str) -> list[str]:
        full = [*command.split(), "--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        if self.target and "--target" not in args:
            full += ["--target", self.target]
        return full + list(args)

    def run(self, command: str, *args: str, raise_on_failure: bool = True):
        """Run one dbt command in-process and return dbt's result object."""
        from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import

        with self.environment():
            try:
                result = dbtRunner().invoke(self.command_args(command, *args))
            finally:
                _release_duckdb()
        if self.manifest_path.is_file() and command not in ("deps", "clean", "debug"):
            # remember which target wrote the manifest (dbt rewrites it on most commands)
            self._parsed_for_path.write_text(self.target_fingerprint())
        if raise_on_failure and not result.success:
            detail = f": {result.exception}" if result.exception else "; see the dbt output above"
            raise ManifestError(f"`dbt {command}` failed in {self.project_dir}{detail}")
        return result


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a command.

    Otherwise the file stays open with dbt-duckdb's settings and the same process cannot open it
    again with others (the SDK, the tests). dbt-duckdb reopens it on its next command.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        try:
            environment.close()
        finally:
            DuckDBConnectionManager._ENV = None
