"""What an exported training set records about how it was made (its manifest: the references,
the entity rows' description, the SQL, each view's knowledge time and build id, the content hash,
and the project's provenance), so `featurestore replay` can reproduce it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

MANIFEST_KEY = "featurestore.manifest"  # what produced an exported training set, in its Parquet metadata
MANIFEST_FILE = "_featurestore_manifest.json"  # the same, beside the files of an export directory


def provenance(project_name: str, project_dir: Path, manifest_path: Path, target_name: str | None) -> dict:
    """The project an export came from: its registry (the dbt manifest's hash) and its code (the git commit)."""
    from ..version import __version__

    commit = None
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=5)
        commit = result.stdout.strip() if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"project": project_name, "featurestore_version": __version__,
            "dbt_manifest_sha256": hashlib.sha256(manifest_path.read_bytes()).hexdigest() if manifest_path.is_file()
            else None,
            "git_commit": commit, "target": target_name}
