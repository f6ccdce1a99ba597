"""`import_feast`: a Feast feature repository as a dbt project of feature views.

Reads `feature_store.yaml` and the repository's Python definitions without Feast and without
running them (`reader.py` parses them with `ast`), translates entities, file and table sources,
feature views (schema, TTL, online, push sources) and feature services (`definitions.py`), and
writes sources, models, YAML meta and exposures (`writer.py`) with a report of what it could not
translate — on-demand views, request and stream sources, label views — naming file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import FeatureStoreError
from .definitions import FeastRepo, Note, read_repo
from .writer import MODEL_FOLDER, check_names, report_text, render

REPORT_FILE = "feast_import_report.md"
__all__ = ["ImportResult", "import_feast", "read_repo"]


@dataclass(frozen=True)
class ImportResult:
    out_dir: Path
    written: tuple[str, ...]  # paths relative to out_dir
    features: dict  # view -> translated feature names
    notes: tuple[Note, ...]
    report: str  # the Markdown report, also written to out_dir/feast_import_report.md


def import_feast(feast_repo, out_dir, *, force: bool = False, package: str | None = None) -> ImportResult:
    """Translate the Feast repository `feast_repo` (the folder of feature_store.yaml) into dbt files
    under `out_dir`: a new dbt project, or models/feast/ of the dbt project already there. Existing
    files are refused (all of them named) unless force; nothing is written when anything is refused."""
    feast_path, out_path = Path(feast_repo).resolve(), Path(out_dir).resolve()
    repo: FeastRepo = read_repo(feast_path)
    if not repo.views:
        raise FeatureStoreError(f"No feature view of {feast_path} could be translated:\n"
                                + "\n".join(f"  - {note}" for note in repo.notes))
    check_names(repo)
    new_project = not (out_path / "dbt_project.yml").exists()
    output = render(repo, out_path, new_project, package or _package_location())
    if not new_project and not _installs_featurestore(out_path):
        repo.notes.append(Note(None, "packages.yml", "the existing project does not install featurestore: add it "
                                                      "(see the README's 'From another dbt project')"))
    report = report_text(repo, output, out_path)
    files = {**output.files, REPORT_FILE: report}
    existing = sorted(path for path in files if (out_path / path).exists())
    if existing and not force:
        raise FeatureStoreError(f"{out_path} already has {', '.join(existing)}; pass --force to overwrite them.")
    for relative, text in files.items():
        path = out_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    return ImportResult(out_path, tuple(files), {name: [c.name for c in columns if c.role == "feature"]
                                                 for name, columns in output.views.items()},
                        tuple(repo.notes), report)


def _package_location() -> str:
    """The featurestore dbt package: this repository's root when the Python package runs from it."""
    root = Path(__file__).resolve().parents[3]
    if (root / "dbt_project.yml").is_file() and (root / "macros").is_dir():
        return str(root)
    raise FeatureStoreError("Cannot find the featurestore dbt package next to the Python package; pass --package "
                            "with its location (a folder, for packages.yml's `local:`).")


def _installs_featurestore(project: Path) -> bool:
    packages = project / "packages.yml"
    return packages.is_file() and "featurestore" in packages.read_text(encoding="utf-8") or \
        (project / "dbt_packages" / "featurestore").exists()


__all__ += ["MODEL_FOLDER", "REPORT_FILE"]
