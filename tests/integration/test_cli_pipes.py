"""The CLI with its output in a pipe, as in `make demo` and CI logs: every line whole (no table
cut at 80 columns), no colour codes (ours or dbt's), each sync event printed once — as a line
for people, or as JSON with --json or FEATURESTORE_LOG_LEVEL=info."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import duckdb_path

BIN = Path(sys.executable).parent
ESCAPE = "\x1b"
VIEWS = ("customer_features", "store_features", "customer_product_features", "customer_live_features")


def piped(project: Path, *args: str, **env: str) -> tuple[str, str]:
    """Run the CLI with stdout and stderr pipes (not a terminal); (stdout, stderr)."""
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith("FEATURESTORE_") and k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "DBT_USE_COLORS")}
    result = subprocess.run([str(BIN / "featurestore"), *args, "-p", str(project)], capture_output=True, text=True,
                            timeout=300, env={**inherited, "COLUMNS": "80", **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


def assert_whole_and_plain(text: str) -> None:
    assert ESCAPE not in text, f"colour codes in piped output: {text!r}"
    assert "…" not in text, f"a line was cut: {text}"


def test_tables_and_lines_are_whole_and_uncoloured_in_a_pipe(demo_project):
    out, err = piped(demo_project, "list")
    assert_whole_and_plain(out + err)
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert set(VIEWS) <= set(rows)
    assert "growth-analytics@jaffle.shop" in rows["customer_features"]
    assert max(len(line) for line in out.splitlines()) > 80  # wider than the terminal default, and not cut
    out, err = piped(demo_project, "describe", "churn_model")
    assert_whole_and_plain(out + err)
    assert "  depends_on: ['customer_features', 'store_features', 'churn_labels', 'churn_training_set']" in out.splitlines()


@pytest.mark.dbt_compat
def test_dbt_writes_no_colour_codes_into_a_pipe(demo_project):
    out, err = piped(demo_project, "parse")
    assert "Running with dbt=" in out + err
    assert ESCAPE not in out + err


def test_each_sync_event_is_printed_once(demo_project, moto_server):
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "pipes_"}
    out, err = piped(demo_project, "sync", **env)
    assert_whole_and_plain(out + err)
    lines = (out + err).splitlines()
    for view in VIEWS:
        mentions = [line for line in lines if line.startswith(f"{view}:") or f'"{view}"' in line]
        assert len(mentions) == 1 and "rows read" in mentions[0], lines
    assert "{" not in out + err  # no JSON unless asked for

    out, err = piped(demo_project, "sync", "--json", **env)  # JSON on stdout, once per view; nothing else
    assert sorted(json.loads(line)["view"] for line in out.splitlines()) == sorted(VIEWS)
    assert err == ""

    out, err = piped(demo_project, "sync", "store_features", **env, FEATURESTORE_LOG_LEVEL="info")  # a log setting
    assert [json.loads(line.removeprefix("INFO: "))["event"] for line in err.splitlines()] == ["synced"]
    assert out.startswith("store_features: incremental")


@pytest.mark.dbt_compat
def test_a_build_process_exits_with_its_output_whole_and_the_warehouse_closed(copied_demo):
    # the CLI skips Python's collections at exit (gc.freeze): what must still happen at exit does
    project = copied_demo()
    database = duckdb_path(project)
    out, err = piped(project, "build", "--select", "customer_features", "--full-refresh")
    assert_whole_and_plain(out + err)
    last = out.rstrip().splitlines()[-1]  # dbt's summary, the last thing the process wrote
    assert "Done. PASS=" in last and "ERROR=0" in last, out + err
    assert not database.with_name(database.name + ".wal").exists()  # closed: checkpointed, nothing left to replay
    import duckdb

    with duckdb.connect(str(database)) as con:  # and no other process holds it
        assert con.execute("select count(*) from main.customer_features where valid_to is null").fetchone()[0] > 0
