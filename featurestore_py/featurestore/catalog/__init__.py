"""A static HTML catalog of every feature, for people who do not read YAML.

One folder, no network, no build step: `index.html` (every feature with its status badges, a
search box, and a page per badge — `index-stale.html`, `index-drifting.html`,
`index-failing.html`, `index-never-synced.html` — so filters work without JavaScript), a page
per feature (distribution, drift, null rate and mean over time from the stats history,
expectations, lineage, SQL), per feature view and per feature service (its features' status
and the training sets exported for it), per on-demand view (request fields, inputs, each
feature's expression). Plots are inline SVG. Every value from YAML or data is
HTML-escaped; a dbt docs URL must be http(s).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import jinja2
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import FeatureStoreError
from ..quality import STATS_METADATA_KEY, load_history, load_saved_stats
from ..registry import Registry
from . import pages, svg


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("featurestore", "catalog"),
                              autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.ChainableUndefined)


def check_docs_url(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeatureStoreError(f"--dbt-docs-url '{url}' must be an http(s) URL, e.g. http://localhost:8080.")
    return url.rstrip("/")


def summary(stats: dict | None) -> str:
    if not stats:
        return "not computed"
    if stats.get("kind") == "number":
        if stats.get("mean") is None:
            return "no values"
        return (f"mean {stats['mean']:.4g}, p50 {stats['quantiles']['p50']:.4g}, "
                f"range {stats['min']:.4g} to {stats['max']:.4g}")
    return ", ".join(f"{value} ({count:,})" for value, count in (stats.get("top") or [])[:3]) or "no values"


def write_catalog(registry: Registry, latest: list[dict], out_dir: str | Path, dbt_docs_url: str | None = None, *,
                  history: list[dict] = (), sync_states: dict | None = None, exports: list[dict] = (),
                  reference: dict | None = None, reference_label: str | None = None,
                  sql_of=None, exports_searched: bool = False) -> Path:
    """Write the catalog into out_dir; return the path of index.html."""
    docs = check_docs_url(dbt_docs_url)
    out = _catalog_folder(Path(out_dir))
    data = pages.build(registry, latest, list(history), sync_states, list(exports), reference, datetime.now(timezone.utc))
    environment = _environment()
    service_names = sorted(data["services"])
    common = {
        "project": registry.project_name, "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "dbt_docs_url": docs, "service_names": service_names, "views": data["views"], "summary": summary,
        "service_page": lambda name: data["services"][name]["page"] if name in data["services"] else "index.html",
        "badges": pages.BADGES, "counts": data["counts"], "exports_searched": exports_searched,
    }

    def write(name: str, template: str, **context) -> None:
        page = environment.get_template(template).render(**common, **context)
        try:
            (out / name).write_text(page, encoding="utf-8")
        except OSError as exc:
            raise FeatureStoreError(f"Cannot write the catalog page {out / name}: {exc.strerror or exc}") from None

    common["on_demand"] = data["on_demand"]
    write("index.html", "index.html", features=data["features"], only=None)
    for badge in pages.BADGES:
        write(f"index-{badge}.html", "index.html", features=data["features"], only=badge)
    label = reference_label or "the first stats run"
    for feature in data["features"]:
        view = data["views"][feature["view"]]
        stats = feature["stats"] or {}
        if stats.get("kind") == "number" and stats.get("histogram"):
            distribution = svg.histogram(stats["histogram"]["edges"], stats["histogram"]["counts"], "histogram")
        else:
            distribution = svg.top_values([(str(v), n) for v, n in stats.get("top") or []], "top values")
        sql, sql_note = (sql_of(feature["view"]) if sql_of else ("", ""))
        write(feature["page"], "feature.html", f=feature, view=view, distribution=distribution,
              drift_plot=svg.series(feature["drift"], "drift", limit=feature["drift_threshold"]),
              null_plot=svg.series(feature["null_rates"], "null rate", percent=True),
              mean_plot=svg.series(feature["means"], "mean") if feature["means"] else "",
              reference_label=label, sql=sql, sql_note=sql_note)
    for view in data["views"].values():
        write(view["page"], "view.html", view=view,
              freshness_plot=svg.series(view["freshness_series"], "days since the newest event"))
    for service in data["services"].values():
        write(service["page"], "service.html", s=service)
    for view in data["on_demand"].values():
        write(view["page"], "on_demand.html", view=view)
    return out / "index.html"


GENERATOR = '<meta name="generator" content="featurestore catalog">'  # in every page (base.html)


def _catalog_folder(out: Path) -> Path:
    """The folder a catalog may be written into: a new or empty one, or one holding a catalog this
    command wrote (its index.html carries GENERATOR) — never a folder of someone else's files."""
    try:
        if out.exists():
            if not out.is_dir():
                raise FeatureStoreError(f"The catalog folder {out} is a file; choose a folder.")
            if any(out.iterdir()) and not _holds_our_catalog(out):
                raise FeatureStoreError(
                    f"The catalog folder {out} holds files the catalog did not write; choose an empty or new "
                    "folder (the catalog only overwrites a catalog of its own).")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeatureStoreError(f"Cannot use the catalog folder {out}: {exc.strerror or exc}") from None
    return out


