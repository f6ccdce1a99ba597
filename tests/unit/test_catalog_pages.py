"""The catalog's drift estimate from stored quantiles, expectation checks and plots, without a warehouse."""

from featurestore.catalog import check_docs_url, pages, svg
from featurestore.errors import FeatureStoreError

import pytest


def run(at, shift=0.0, rows=100):
    quantiles = {"p5": 5 + shift, "p25": 25 + shift, "p50": 50 + shift, "p75": 75 + shift, "p95": 95 + shift}
    return {"computed_at": at, "view": "v", "rows": rows,
            "features": {"x": {"kind": "number", "min": shift, "max": 100 + shift, "quantiles": quantiles,
                               "null_rate": 0.0, "mean": 50 + shift},
                         "c": {"kind": "category", "top": [["a", 50], ["b", 50 - int(shift)]]}}}


def test_drift_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    history = [run("2026-01-01T00:00:00"), run("2026-01-02T00:00:00"), run("2026-01-03T00:00:00", shift=20),
               run("2026-01-04T00:00:00", shift=40)]
    series = [value for _, value in pages.drift_series("v:x", "x", history, None)]
    assert series[0] == pytest.approx(0.0, abs=1e-9) and series[1] == pytest.approx(0.0, abs=1e-9)
    assert 0 < series[2] < series[3]
    categories = [value for _, value in pages.drift_series("v:c", "c", history, None)]
    assert categories[0] == 0.0 and categories[3] > 0


def test_a_feature_whose_kind_changed_between_runs_does_not_read_as_drift():
    """Statistics of a type reclassified between runs (0.2 counted Spark's `long` as a category):
    the reference is the first run of the kind the feature has now, not a comparison across kinds."""
    earlier = run("2026-01-01T00:00:00")
    earlier["features"]["x"] = {"kind": "category", "top": [["50", 100]]}
    history = [earlier, run("2026-01-02T00:00:00"), run("2026-01-03T00:00:00")]
    series = [value for _, value in pages.drift_series("v:x", "x", history, None)]
    assert series[0] is None
    assert series[1] == pytest.approx(0.0, abs=1e-9) and series[2] == pytest.approx(0.0, abs=1e-9)


def test_a_training_fingerprint_is_the_reference_when_given():
    saved = {"features": {"v:x": {"kind": "number", "edges": [50.0], "bin_shares": {"0": 0.5, "1": 0.5}}}}
    series = pages.drift_series("v:x", "x", [run("2026-01-01T00:00:00"), run("2026-01-02T00:00:00", shift=30)], saved)
    assert series[0][1] == pytest.approx(0.0, abs=1e-9) and series[1][1] > 0.1


def test_expectations_are_checked_on_the_latest_statistics():
    stats = {"min": -1, "max": 10, "null_rate": 0.3, "top": [["ok", 5], ["men's", 2]]}
    checks = pages.expectation_checks({"min": 0, "max": 100, "max_null_rate": 0.5, "values": ["ok"]}, stats)
    assert [c["ok"] for c in checks] == [False, True, True, False]
    assert "men's" in checks[3]["observed"]


def test_plots_escape_text_and_show_every_point():
    plot = svg.series([("<b>", 1.0), ("b", None), ("c", 3.0)], "t<i>", limit=2.0)
    assert plot.count("<circle") == 2 and "<b>" not in plot and "&lt;b&gt;" in plot and "threshold" in plot
    assert "<script" not in svg.top_values([("<script>", 3)], "x")
    assert "no data yet" in svg.histogram([0, 1], [0], "empty")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "docs.example", "ftp://x"])
def test_only_http_docs_urls_are_accepted(url):
    with pytest.raises(FeatureStoreError, match="http"):
        check_docs_url(url)
    assert check_docs_url("https://docs.example/") == "https://docs.example"


def test_a_flat_share_is_drawn_without_a_negative_axis():
    plot = svg.series([("a", 0.0), ("b", 0.0)], "null rate", percent=True)
    assert "-" not in "".join(l for l in plot.split(">") if "%" in l) and "5.0%" in plot and "0.0%" in plot
