"""Shared fixtures: a built copy of the demo project on DuckDB (built once per run)."""

from __future__ import annotations

import os

import shutil
from pathlib import Path

import pytest

from featurestore.dbt import DbtProject
from featurestore.testing.jaffle import JaffleSize, write_raw_files

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "profiles")

# The tests choose their own warehouses, raw files and endpoints: ignore the caller's settings.
for _name in [name for name in os.environ if name.startswith("FEATURESTORE_")]:
    del os.environ[_name]


def copy_project(source: Path, destination: Path) -> Path:
    """Copy the dbt parts of a project (no target/, no warehouse) so a test cannot touch the repo's."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        path = source / part
        if path.is_dir():
            shutil.copytree(path, destination / part, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, destination / part)
    if not (destination / "profiles").exists():
        shutil.copytree(REPO / "profiles", destination / "profiles")
    return destination


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """The demo project on deterministic synthetic Jaffle Shop data, `dbt build` run once."""
    root = tmp_path_factory.mktemp("demo")
    project_dir = copy_project(REPO, root / "project")
    write_raw_files(project_dir / "data" / "raw", JaffleSize(), seed=7)
    project_env(project_dir).run("build", "--quiet")
    return project_dir


def project_env(project_dir: Path, target: str | None = None, **extra: str) -> DbtProject:
    """A project whose warehouse and raw files live inside its own folder, whatever os.environ says."""
    env = {
        "FEATURESTORE_DUCKDB_PATH": str(project_dir / "warehouse" / "featurestore.duckdb"),
        "FEATURESTORE_RAW_DIR": str(project_dir / "data" / "raw"),
        **extra,
    }
    return DbtProject.at(project_dir, target, env)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL on 127.0.0.1 for the whole run."""
    from featurestore.testing.postgres import PostgresServer, find_bin_dir

    if find_bin_dir() is None:
        message = "PostgreSQL server binaries not found: install Debian's postgresql (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the second-adapter tests
        pytest.skip(message)
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's DynamoDB server on 127.0.0.1 and a free port, for the whole run."""
    from featurestore.online.local import LocalDynamoDB, free_port

    server = LocalDynamoDB(tmp_path_factory.mktemp("moto"), free_port())
    url = server.start()
    yield url
    server.stop()