def _holds_our_catalog(out: Path) -> bool:
    """Whether out/index.html is a catalog page: it carries GENERATOR (or, written by featurestore
    0.2, which had no such tag, sits beside the badge pages with the catalog's header)."""
    index = out / "index.html"
    if not index.is_file():
        return False
    head = index.read_text(encoding="utf-8", errors="replace")[:4000]
    return GENERATOR in head or ('<a href="index.html">Feature catalog</a>' in head
                                 and all((out / f"index-{badge}.html").is_file() for badge in pages.BADGES))


def write_project_catalog(registry: Registry, out_dir, dbt_docs_url: str | None = None, *,
                          stats: Callable[[], list[dict]], connect: Callable, sync_status: Callable[[], list[dict]],
                          compiled_dir: Path, exports_dir=None, reference_stats=None) -> Path:
    """The catalog of a project (FeatureStore.write_catalog): fresh statistics (`stats()`), their
    history, the views' sync state (`sync_status()`; unknown when the online store does not
    answer) and the training sets found under exports_dir. compiled_dir: dbt's compiled SQL."""
    check_docs_url(dbt_docs_url)
    reference = load_saved_stats(reference_stats) if reference_stats else None
    latest = stats()
    with connect() as warehouse:
        history = load_history(warehouse)
    sync_states = None
    if any(view.online for view in registry.feature_views.values()):
        try:
            sync_states = {row["view"]: row for row in sync_status()}
        except FeatureStoreError:
            sync_states = None  # the online store did not answer: shown as unknown
    return write_catalog(registry, latest, out_dir, dbt_docs_url, history=history, sync_states=sync_states,
                         exports=find_exports(exports_dir) if exports_dir else [], reference=reference,
                         reference_label=Path(reference_stats).name if reference_stats else None,
                         sql_of=lambda name: model_sql(registry.view(name), compiled_dir),
                         exports_searched=bool(exports_dir))


def model_sql(view, compiled_dir: Path) -> tuple[str, str]:
    """The view's SQL as dbt compiled it (target/compiled), else as written; and a note saying which."""
    compiled = Path(compiled_dir) / view.sql_path
    if compiled.is_file():
        return compiled.read_text(encoding="utf-8"), f"compiled by dbt ({compiled.name})"
    if view.compiled_code:
        return view.compiled_code, "compiled by dbt"
    return view.raw_code, "as written (run dbt compile or build for the compiled SQL)"


def find_exports(folder) -> list[dict]:
    """Training sets exported by featurestore under a folder: their fingerprints' service and features."""
    root = Path(folder)
    if not root.is_dir():
        raise FeatureStoreError(f"--exports {root} is not a folder.")
    found = []
    for path in sorted(root.rglob("*.parquet")):
        try:
            metadata = pq.read_schema(path).metadata or {}
            stats = json.loads(metadata[STATS_METADATA_KEY.encode()]) if STATS_METADATA_KEY.encode() in metadata else None
        except (OSError, ValueError, pa.ArrowInvalid):
            continue
        if stats:
            found.append({"path": str(path.relative_to(root)), "service": stats.get("service"),
                          "features": list(stats.get("features") or {}), "rows": stats.get("rows"),
                          "exported_at": stats.get("exported_at")})
    return found
