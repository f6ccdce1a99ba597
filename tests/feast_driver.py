"""Feast's side of the import-feast round trip, run by the Feast venv's python (.venv-feast/,
`make feast-venv`) in a subprocess: the test never imports Feast into the suite's own venv.

    python feast_driver.py init FOLDER NAME          # `feast init NAME` inside FOLDER (offline)
    python feast_driver.py retrieve REPO REQUEST OUT  # apply, historical, materialize, online

REQUEST is a JSON file: {"entities": "<parquet with the join keys and event_timestamp>",
"features": ["view:feature", ...], "online_rows": [{"driver_id": 1001}, ...],
"materialize_end": "<ISO time>"}. OUT receives seconds.json (time per step), offline.parquet (Feast's training set, in
Feast's row order) and online.json (get_online_features(...).to_dict()), both with full feature names
(view__feature).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path


def init(folder: str, name: str) -> None:
    feast = Path(sys.executable).parent / "feast"
    subprocess.run([str(feast), "init", name], cwd=folder, check=True, capture_output=True, text=True)


def retrieve(repo: str, request_path: str, out: str) -> None:
    import pandas as pd
    from feast import FeatureStore
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    request = json.loads(Path(request_path).read_text())  # absolute paths inside: apply_total changes directory
    started = time.monotonic()
    seconds = {}
    # what `feast apply` runs, in this process (a second Python importing Feast costs ~10 s)
    repo_path, out_dir = Path(repo).resolve(), Path(out).resolve()
    sys.path.insert(0, str(repo_path))  # the definitions are imported as top-level modules, as `feast apply` does
    apply_total(load_repo_config(repo_path, repo_path / "feature_store.yaml"), repo_path, skip_source_validation=False)
    store = FeatureStore(repo_path=str(repo_path))
    seconds["apply"] = time.monotonic() - started
    out_dir.mkdir(parents=True, exist_ok=True)

    entity_df = pd.read_parquet(request["entities"])
    offline = store.get_historical_features(entity_df=entity_df, features=request["features"],
                                           full_feature_names=True).to_df()
    offline.to_parquet(out_dir / "offline.parquet")
    seconds["historical"] = time.monotonic() - started - sum(seconds.values())

    end = datetime.fromisoformat(request["materialize_end"])
    store.materialize(start_date=end - timedelta(days=3650), end_date=end)
    seconds["materialize"] = time.monotonic() - started - sum(seconds.values())
    online = store.get_online_features(features=request["features"], entity_rows=request["online_rows"],
                                       full_feature_names=True).to_dict()
    (out_dir / "online.json").write_text(json.dumps(online, default=str))
    seconds["online"] = time.monotonic() - started - sum(seconds.values())
    (out_dir / "seconds.json").write_text(json.dumps(seconds))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"init": init, "retrieve": retrieve}[command](*args)
