"""`featurestore export` on the demo project: file written, summary printed, bad input refused."""

import json
import os
import stat

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from featurestore.cli import app

runner = CliRunner()


def test_export_churn_service(demo_project, tmp_path):
    out = tmp_path / "churn.parquet"
    result = runner.invoke(app, ["export", "-p", str(demo_project), "--entities", "main.churn_labels",
                                 "--timestamp-column", "label_ts", "--service", "churn_model", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    table = pq.read_table(out)
    assert summary["rows"] == table.num_rows > 100
    assert set(summary["match_rate"]) == {"customer_features", "store_features"}
    assert {"churned_30d", "total_orders_30d", "revenue_28d"} <= set(table.column_names)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_an_export_has_the_permissions_of_any_new_file(demo_project, tmp_path, umask):
    """0666 less the umask, as a file the user's shell would make (a trial found 0600, the
    temporary file's, whatever the umask: a training set others could not read); no temporary
    file is left beside it."""
    out = tmp_path / "shared" / "stores.parquet"
    previous = os.umask(umask)
    try:
        result = runner.invoke(app, ["export", "-p", str(demo_project), "--entities", "main.churn_labels",
                                     "--timestamp-column", "label_ts", "-f", "store_features:orders_7d", "--out", str(out)])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert [path.name for path in out.parent.iterdir()] == ["stores.parquet"]


def test_export_features_from_a_csv_with_a_table_summary(demo_project, tmp_path):
    entities = tmp_path / "entities.csv"
    entities.write_text("store_id,event_timestamp\nnot-a-store,2024-02-01T00:00:00\n")
    out = tmp_path / "stores.parquet"
    result = runner.invoke(app, ["export", "-p", str(demo_project), "--entities", str(entities),
                                 "-f", "store_features:orders_7d", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "1 rows" in text and "store_features │ 0.0%" in text  # match rate 0
    assert pq.read_table(out).column("orders_7d").to_pylist() == [None]  # unknown key: row kept


def test_export_refuses_bad_input(demo_project, tmp_path):
    out = tmp_path / "never.parquet"
    for args, words in [
        (["--entities", "main.churn_labels", "--service", "no_such_service"], "No feature service named"),
        (["--entities", str(tmp_path / "missing.csv"), "--service", "churn_model"], "does not exist"),
        (["--entities", "main.churn_labels", "--timestamp-column", "when", "--service", "churn_model"], "no timestamp column 'when'"),
        (["--entities", "main.churn_labels", "-f", "customer_features:nope"], "no feature 'nope'"),
    ]:
        result = runner.invoke(app, ["export", "-p", str(demo_project), "--out", str(out), *args])
        assert result.exit_code == 1, (args, result.output)
        assert words in result.output, (args, result.output)
    assert not out.exists()
