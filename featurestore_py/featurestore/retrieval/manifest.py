"""What an exported training set records about how it was made (its manifest: the references,
the entity rows' description, the SQL, each view's knowledge time and build id, the content hash,
and the project's provenance), so `featurestore replay` can reproduce it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

from ..errors import FeatureStoreError

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


# What replay reads of a manifest: each field's check and how the error describes a good value.
_IS_STRINGS = (lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v), "a list of strings")
_REPLAYED = {
    "references": (lambda v: _IS_STRINGS[0](v) and bool(v), "a non-empty list of 'view:feature' strings"),
    "outputs": _IS_STRINGS,
    "full_feature_names": (lambda v: isinstance(v, bool), "true or false"),
    "timestamp_column": (lambda v: isinstance(v, str) and bool(v), "a column name"),
    "knowledge_guard": (lambda v: isinstance(v, bool), "true or false"),
    "views": (lambda v: isinstance(v, dict) and all(isinstance(s, dict) for s in v.values()),
              "an object of view name → {known_at, build_id}"),
    "content_sha256": (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
                       "64 hexadecimal digits"),
}


def _iso(value) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def read_manifest(raw: bytes | str, source) -> dict:
    """An export's manifest, checked field by field before replay uses any of it: a tampered or
    damaged one is refused naming the field at fault and what it should hold."""
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeatureStoreError(f"The featurestore manifest of {source} is not JSON ({exc}).") from None
    if not isinstance(manifest, dict):
        raise FeatureStoreError(f"The featurestore manifest of {source} is not a JSON object.")
    for field, (valid, good) in _REPLAYED.items():
        if field not in manifest:
            raise FeatureStoreError(f"The featurestore manifest of {source} has no '{field}' ({good}).")
        if not valid(manifest[field]):
            raise FeatureStoreError(f"The featurestore manifest of {source}: '{field}' must be {good}, "
                                    f"not {json.dumps(manifest[field])[:80]}.")
    for view, state in manifest["views"].items():
        known = state.get("known_at")
        if known is not None and not _iso(known):
            raise FeatureStoreError(f"The featurestore manifest of {source}: views.{view}.known_at must be an "
                                    f"ISO 8601 timestamp or null, not {json.dumps(known)[:80]}.")
        if not isinstance(state.get("build_id"), (str, type(None))):
            raise FeatureStoreError(f"The featurestore manifest of {source}: views.{view}.build_id must be a "
                                    "string or null.")
    return manifest
