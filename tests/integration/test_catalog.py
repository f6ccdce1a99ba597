"""The static catalog, looked at in a real headless Chromium: pages per feature, view and service
with plots from the stats history, status badges with a filter page each, no network, escaped
values; and dbt docs carry the metadata.

Screenshots (1400x900) of the index, a feature page and a service page are kept in
test-artifacts/catalog/ at the repository root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REPO, DuckDBTables, copy_project, duckdb_path, project_env
from featurestore import FeatureStore
from featurestore.cli import app
from jaffle_data import JaffleSize, append_late_orders
from oracles import SENSOR_EVENTS_DDL, readings

runner = CliRunner()
ARTIFACTS = REPO / "test-artifacts" / "catalog"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOW = datetime.now().replace(microsecond=0)
DAY = timedelta(days=1)
OLD_VIEW_YAML = """
  - name: old_sensor_features
    description: "Old readings <script>alert('x')</script> & friends."
    config:
      materialized: feature_view
      meta:
        featurestore:
          entities: [sensor]
          event_timestamp: ev
          created_timestamp: created
          max_staleness: 1d
          online: true
          owner: q@example.com
    columns:
      - {name: sensor_id, data_type: integer}
      - {name: ev, data_type: timestamp}
      - {name: created, data_type: timestamp}
      - {name: temperature, data_type: double, description: "Degrees <b>bold</b>."}
      - {name: humidity, data_type: double, description: Percent.}
      - {name: state, data_type: varchar, description: A state.}
exposures:
  - name: sensor_model
    type: ml
    description: Predicts sensor failures.
    owner: {name: Ops, email: ops@example.com}
    depends_on: [ref('sensor_features'), ref('old_sensor_features')]
    config: {meta: {featurestore: {features: [sensor_features:temperature, sensor_features:state, old_sensor_features:humidity]}}}
"""


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs it)")
        pytest.skip("chromium not installed: apt-get install chromium (.ci/run does)")
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory, moto_server):
    """A sensor project with a stale view, a drifting feature and a failing expectation, three
    stats runs of history, an exported training set, and a catalog written from it."""
    root = tmp_path_factory.mktemp("catalog")
    project = copy_project(FIXTURES / "quality_project", root / "project")
    (project / "models" / "old_sensor_features.sql").write_text(
        "select sensor_id, ev, created, temperature, humidity, state from {{ source('props', 'old_sensor_events') }}\n")
    schema = project / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("      - name: sensor_events\n",
                                                 "      - name: sensor_events\n      - name: old_sensor_events\n")
                      + OLD_VIEW_YAML)
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "catalog_"}
    dbt = project_env(project, **env)
    dbt.run("deps", "--quiet")
    tables = DuckDBTables(duckdb_path(project))
    # each batch loaded a minute after the one before (all in the past), so the incremental builds read it
    loaded = [datetime.now() - timedelta(minutes=2 - batch) for batch in range(3)]
    tables.load(SENSOR_EVENTS_DDL, "sensor_events", readings(NOW - 20 * DAY, 10, seed=1, loaded_at=loaded[0]))
    tables.load(SENSOR_EVENTS_DDL, "old_sensor_events",
                readings(datetime(2024, 1, 1), 5, seed=2, loaded_at=loaded[0]))  # stale
    store = FeatureStore(project, env=env)
    for run, rows in enumerate([[], readings(NOW - 10 * DAY, 10, seed=3, temperature=(27.0, 2.0), loaded_at=loaded[1]),
                                readings(NOW - 9 * DAY, 8, seed=4, temperature=(30.0, 2.0), null_share=0.6,
                                         loaded_at=loaded[2])]):
        tables.load(SENSOR_EVENTS_DDL, "sensor_events", rows)
        dbt.run("build", "--quiet", raise_on_failure=False)  # the expectation test fails on the last run
        store.stats()
    out = root / "exports"
    entities = root / "entities.csv"
    entities.write_text("sensor_id,event_timestamp\n" + "".join(f"{s},{NOW.isoformat()}\n" for s in range(30)))
    result = runner.invoke(app, ["export", "-p", str(project), "-e", str(entities), "--service", "sensor_model",
                                 "--out", str(out / "sensors_train.parquet")], env=env)
    assert result.exit_code == 0, result.output
    site = root / "site"
    result = runner.invoke(app, ["catalog", "-p", str(project), "--out", str(site), "--dbt-docs-url",
                                 "http://docs.example", "--exports", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return project, site


def run_chromium(chromium, tmp_path, url, *extra):
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *extra, url], capture_output=True, text=True, timeout=120)


def page_requests(netlog: Path) -> list[str]:
    """http(s) requests the page itself made (Chromium's own background calls are initiated by
    "not an origin"; a file:// page's by "null")."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start and str((event.get("params") or {}).get("url", "")).startswith("http")
            and event["params"].get("initiator") != "not an origin"]


def test_the_network_check_sees_a_page_request(chromium, tmp_path):
    """The check above can fail: a page that loads an image from the network is caught."""
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    run_chromium(chromium, tmp_path, page.as_uri(), "--dump-dom", f"--log-net-log={tmp_path / 'leaky.json'}")
    assert page_requests(tmp_path / "leaky.json") == ["http://127.0.0.1:9/x.png"]


def badges_of(page: str, feature: str) -> set[str]:
    row = next(r for r in re.findall(r"<tr data-search=.*?</tr>", page, re.S) if f">{feature}</a>" in r)
    return set(re.findall(r'class="badge ([a-z-]+)"', row))


