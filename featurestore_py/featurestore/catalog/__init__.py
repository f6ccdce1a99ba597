"""A static HTML catalog of every feature, for people who do not read YAML.

One self-contained page (no network, no build step): each feature with its description, type,
owner, entity, TTL, freshness, latest statistics and the services (models) that use it, a
search box that filters as you type (also from the URL: `index.html#q=orders`), and links to
the dbt docs of each model.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import jinja2

from ..registry import Registry


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("featurestore", "catalog"),
                              autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)


def catalog_rows(registry: Registry, stats: list[dict]) -> list[dict]:
    by_view = {entry["view"]: entry for entry in stats}
    used_by: dict[str, list[str]] = {}
    for service in registry.services.values():
        for reference in service.feature_refs:
            used_by.setdefault(reference, []).append(service.name)
    rows = []
    for view in registry.feature_views.values():
        view_stats = by_view.get(view.name) or {}
        fresh = view_stats.get("freshness_seconds")
        for feature in view.features:
            feature_stats = (view_stats.get("features") or {}).get(feature.name) or {}
            if feature_stats.get("kind") == "number":
                summary = (f"mean {feature_stats['mean']:.4g}, p50 {feature_stats['quantiles']['p50']:.4g}, "
                           f"range {feature_stats['min']:.4g} to {feature_stats['max']:.4g}"
                           if feature_stats.get("mean") is not None else "no values")
            elif feature_stats:
                summary = ", ".join(f"{value} ({count:,})" for value, count in feature_stats.get("top", [])[:3])
            else:
                summary = "not computed"
            rows.append({
                "reference": feature.reference, "name": feature.name, "view": view.name,
                "unique_id": view.unique_id, "description": feature.description, "type": feature.dtype or "",
                "owner": view.owner or "", "entities": ", ".join(view.entities),
                "join_keys": ", ".join(registry.join_keys(view)) if all(e in registry.entities for e in view.entities) else "",
                "ttl": view.ttl_text or "none", "online": view.online,
                "freshness": "-" if fresh is None else (f"{fresh / 3600:.1f} h" if fresh < 172800 else f"{fresh / 86400:.0f} days"),
                "null_rate": "-" if feature_stats.get("null_rate") is None else f"{feature_stats['null_rate']:.1%}",
                "summary": summary, "services": ", ".join(used_by.get(feature.reference, [])) or "-",
            })
    return rows


def write_catalog(registry: Registry, stats: list[dict], out_dir: str | Path, dbt_docs_url: str | None = None) -> Path:
    """Write `index.html` into out_dir and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = catalog_rows(registry, stats)
    html = _environment().get_template("template.html").render(
        rows=rows, project=registry.project_name, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        dbt_docs_url=(dbt_docs_url or "").rstrip("/"), views=len(registry.feature_views),
        services=sorted(registry.services))
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
