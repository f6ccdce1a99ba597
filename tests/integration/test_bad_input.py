"""Bad input of many kinds, through the CLI as users type it: each case exits non-zero with one
or two lines that name the culprit (no traceback), and nothing is written or lost — the
previous output file keeps its bytes, no stray file appears, the warehouse's tables keep
their rows, the online store's sync state does not move.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, DuckDBTables, copy_project, duckdb_path
from featurestore.cli import app
from oracles import SENSOR_EVENTS_DDL

runner = CliRunner()
KEEP = b"the previous training set"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "a_folder.csv").mkdir()
    (root / "garbage.csv").write_bytes(b"\x00\x01\x02\xff\xfe" * 50)
    (root / "garbage.parquet").write_bytes(b"not parquet")
    (root / "feature_named.csv").write_text("customer_id,event_timestamp,total_orders_30d\nx,2026-01-01,1\n")
    (root / "twice.csv").write_text("store_id,store_id,event_timestamp\nx,y,2026-01-01\n")
    (root / "words.csv").write_text("store_id,event_timestamp\nx,yesterday\n")
    (root / "int_key.csv").write_text("store_id,event_timestamp\n1,2026-01-01\n")
    (root / "no_time.csv").write_text("store_id,amount\nx,1\n")
    (root / "fs_row.csv").write_text("store_id,event_timestamp,_fs_row\nx,2026-01-01,1\n")
    (root / "customers.csv").write_text("customer_id,event_timestamp\nx,2026-01-01\n")
    pq.write_table(pa.table({"a": [1]}), root / "plain.parquet")
    (root / "no_profiles").mkdir()
    (root / "not_a_project").mkdir()
    return root


# (id, arguments — {f} is the files folder, {out} the output kept from before —, exit code, words)
EXPORT = ["export", "--out", "{out}"]
SVC = ["--service", "churn_model"]
STORES = ["-f", "store_features:orders_7d"]
CASES = [
    # entity frames
    ("entities-missing-file", EXPORT + ["-e", "{f}/missing.csv", *SVC], 1, "{f}/missing.csv does not exist"),
    ("entities-a-folder", EXPORT + ["-e", "{f}/a_folder.csv", *SVC], 1, "a_folder.csv is a directory"),
    ("entities-unreadable", EXPORT + ["-e", "{f}/garbage.csv", *SVC], 1, "Cannot read entity file"),
    ("entities-unknown-relation", EXPORT + ["-e", "main.no_such_table", *SVC], 1, "relation main.no_such_table"),
    ("entities-query-does-not-parse", EXPORT + ["-e", "select from where", *SVC], 1, "does not parse"),
    ("entities-stacked-statements", EXPORT + ["-e", "select 1; drop table main.store_features", *SVC], 1,
     "exactly one SELECT"),
    ("entities-breakout", EXPORT + ["-e", "select 1 as store_id) as q; drop table main.store_features; select * from (select 1",
                                    *STORES], 1, "The entity query"),
    ("entities-copy", EXPORT + ["-e", "copy (select 1) to 'x.csv'", *SVC], 1, "neither a .parquet/.csv path"),
    ("entities-file-read", EXPORT + ["-e", "select * from read_csv('/etc/passwd')", *SVC], 1,
     "calls the function read_csv(), which reads the host's files"),
    ("entities-settings", EXPORT + ["-e", "select current_setting('threads') as store_id, now() as event_timestamp",
                                    *STORES], 1, "calls the function current_setting()"),
    ("entities-empty", EXPORT + ["-e", "  ", *SVC], 1, "neither a .parquet/.csv path"),
    ("entities-column-named-like-a-feature", EXPORT + ["-e", "{f}/feature_named.csv", "-f",
                                                       "customer_features:total_orders_30d"], 1,
     "column 'total_orders_30d', the name of the requested feature"),
    ("entities-duplicate-columns", EXPORT + ["-e", "{f}/twice.csv", *STORES], 1, "column 'store_id' twice"),
    ("entities-timestamp-words", EXPORT + ["-e", "{f}/words.csv", *STORES], 1, "row 0 holds 'yesterday'"),
    ("entities-key-type", EXPORT + ["-e", "{f}/int_key.csv", *STORES], 1, "Join key 'store_id'"),
    ("entities-no-timestamp", EXPORT + ["-e", "{f}/no_time.csv", *STORES], 1, "Cannot tell which column"),
    ("entities-fs-row", EXPORT + ["-e", "{f}/fs_row.csv", *STORES], 1, "_fs_row"),
    ("entities-missing-key", EXPORT + ["-e", "{f}/customers.csv", *SVC], 1, "no column 'store_id'"),
    ("entities-timestamp-column-missing", EXPORT + ["-e", "main.churn_labels", "--timestamp-column", "when", *SVC], 1,
     "no timestamp column 'when'"),
    ("entities-timestamp-a-string", EXPORT + ["-e", "select 'x' as store_id, 'now' as event_timestamp", *STORES], 1,
     "cast it to a timestamp"),
    # features and services
    ("unknown-service", EXPORT + ["-e", "main.churn_labels", "--service", "nope"], 1, "No feature service named 'nope'"),
    ("unknown-feature", EXPORT + ["-e", "main.churn_labels", "-f", "customer_features:nope"], 1, "no feature 'nope'"),
    ("unknown-view", EXPORT + ["-e", "main.churn_labels", "-f", "nope:x"], 1, "No feature view named 'nope'"),
    ("reference-form", EXPORT + ["-e", "main.churn_labels", "-f", "revenue_28d"], 1, "not of the form 'view:feature'"),
    ("service-and-features", EXPORT + ["-e", "main.churn_labels", *SVC, *STORES], 1, "not both"),
    ("neither-service-nor-features", EXPORT + ["-e", "main.churn_labels"], 1, "or --service (-s) <feature service>"),
    # export options
    ("out-a-folder", ["export", "--out", "{f}", "-e", "main.churn_labels", "--timestamp-column", "label_ts", *SVC], 1,
     "is a directory"),
    ("every-bad-unit", EXPORT + ["--start", "2026-01-01", "--end", "2026-01-02", "--every", "15x", *STORES], 1,
     "--every '15x' is not a duration"),
    ("every-zero", EXPORT + ["--start", "2026-01-01", "--end", "2026-01-02", "--every", "0d", *STORES], 1,
     "--every '0d' is not a duration"),
    ("spine-backwards", EXPORT + ["--start", "2026-02-01", "--end", "2026-01-01", *STORES], 1, "before it starts"),
    ("spine-missing-end", EXPORT + ["--start", "2026-02-01", *STORES], 1, "Pass entity_df, or start and end"),
    ("start-not-a-date", EXPORT + ["--start", "yesterday", "--end", "2026-01-01", *STORES], 2, "--start"),
    ("spine-mixed-keys", EXPORT + ["--start", "2026-01-01", "--end", "2026-01-02", *STORES, "-f",
                                   "customer_features:lifetime_value"], 1, "same join keys"),
    # drift and stats
    ("drift-reference-words", ["drift", "store_features", "--reference", "nonsense", "--current", "2026-01-01:2026-02-01"],
     1, "--reference 'nonsense' is not a window"),
    ("drift-current-backwards", ["drift", "store_features", "--reference", "2026-01-01:2026-02-01", "--current",
                                 "2026-03-01:2026-02-01"], 1, "--current '2026-03-01:2026-02-01' ends before it starts"),
    ("drift-two-references", ["drift", "store_features", "--reference", "2026-01-01:2026-02-01", "--reference-stats",
                              "{out}", "--current", "2026-02-01:2026-03-01"], 1, "Pass either --reference"),
    ("drift-no-reference", ["drift", "store_features", "--current", "2026-02-01:2026-03-01"], 1, "Pass either --reference"),
    ("drift-stats-missing", ["drift", "store_features", "--reference-stats", "{f}/missing.parquet", "--current",
                             "2026-02-01:2026-03-01"], 1, "missing.parquet"),
    ("drift-stats-garbage", ["drift", "store_features", "--reference-stats", "{f}/garbage.parquet", "--current",
                             "2026-02-01:2026-03-01"], 1, "Cannot read training-set stats"),
    ("drift-stats-absent", ["drift", "store_features", "--reference-stats", "{f}/plain.parquet", "--current",
                            "2026-02-01:2026-03-01"], 1, "holds no training-set stats"),
    ("drift-unknown-view", ["drift", "nope", "--reference", "2026-01-01:2026-02-01", "--current", "2026-02-01:2026-03-01"],
     1, "No feature view named 'nope'"),
    ("drift-no-data", ["drift", "store_features", "--reference", "2000-01-01:2000-02-01", "--current",
                       "2000-02-01:2000-03-01"], 1, "No data to compare for store_features"),
    ("stats-unknown-view", ["stats", "nope", "--no-save"], 1, "No feature view named 'nope'"),
    ("stats-unknown-service", ["stats", "--service", "nope", "--no-save"], 1, "No feature service named 'nope'"),
    # reading, syncing, auditing
    ("describe-unknown", ["describe", "nope"], 1, "'nope' is neither a feature view"),
    ("get-not-key-value", ["get", "-f", "store_features:orders_7d", "-e", "store_id"], 1, "'store_id' is not key=value"),
    ("get-key-twice", ["get", "-f", "store_features:orders_7d", "-e", "store_id=a", "-e", "store_id=b"], 1,
     "names 'store_id' twice"),
    ("get-missing-key", ["get", *SVC, "-e", "customer_id=x"], 1, "need 'store_id'"),
    ("get-unknown-view", ["get", "-f", "nope:x", "-e", "a=b"], 1, "No feature view named 'nope'"),
    ("get-service-and-features", ["get", *SVC, "-f", "store_features:orders_7d", "-e", "store_id=a"], 1,
     "Pass either --features (-f) <view:feature> or --service (-s) <feature service>, not both"),
    ("sync-unknown-view", ["sync", "nope"], 1, "No feature view named 'nope'"),
    ("sync-bad-schedule", ["sync", "--every", "every tuesday"], 1, "neither a duration"),
    ("sync-status-unknown-view", ["sync", "status", "nope"], 1, "No feature view named 'nope'"),
    ("audit-unknown-view", ["audit", "nope"], 1, "No feature view named 'nope'"),
    ("audit-negative-sample", ["audit", "store_features", "--sample", "-5"], 2, "--sample"),
    ("duplicates-zero-sample", ["duplicates", "--sample", "0"], 2, "--sample"),
    ("online-up-bad-port", ["online", "up", "--port", "70000"], 2, "--port"),
    # project, profile, target
    ("project-missing", ["list", "-p", "{f}/nowhere"], 1, "nowhere is not a directory"),
    ("project-not-dbt", ["list", "-p", "{f}/not_a_project"], 1, "has no dbt_project.yml"),
    ("profiles-dir-empty", ["list", "--profiles-dir", "{f}/no_profiles"], 1, "No profiles.yml found"),
    ("target-unknown", ["list", "-t", "nope"], 1, "has no target 'nope'"),
    ("build-unknown-target", ["build", "-t", "nope"], 1, "has no target 'nope'"),
    ("parse-unknown-target", ["parse", "-t", "nope"], 1, "has no target 'nope'"),
    ("online-down-not-a-project", ["online", "down", "-p", "{f}/not_a_project"], 1, "has no dbt_project.yml"),
    ("catalog-unknown-target", ["catalog", "--out", "{f}/site", "-t", "nope"], 1, "has no target 'nope'"),
    ("validate-unknown-target", ["validate", "-t", "nope"], 1, "has no target 'nope'"),
]
# Environment that is wrong, and what it must say
ENV_CASES = [
    ("lock-timeout-words", ["stats", "--no-save"], {"FEATURESTORE_LOCK_TIMEOUT": "soon"}, "FEATURESTORE_LOCK_TIMEOUT"),
    ("online-timeout-words", ["sync"], {"FEATURESTORE_ONLINE_TIMEOUT": "-3"}, "FEATURESTORE_ONLINE_TIMEOUT"),
    ("table-prefix-invalid", ["sync", "store_features"], {"FEATURESTORE_TABLE_PREFIX": "bad prefix!"},
     "DynamoDB table name 'bad prefix!"),
]


def snapshot(project: Path, out: Path, folder: Path):
    with duckdb.connect(str(duckdb_path(project)), read_only=True) as con:
        counts = {t: con.execute(f"select count(*) from main.{t}").fetchone()[0]
                  for t in ("customer_features", "store_features", "customer_product_features", "churn_labels")}
    return counts, out.read_bytes(), sorted(p.name for p in folder.iterdir())


def invoke(arguments, project, env=None):
    result = runner.invoke(app, [*arguments, "-p", str(project)] if "-p" not in arguments else arguments, env=env)
    return result, (result.stdout or "") + (result.stderr or "")


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_cli_input(case, demo_project, files, tmp_path):
    name, arguments, code, words = case
    out = tmp_path / "keep.parquet"
    out.write_bytes(KEEP)
    arguments = [a.format(f=files, out=out) for a in arguments]
    before = snapshot(demo_project, out, tmp_path)
    result, text = invoke(arguments, demo_project)
    assert result.exit_code == code, text
    assert words.format(f=files) in " ".join(text.split()), text
    assert "Traceback" not in text and len(text.strip().splitlines()) <= 8, text
    assert snapshot(demo_project, out, tmp_path) == before  # nothing written, nothing lost


@pytest.mark.parametrize("case", ENV_CASES, ids=[case[0] for case in ENV_CASES])
def test_bad_environment(case, demo_project, tmp_path):
    name, arguments, env, words = case
    result, text = invoke(arguments, demo_project, env=env)
    assert result.exit_code == 1 and words in text and "Traceback" not in text, text


@pytest.mark.parametrize("command", [["sync", "store_features"], ["sync", "status"],
                                     ["get", "-f", "store_features:orders_7d", "-e", "store_id=x"]])
def test_an_unreachable_endpoint_fails_in_bounded_time_and_says_so(command, demo_project):
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "FEATURESTORE_ONLINE_TIMEOUT": "2",
           "FEATURESTORE_TABLE_PREFIX": "unreach_"}
    started = time.monotonic()
    result, text = invoke(command, demo_project, env=env)
    assert time.monotonic() - started < 30
    assert result.exit_code == 1 and "Traceback" not in text, text
    assert "retrying for up to" in text and "unreachable or failing" in text and "127.0.0.1" in text


YAML = "models/schema.yml"
YAML_CASES = [  # (id, text replaced in the mini project's schema.yml, words, column named)
    ("online-a-string", ("online: true", 'online: "false"'), "must be true or false", None),
    ("entities-a-string", ("entities: [user]", "entities: user"), "must be a list of entity names", None),
    ("tags-a-string", ("owner: team@example.com", "owner: team@example.com\n          tags: clicks"),
     "must be a list of strings", None),
    ("owner-a-list", ("owner: team@example.com", "owner: [team@example.com]"), "must be a string", None),
    ("ttl-a-number", ("ttl: 7d", "ttl: 7"), "must be a duration string", None),
    ("ttl-overflow", ("ttl: 7d", "ttl: 99999999999d"), "longer than 100 years", None),
    ("ttl-zero", ("ttl: 7d", "ttl: 0d"), "not a duration", None),
    ("event-timestamp-a-number", ("event_timestamp: event_ts", "event_timestamp: 5"), "must be a string", None),
    ("expect-min-a-word", ("{window: 7d}", "{window: 7d, expect: {min: zero}}"), "expect.min must be a number", "clicks_7d"),
    ("expect-values-a-string", ("{window: 7d}", "{window: 7d, expect: {values: gold}}"), "non-empty list", "clicks_7d"),
    ("expect-null-rate-range", ("{window: 7d}", "{window: 7d, expect: {max_null_rate: 2}}"), "from 0 to 1", "clicks_7d"),
    ("drift-negative", ("{window: 7d}", "{window: 7d, drift: {max_psi: -1}}"), "positive number", "clicks_7d"),
    ("window-words", ("{window: 7d}", "{window: 7 days}"), "not a duration", "clicks_7d"),
    ("reserved-feature-name", ("      - name: tier", "      - name: entity_key"), "used by featurestore itself", "entity_key"),
    ("service-features-a-string", ("features: [user_features:clicks_7d, user_features:tier]", "features: user_features:tier"),
     "must be a list of 'view:feature' references", None),
]


@pytest.mark.parametrize("case", YAML_CASES, ids=[case[0] for case in YAML_CASES])
def test_bad_yaml(case, tmp_path):
    name, (old, new), words, column = case
    project = copy_project(FIXTURES / "mini_project", tmp_path / "mini", package=False)
    schema = project / YAML
    assert old in schema.read_text()
    schema.write_text(schema.read_text().replace(old, new))
    result, text = invoke(["validate"], project)
    assert result.exit_code == 1 and "Traceback" not in text, text
    line = next((l for l in text.splitlines() if words in l and l.startswith("error")), None)
    assert line is not None, text
    assert YAML in line and ("model '" in line or "exposure '" in line) and (column is None or f"column '{column}'" in line), line
    # the SDK refuses the same registry, with the same words
    result, text = invoke(["list"], project)
    assert result.exit_code == 1 and words in " ".join(text.split())


def test_monitoring_on_nothing_is_not_green(tmp_path):
    """A view with no rows: stats say "no data" and exit 1 unless --allow-empty."""
    project = copy_project(FIXTURES / "quality_project", tmp_path / "empty")
    DuckDBTables(duckdb_path(project)).load(SENSOR_EVENTS_DDL, "sensor_events", [])
    invoke(["build"], project)
    result, text = invoke(["stats", "sensor_features", "--no-save"], project)
    assert result.exit_code == 1 and "No data" in text and "sensor_features" in text, text
    result, text = invoke(["stats", "sensor_features", "--no-save", "--allow-empty"], project)
    assert result.exit_code == 0, text
    result, text = invoke(["drift", "sensor_features", "--reference", "2024-01-01:2024-02-01", "--current",
                           "2024-02-01:2024-03-01", "--allow-empty"], project)
    assert result.exit_code == 0 and "no data" in text, text


def test_the_suite_covers_sixty_kinds():
    assert len(CASES) + len(ENV_CASES) + 3 + len(YAML_CASES) + 1 >= 60
    shutil.which("featurestore")  # (the same commands are what the README documents)
