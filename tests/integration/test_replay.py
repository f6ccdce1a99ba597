"""Exports record what produced them and can be replayed: after late rows and corrections the
replay of an earlier export is identical (same content hash), a fresh export differs and its
manifest says why, and a warehouse rebuilt since (its superseded versions gone) is refused."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from conftest import project_env
from featurestore.cli import app
from featurestore.digest import content_hash
from featurestore.retrieval import MANIFEST_KEY
from jaffle_data import JaffleSize, append_late_orders, late_and_corrected_orders

runner = CliRunner()
EXPORT = ["export", "-e", "main.churn_labels", "--timestamp-column", "label_ts", "--service", "churn_model"]


def manifest_of(path):
    return json.loads(pq.read_schema(path).metadata[MANIFEST_KEY.encode()])


def test_replay_reproduces_an_export_and_refuses_when_history_is_gone(tmp_path, built_demo):
    project = built_demo(JaffleSize(customers=80, stores=2, days=75), seed=41)
    raw = project / "data" / "raw"
    dbt = project_env(project)
    first = tmp_path / "first.parquet"
    assert runner.invoke(app, [*EXPORT, "-p", str(project), "--out", str(first)]).exit_code == 0
    manifest = manifest_of(first)
    assert manifest["rows"] == pq.read_metadata(first).num_rows > 50
    assert set(manifest["views"]) == {"customer_features", "store_features"}
    assert manifest["sql"].startswith("select") and manifest["dbt_manifest_sha256"] and manifest["content_sha256"]

    append_late_orders(raw, late_and_corrected_orders(raw, count=4, seed=3), "late")
    dbt.run("build", "--quiet")  # incremental: late rows and corrections, superseded versions kept
    second = tmp_path / "second.parquet"
    assert runner.invoke(app, [*EXPORT, "-p", str(project), "--out", str(second)]).exit_code == 0
    assert manifest_of(second)["content_sha256"] != manifest["content_sha256"]  # the data changed ...
    assert manifest_of(second)["views"]["customer_features"]["known_at"] > manifest["views"]["customer_features"]["known_at"]

    again = tmp_path / "again.parquet"
    result = runner.invoke(app, ["replay", str(first), "--out", str(again), "-p", str(project)])
    assert result.exit_code == 0, result.output
    assert "identical" in result.stdout
    assert content_hash(pq.read_table(again)) == manifest["content_sha256"]  # ... the replay did not

    dbt.run("build", "--full-refresh", "--quiet")  # the versions known then are gone
    refused = tmp_path / "refused.parquet"
    result = runner.invoke(app, ["replay", str(first), "--out", str(refused), "-p", str(project)])
    assert result.exit_code == 1 and "Cannot reproduce" in result.output and "rebuilt" in result.output
    assert not refused.exists()
