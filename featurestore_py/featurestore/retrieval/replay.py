"""`featurestore replay`: an exported training set reproduced from the warehouse as it was known
when it was exported (each view's versions as known at the export's knowledge time)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq

from ..digest import content_hash
from ..entity_frame import entity_source
from ..errors import FeatureStoreError
from ..registry import Registry
from ..requests import plan_retrieval
from .job import RetrievalJob
from .manifest import MANIFEST_KEY, read_manifest


def replay(registry: Registry, connect: Callable, dialect: str, provenance: dict, exported, out) -> dict:
    """Reproduce `exported`: the entity rows are read from the export itself, and each view's
    versions are taken as known at that export's knowledge time (the latest created timestamp it
    held), superseded versions included. Writes `out` only when the content hash is identical;
    otherwise raises, saying why (e.g. a view was rebuilt since, so the versions known then are gone)."""
    source = Path(exported)
    try:
        table = pq.read_table(source)
    except (OSError, ValueError) as exc:
        raise FeatureStoreError(f"Cannot read the exported training set {source}: {str(exc).splitlines()[0]}") from None
    raw = (table.schema.metadata or {}).get(MANIFEST_KEY.encode())
    if raw is None:
        raise FeatureStoreError(f"{source} has no featurestore manifest; only exports of featurestore 0.2 or "
                                "later can be replayed.")
    manifest = read_manifest(raw, source)
    outputs = manifest["outputs"]
    entities = table.drop_columns([c for c in outputs if c in table.column_names]).replace_schema_metadata(None)
    known_at = {view: datetime.fromisoformat(state["known_at"]) for view, state in manifest["views"].items()
                if state.get("known_at")}
    requests = plan_retrieval(registry, manifest["references"], None, manifest["full_feature_names"])
    job = RetrievalJob(connect, dialect, requests, entity_source(entities), manifest["timestamp_column"],
                       knowledge_guard=manifest["knowledge_guard"], known_at=known_at, provenance=provenance)
    result = job.to_arrow()
    digest = content_hash(result)
    if digest != manifest["content_sha256"]:
        rebuilt = [view for view, state in manifest["views"].items()
                   if state.get("build_id") != (job.snapshot_state.get(view) or {}).get("build_id")]
        why = (f"{', '.join(rebuilt)} {'was' if len(rebuilt) == 1 else 'were'} rebuilt since the export "
               "(a full build keeps no superseded versions)" if rebuilt else
               "versions known then are no longer in the warehouse")
        raise FeatureStoreError(
            f"Cannot reproduce {source}: the warehouse gives {result.num_rows:,} rows with different content "
            f"(content hash {digest[:12]} vs {manifest['content_sha256'][:12]} recorded): {why}.")
    job.to_parquet(out)
    return {"out": str(out), "rows": result.num_rows, "content_sha256": digest,
            "known_at": {view: moment.isoformat() for view, moment in known_at.items()},
            "manifest_changed": manifest.get("dbt_manifest_sha256") != provenance.get("dbt_manifest_sha256")}
