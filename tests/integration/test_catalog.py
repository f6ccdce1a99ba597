"""The static feature catalog, checked in a real headless Chromium; and dbt docs carry the metadata."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess

import pytest
from typer.testing import CliRunner

from conftest import project_env
from featurestore import FeatureStore
from featurestore.cli import app

runner = CliRunner()
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (.ci/run installs it)")
        pytest.skip("chromium not installed: apt-get install chromium (.ci/run does)")
    return path


@pytest.fixture(scope="module")
def catalog_page(demo_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = runner.invoke(app, ["catalog", "-p", str(demo_project), "--out", str(out),
                                 "--dbt-docs-url", "http://docs.example"])
    assert result.exit_code == 0, result.output
    return out / "index.html"


def run_chromium(chromium, tmp_path, url, *extra):
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *extra, url], capture_output=True, text=True, timeout=120)


def rows_matching(page_html: str, query: str) -> int:
    texts = re.findall(r'data-search="([^"]*)"', page_html)
    words = query.lower().split()
    return sum(all(word in text for word in words) for text in texts)


def test_catalog_lists_every_feature_with_its_metadata(catalog_page, demo_project):
    html = catalog_page.read_text()
    registry = FeatureStore(demo_project).registry
    for view in registry.feature_views.values():
        for feature in view.features:
            assert feature.name in html and feature.description.split(";")[0][:30] in html.replace("&#39;", "'")
    assert "http://docs.example/#!/model/model.jaffle_shop.customer_features" in html
    assert "churn_model" in html and "growth-analytics@jaffle.shop" in html


def test_catalog_loads_filters_and_logs_no_errors_in_chromium(chromium, catalog_page, tmp_path):
    html = catalog_page.read_text()
    total = len(re.findall(r"data-search=", html))
    for query, expected in (("", total), ("revenue", rows_matching(html, "revenue")), ("store orders", rows_matching(html, "store orders")),
                            ("no-such-thing", 0)):
        url = catalog_page.as_uri() + (f"#q={query}" if query else "")
        result = run_chromium(chromium, tmp_path, url, "--dump-dom")
        shown = re.search(r'data-shown="(\d+)"', result.stdout)
        assert shown, result.stderr[-2000:]
        assert int(shown.group(1)) == expected, (query, result.stdout[:500])
        console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert console == [], console
    assert 0 < rows_matching(html, "revenue") < total


def test_catalog_screenshot(chromium, catalog_page, tmp_path):
    shot = tmp_path / "catalog.png"
    result = run_chromium(chromium, tmp_path, catalog_page.as_uri() + "#q=customer", f"--screenshot={shot}",
                          "--window-size=1400,900")
    assert shot.is_file(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 900) and len(data) > 20_000  # a rendered page, not a blank one


def test_dbt_docs_show_the_feature_metadata(demo_project):
    project_env(demo_project).run("docs generate", "--quiet")
    assert (demo_project / "target" / "index.html").is_file()
    manifest = json.loads((demo_project / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.jaffle_shop.customer_features"]
    assert node["meta"]["featurestore"]["ttl"] == "2d"  # the docs site renders a model's meta
    assert node["columns"]["total_orders_30d"]["meta"]["featurestore"]["window"] == "30d"
