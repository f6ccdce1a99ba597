"""Careless and hostile input to the CLI, round 3: a tampered export manifest, a catalog folder
that is not the catalog's, a time-spine typo that would fill the disk, the warehouse's temporary
space, entity files with empty cells or no rows, an output named like another format, a misspelt
key, entity rows without a time — each refused (or counted) with a message naming the culprit,
before anything is written. And Ctrl-C, in the phase it used to wait out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from featurestore.cli import app
from featurestore.retrieval import MANIFEST_KEY

runner = CliRunner()
BIN = Path(sys.executable).parent
FEATURE = "customer_features:total_orders_30d"


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, (result.stdout or "") + (result.stderr or "")


def refused(text: str) -> bool:
    return "Traceback" not in text and "this is a bug" not in text


@pytest.fixture(scope="module")
def export(demo_project, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "train.parquet"
    code, text = run("export", "-p", str(demo_project), "-e", "main.churn_labels", "--timestamp-column", "label_ts",
                     "--service", "churn_model", "--out", str(out))
    assert code == 0, text
    return out


def tampered(source: Path, destination: Path, change) -> Path:
    table = pq.read_table(source)
    metadata = dict(table.schema.metadata)
    metadata[MANIFEST_KEY.encode()] = change(json.loads(metadata[MANIFEST_KEY.encode()]))
    pq.write_table(table.replace_schema_metadata(metadata), destination)
    return destination


def _set(field, value):
    def change(manifest):
        manifest[field] = value
        return json.dumps(manifest).encode()
    return change


def _drop(field):
    def change(manifest):
        del manifest[field]
        return json.dumps(manifest).encode()
    return change


def _known_at(value):
    def change(manifest):
        for state in manifest["views"].values():
            state["known_at"] = value
        return json.dumps(manifest).encode()
    return change


@pytest.mark.parametrize("change, culprit", [
    (lambda manifest: b"{not json", "is not JSON"),
    (_drop("outputs"), "has no 'outputs'"),
    (_known_at("last tuesday"), "known_at must be an ISO 8601 timestamp"),
    (_set("references", "customer_features:total_orders_30d"), "'references' must be a non-empty list"),
    (_set("knowledge_guard", "yes"), "'knowledge_guard' must be true or false"),
    (_set("content_sha256", 42), "'content_sha256' must be 64 hexadecimal digits"),
], ids=["not-json", "no-outputs", "known-at", "references-string", "guard-string", "hash-number"])
def test_replay_of_a_tampered_manifest_names_the_field(export, demo_project, tmp_path, change, culprit):
    source = tampered(export, tmp_path / "tampered.parquet", change)
    out = tmp_path / "again.parquet"
    code, text = run("replay", str(source), "--out", str(out), "-p", str(demo_project))
    assert code == 1 and culprit in text and refused(text), text
    assert not out.exists()


def test_catalog_writes_only_into_an_empty_folder_or_its_own(demo_project, tmp_path):
    theirs = tmp_path / "site"
    theirs.mkdir()
    (theirs / "index.html").write_text("<html>the team's own page</html>")
    code, text = run("catalog", "-p", str(demo_project), "--out", str(theirs))
    assert code == 1 and "holds files the catalog did not write" in text and refused(text), text
    assert (theirs / "index.html").read_text() == "<html>the team's own page</html>"
    assert sorted(p.name for p in theirs.iterdir()) == ["index.html"]

    ours = tmp_path / "catalog"
    for _ in range(2):  # a new folder, then the catalog it wrote: both fine
        code, text = run("catalog", "-p", str(demo_project), "--out", str(ours))
        assert code == 0, text
    index = ours / "index.html"  # a catalog of featurestore 0.2, which had no generator tag: still its own
    index.write_text(index.read_text().replace('<meta name="generator" content="featurestore catalog">', ""))
    code, text = run("catalog", "-p", str(demo_project), "--out", str(ours))
    assert code == 0, text
    code, text = run("catalog", "-p", str(demo_project), "--out", "/proc/self")
    assert code == 1 and "/proc/self" in text and refused(text), text


def test_a_time_spine_typo_is_refused_with_its_size_before_it_runs(demo_project, tmp_path):
    out = tmp_path / "never.parquet"
    started = time.monotonic()
    code, text = run("export", "-p", str(demo_project), "-f", FEATURE, "--start", "2026-01-01", "--end", "2026-03-15",
                     "--every", "1s", "--out", str(out))  # meant: 1d
    assert code == 1 and refused(text), text
    assert "6,307,201 points x 60 keys = 378,432,060 entity rows, past the limit of 50,000,000" in text, text
    assert "--max-spine-rows" in text
    assert time.monotonic() - started < 60  # sized, not run (such a spine ran 527 s before it filled the disk)
    code, text = run("export", "-p", str(demo_project), "-f", FEATURE, "--start", "2000-01-01", "--end", "2026-03-15",
                     "--every", "1s", "--out", str(out))
    assert code == 1 and "826,848,001 points, past the limit" in text, text  # no key count needed to say so
    code, text = run("export", "-p", str(demo_project), "-f", FEATURE, "--start", "2026-01-01", "--end", "2026-03-15",
                     "--every", "1h", "--max-spine-rows", "100000", "--out", str(out))
    assert code == 1 and "1,753 points x 60 keys = 105,180 entity rows, past the limit of 100,000" in text, text
    assert not out.exists()
    # the estimate is the spine the warehouse builds (Python's arithmetic, the engine's series)
    code, text = run("export", "-p", str(demo_project), "-f", FEATURE, "--start", "2026-01-01", "--end", "2026-03-15",
                     "--every", "1h", "--max-spine-rows", "105180", "--out", str(out))
    assert code == 0 and pq.read_metadata(out).num_rows == 105_180, text


def test_the_warehouse_temp_space_is_bounded_by_the_target_setting(copied_demo, tmp_path):
    project = copied_demo()
    profiles = yaml.safe_load((project / "profiles.yml").read_text())
    outputs = profiles["jaffle_shop"]["outputs"]
    outputs["tiny"] = {**outputs["duckdb"], "threads": 1,
                       "settings": {"memory_limit": "20MB", "max_temp_directory_size": "2MB"}}
    (project / "profiles.yml").write_text(yaml.safe_dump(profiles))
    out = tmp_path / "train.parquet"
    code, text = run("export", "-p", str(project), "-t", "tiny", "-f", FEATURE, "--start", "2026-01-01",
                     "--end", "2026-03-15", "--every", "1h", "--max-spine-rows", "0", "--out", str(out))
    assert code == 1 and refused(text), text
    assert "more temporary disk space than the warehouse may use" in text and "max_temp_directory_size" in text, text
    assert not out.exists()


def test_entity_files_empty_cells_no_rows_and_times(demo_project, tmp_path):
    with_gaps = tmp_path / "labels.csv"
    with_gaps.write_text("customer_id,label_ts\n,2026-02-01T00:00:00\nabc,2026-02-01T00:00:00\nabc,\n")
    out = tmp_path / "train.parquet"
    code, text = run("export", "-p", str(demo_project), "-e", str(with_gaps), "-f", FEATURE, "--out", str(out))
    assert code == 0, text
    assert "3 rows" in text and "1 with a NULL join key, 1 without a time" in text, text
    assert pq.read_table(out).column("customer_id").to_pylist() == [None, "abc", "abc"]  # empty: NULL, not ''

    header_only = tmp_path / "header.csv"
    header_only.write_text("customer_id,label_ts\n")
    code, text = run("export", "-p", str(demo_project), "-e", str(header_only), "-f", FEATURE, "--out", str(out))
    assert code == 1 and f"Entity file {header_only} has no rows" in text and "type null" not in text, text

    code, text = run("export", "-p", str(demo_project), "-e", str(with_gaps), "-f", FEATURE,
                     "--out", str(tmp_path / "train.csv"))
    assert code == 1 and "train.csv: an export is a Parquet file" in text and refused(text), text
    assert not (tmp_path / "train.csv").exists()


def test_nat_entity_times_are_counted_in_the_summary(demo_project):
    import pandas as pd

    from featurestore import FeatureStore

    frame = pd.DataFrame({"customer_id": ["a", "b"], "event_timestamp": [pd.Timestamp("2026-02-01"), pd.NaT]})
    job = FeatureStore(demo_project).get_historical_features(frame, [FEATURE])
    assert job.to_arrow().num_rows == 2
    assert job.summary.null_time_rows == 1 and job.summary.as_dict()["null_time_rows"] == 1


def test_get_refuses_a_key_no_feature_joins_on(demo_project):
    code, text = run("get", "-p", str(demo_project), "-f", FEATURE, "-e", "customer_id=x", "-e", "bogus=1")
    assert code == 1 and "Unknown entity column(s) 'bogus'" in text and refused(text), text


def interrupt_the_spine_load(project: Path, out: Path, *target: str, **env: str) -> tuple[subprocess.Popen, str, float]:
    """Export a 378M-row time spine (1 s steps) and press Ctrl-C once the process says it is
    loading the entity rows (an event, not a guess at the time); return the process, its stderr
    and how long it took to exit after the signal."""
    command = [str(BIN / "featurestore"), "export", "-p", str(project), *target, "-f", FEATURE, "--start", "2026-01-01",
               "--end", "2026-03-15", "--every", "1s", "--max-spine-rows", "0", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **env, "FEATURESTORE_LOG_LEVEL": "info", "COLUMNS": "200"})
    for line in process.stderr:
        if '"phase": "entity load"' in line:
            break
    time.sleep(0.5)  # inside the statement (being late only makes the test easier to pass)
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, err = process.communicate(timeout=300)
    return process, err, time.monotonic() - signalled


def test_ctrl_c_while_a_large_spine_is_built_stops_within_moments(demo_project, tmp_path):
    """The phase Ctrl-C used to wait out: DuckDB building the entity table (`create table … as`
    over the spine) took no notice of SIGINT until it finished, minutes later."""
    process, err, waited = interrupt_the_spine_load(demo_project, tmp_path / "train.parquet")
    assert process.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err, err
    # the statement alone runs for minutes here (527 s for the reporter); a loaded machine
    # may still take a few seconds to unwind
    assert waited < 60, f"exited {waited:.1f} s after Ctrl-C"
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_cancels_a_running_postgres_statement(demo_project, demo_on_postgres, postgres_server, tmp_path):
    """psycopg2 waits for a statement inside libpq, where Python's SIGINT handler cannot run: Ctrl-C
    used to wait for the statement to end. Now it is cancelled on the server, and the command says
    it was interrupted (exit 130), not that PostgreSQL refused the query."""
    process, err, waited = interrupt_the_spine_load(demo_project, tmp_path / "train.parquet", "-t", "postgres",
                                                    **postgres_server.env(), FEATURESTORE_PG_SCHEMA="demo")
    assert process.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err, err
    assert waited < 60, f"exited {waited:.1f} s after Ctrl-C"
    assert list(tmp_path.iterdir()) == []
