"""The only place that invokes dbt and knows where a project keeps its files.

dbt runs in-process through `dbtRunner`, always with the project's `profiles/` directory, and
with the environment defaults the project's profiles expect made absolute, so commands work
from any working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ManifestError

# Files whose change makes a parsed manifest stale.
_PROJECT_INPUTS = ("models", "macros", "tests/dbt", "seeds", "snapshots")
_PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")


@dataclass(frozen=True)
class DbtProject:
    """Paths of one dbt project and the environment its profile reads."""

    project_dir: Path
    target: str | None = None

    @classmethod
    def at(cls, project_dir: str | os.PathLike = ".", target: str | None = None) -> "DbtProject":
        path = Path(project_dir).resolve()
        if not (path / "dbt_project.yml").is_file():
            raise ManifestError(f"{path} is not a dbt project: it has no dbt_project.yml.")
        return cls(path, target)

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

    def apply_environment(self) -> None:
        for name, value in self.environment_defaults().items():
            os.environ.setdefault(name, value)
        duckdb_path = Path(os.environ["FEATURESTORE_DUCKDB_PATH"])
        duckdb_path.parent.mkdir(parents=True, exist_ok=True)

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

    def ensure_manifest(self) -> Path:
        """The manifest path, running `dbt parse` first when it is missing or older than the project."""
        if self.manifest_is_stale():
            self.run("parse", "--quiet")
        return self.manifest_path

    # -- running dbt -------------------------------------------------------------------------
    def command_args(self, command: str, *args: str) -> list[str]:
        full = [command, "--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        if self.target and "--target" not in args:
            full += ["--target", self.target]
        return full + list(args)

    def run(self, command: str, *args: str, raise_on_failure: bool = True):
        """Run one dbt command in-process and return dbt's result object."""
        from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import

        self.apply_environment()
        result = dbtRunner().invoke(self.command_args(command, *args))
        if raise_on_failure and not result.success:
            detail = f": {result.exception}" if result.exception else "; see the dbt output above"
            raise ManifestError(f"`dbt {command}` failed in {self.project_dir}{detail}")
        return result
