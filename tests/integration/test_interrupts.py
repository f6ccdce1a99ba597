"""Every write is all-or-nothing: interrupted at any point, `to_table` and `export` leave the
previous table or file as it was, and the CLI says it was interrupted (exit 130)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import app

BIN = Path(sys.executable).parent
FEATURE = ["customer_features:lifetime_value"]


def table_rows(store, name="main.train"):
    with store.connect() as warehouse:
        return sorted(warehouse.fetch_all(f"select * from {name}"), key=str)


def wait_for_phase(process: subprocess.Popen, phase: str) -> str:
    """Read the process's stderr until it says it entered `phase` (the job's info-level events);
    return what it printed so far."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if f'"phase": "{phase}"' in line:
            return "".join(seen)
    raise AssertionError("the process ended before the phase " + phase + ":\n" + "".join(seen))


@pytest.fixture
def previous_table(demo_project):
    store = FeatureStore(demo_project)
    store.get_historical_features(features=FEATURE, start=datetime(2024, 2, 1), end=datetime(2024, 2, 2)).to_table("main.train")
    return store, table_rows(store)


def test_to_table_interrupted_between_drop_and_create_keeps_the_table(previous_table, monkeypatch):
    store, before = previous_table
    from featurestore.warehouse.duckdb import DuckDBWarehouse

    original = DuckDBWarehouse.execute

    def interrupted_after_the_drop(self, sql, parameters=()):
        if sql.lstrip().startswith("create table"):
            raise KeyboardInterrupt  # Ctrl-C lands after `drop table` ran in the same transaction
        return original(self, sql, parameters)

    monkeypatch.setattr(DuckDBWarehouse, "execute", interrupted_after_the_drop)
    job = store.get_historical_features(features=FEATURE, start=datetime(2024, 2, 1), end=datetime(2024, 2, 9))
    with pytest.raises(KeyboardInterrupt):
        job.to_table("main.train")
    monkeypatch.undo()
    assert table_rows(store) == before


def test_to_table_under_a_real_sigint_keeps_the_table(previous_table, demo_project):
    store, before = previous_table
    script = textwrap.dedent(f"""
        import logging
        from datetime import datetime
        from featurestore import FeatureStore
        logging.basicConfig(level=logging.INFO)  # the job's phase events, on stderr
        job = FeatureStore({str(demo_project)!r}).get_historical_features(
            features={FEATURE!r}, start=datetime(2024, 1, 1), end=datetime(2024, 3, 15), every="10s",
            max_spine_rows=0)
        job.to_table("main.train")
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = wait_for_phase(process, "query")  # the entity rows are in; the long statement is next
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=300)
    err += rest
    assert process.returncode != 0 and "KeyboardInterrupt" in err, err
    assert table_rows(store) == before


def test_export_under_a_real_sigint_says_so_and_keeps_the_file(demo_project, tmp_path):
    out = tmp_path / "train.parquet"
    out.write_bytes(b"the previous training set")
    command = [str(BIN / "featurestore"), "export", "-p", str(demo_project), "-f", FEATURE[0], "--out", str(out),
               "--start", "2024-01-01", "--end", "2024-03-15", "--every", "10s", "--max-spine-rows", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200", "FEATURESTORE_LOG_LEVEL": "info"})
    err = wait_for_phase(process, "query")  # past start-up, the point-in-time join next
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=300)
    err += rest
    assert process.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err, err
    assert out.read_bytes() == b"the previous training set"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.parquet"]  # no temporary file left


def test_export_interrupted_while_writing_leaves_no_half_file(demo_project, tmp_path, monkeypatch):
    out = tmp_path / "train.parquet"
    out.write_bytes(b"the previous training set")
    real_write = pq.ParquetWriter.write_table

    def write_a_row_group_then_interrupt(self, table, *args, **kwargs):
        real_write(self, table, *args, **kwargs)  # part of the file is on disk
        raise KeyboardInterrupt

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_a_row_group_then_interrupt)
    result = CliRunner().invoke(app, ["export", "-p", str(demo_project), "-e", "main.churn_labels", "--timestamp-column",
                                      "label_ts", "--service", "churn_model", "--out", str(out)])
    text = (result.stdout or "") + (result.stderr or "")
    assert result.exit_code == 130 and "interrupted:" in text, text
    assert out.read_bytes() == b"the previous training set"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.parquet"]


@pytest.mark.dbt_compat
def test_build_under_a_real_sigint_says_interrupted_and_keeps_the_tables(copied_demo):
    """Ctrl-C during `featurestore build` with dbt in-process: dbtRunner hands the interrupt back
    as a failed result; the CLI still says interrupted (exit 130), and the built tables stay."""
    project = copied_demo()
    store = FeatureStore(project)
    before = table_rows(store, "main.customer_features")
    command = [str(BIN / "featurestore"), "build", "-p", str(project), "--full-refresh"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "FEATURESTORE_DBT": "inprocess", "COLUMNS": "200"})
    for line in process.stdout:  # dbt is running models: an event, not a guess at the time
        if " START " in line:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted:"), err
    assert table_rows(store, "main.customer_features") == before
