"""Benchmark projects made from benchmarks/snapshot_project (shared by the benchmark scripts)."""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def online_snapshot_project(destination: Path) -> Path:
    """A copy of snapshot_project with its view online, the tests' profile and this repository
    as its package."""
    shutil.copytree(HERE / "snapshot_project", destination)
    shutil.copy2(REPO / "profiles" / "profiles.yml", destination / "profiles.yml")
    (destination / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    schema = destination / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("owner: bench@example.com", "owner: bench@example.com\n          online: true"))
    return destination