def test_planted_problems_show_their_badges_and_filter_pages(planted):
    _, site = planted
    index = (site / "index.html").read_text()
    assert badges_of(index, "temperature") >= {"drifting", "failing"}  # sensor_features' temperature
    assert "stale" in badges_of(index, "humidity") or "stale" in (site / "index-stale.html").read_text()
    stale = (site / "index-stale.html").read_text()
    assert stale.count("old_sensor_features</a>:") == 3 and "sensor_features</a>:<br>" not in stale.replace(
        "old_sensor_features</a>:<br>", "")
    drifting = (site / "index-drifting.html").read_text()
    assert ">temperature</a>" in drifting and ">humidity</a>" not in drifting
    failing = (site / "index-failing.html").read_text()
    assert ">temperature</a>" in failing and ">state</a>" not in failing
    never = (site / "index-never-synced.html").read_text()
    assert never.count("old_sensor_features</a>:") == 3  # online, never synced; sensor_features is not online
    for badge in ("stale", "drifting", "failing", "never-synced"):
        assert f'href="index-{badge}.html"' in index


def test_history_plots_and_pages_link_everything(planted):
    _, site = planted
    feature = (site / "feature--sensor_features--temperature.html").read_text()
    drift_plot = feature[feature.index("Drift ("):feature.index("Null rate</figcaption>")]
    assert drift_plot.count("<circle") == 3  # three stats runs
    assert "threshold 0.2" in drift_plot and "fails" in feature and "max ≤ 150" in feature
    assert "<rect" in feature  # the histogram
    assert "sensor_model" in feature and "source" in feature and "props.sensor_events" in feature
    assert "http://docs.example/#!/source/source.quality_props.props.sensor_events" in feature
    view = (site / "view--old_sensor_features.html").read_text()
    assert "never synced" in view and "stale past 1d" in view
    service = (site / "service--sensor_model.html").read_text()
    assert "sensors_train.parquet" in service and ">sensor_features:temperature</a>" in service


def test_values_from_yaml_are_escaped_and_urls_must_be_http(planted, tmp_path):
    project, site = planted
    pages = "".join(page.read_text() for page in site.glob("*.html"))
    assert "<script>alert" not in pages and "&lt;script&gt;alert" in pages
    assert "<b>bold</b>" not in pages and "&lt;b&gt;bold&lt;/b&gt;" in pages
    for url in ("javascript:alert(1)", "file:///etc/passwd", "docs.example"):
        result = runner.invoke(app, ["catalog", "-p", str(project), "--out", str(tmp_path / "x"), "--dbt-docs-url", url])
        assert result.exit_code == 1 and "must be an http(s) URL" in result.output


def test_every_page_loads_in_chromium_with_no_errors_and_no_network(chromium, planted, tmp_path):
    _, site = planted
    for page in sorted(site.glob("*.html")):
        text = page.read_text()
        # nothing is fetched: no external scripts, styles, images or frames
        assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="https?:', text), page.name
        netlog = tmp_path / f"{page.stem}.netlog.json"
        result = run_chromium(chromium, tmp_path, page.as_uri(), "--dump-dom", f"--log-net-log={netlog}")
        assert "</html>" in result.stdout, result.stderr[-2000:]
        console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert console == [], (page.name, console)
        assert page_requests(netlog) == [], page.name


def test_screenshots_of_index_feature_and_service_pages(chromium, planted, tmp_path):
    _, site = planted
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, page in (("index", "index.html"), ("feature", "feature--sensor_features--temperature.html"),
                       ("service", "service--sensor_model.html")):
        shot = ARTIFACTS / f"{name}.png"
        shot.unlink(missing_ok=True)
        result = run_chromium(chromium, tmp_path, (site / page).as_uri(), f"--screenshot={shot}", "--window-size=1400,900")
        assert shot.is_file(), result.stderr[-2000:]
        data = shot.read_bytes()
        width, height = struct.unpack(">II", data[16:24])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1400, 900) and len(data) > 20_000


def test_three_stats_runs_over_a_changing_demo_give_three_points(tmp_path, built_demo):
    project = built_demo(JaffleSize(customers=40, stores=2, days=30), seed=31)
    raw = project / "data" / "raw"
    dbt = project_env(project)
    store = FeatureStore(project)
    store.stats(["customer_features"])
    import pandas as pd

    for day in (1, 2):  # a new day of orders appended, twice
        orders = pd.read_csv(raw / "raw_orders.csv")
        last = pd.to_datetime(orders.ordered_at).max()
        new = orders.tail(15).assign(ordered_at=(last + pd.Timedelta(days=1)).isoformat(),
                                     id=[f"new-{day}-{i}" for i in range(15)])
        append_late_orders(raw, new.to_dict("records"), f"day{day}")  # loaded now: after the last build
        dbt.run("build", "--quiet")
        store.stats(["customer_features"])
    result = runner.invoke(app, ["catalog", "-p", str(project), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "feature--customer_features--total_orders_30d.html").read_text()
    null_plot = page[page.index("Null rate</figcaption>"):page.index("Mean</figcaption>")]
    assert null_plot.count("<circle") == 3


@pytest.mark.dbt_compat
def test_dbt_docs_show_the_feature_metadata(demo_project):
    project_env(demo_project).run("docs generate", "--quiet")
    assert (demo_project / "target" / "index.html").is_file()
    manifest = json.loads((demo_project / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.jaffle_shop.customer_features"]
    assert node["meta"]["featurestore"]["ttl"] == "2d"  # the docs site renders a model's meta
    assert node["columns"]["total_orders_30d"]["meta"]["featurestore"]["window"] == "30d"
