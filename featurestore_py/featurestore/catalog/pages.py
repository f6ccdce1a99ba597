"""What the catalog shows, computed from the registry, the latest statistics, their history, the
sync states and exported training sets: plain data for the templates.

Status badges:
  stale          the view's newest event is older than its `max_staleness`
  drifting       a feature's latest drift value is past its threshold (`drift: max_psi / max_tvd`)
  failing        an expectation (`expect:`) does not hold on the latest statistics
  never synced   an online view with no sync state for this project (unknown when the online
                 store could not be asked)

Drift over time compares each stats run with a reference: the stats saved with a training set
when one is given (`--reference-stats`), else the first run in the history. Numbers: PSI over
the reference's bins, the current shares estimated from the run's stored quantiles (min, p5 ...
p95, max) by linear interpolation; categories: total variation distance of the top values'
shares (the rest as one "other" share). These are estimates for a picture; `featurestore drift`
computes exact figures in the warehouse.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import datetime

from ..durations import parse_duration
from ..quality.drift import DEFAULT_MAX_PSI, DEFAULT_MAX_TVD, psi, tvd
from ..registry import Registry

BADGES = ("stale", "drifting", "failing", "never-synced")
QUANTILE_POINTS = ((0.0, "min"), (0.05, "p5"), (0.25, "p25"), (0.5, "p50"), (0.75, "p75"), (0.95, "p95"), (1.0, "max"))


def slug(*parts: str) -> str:
    text = "--".join(parts)
    return re.sub(r"[^A-Za-z0-9_.-]", lambda m: f"_{ord(m.group(0)):x}_", text)


def _cdf_points(entry: dict) -> list[tuple[float, float]] | None:
    """(value, share of rows at or below it) from a numeric stats entry, or None."""
    values = [entry.get(key) if key in ("min", "max") else (entry.get("quantiles") or {}).get(key)
              for _, key in QUANTILE_POINTS]
    if any(value is None for value in values):
        return None
    return [(float(value), q) for (q, _), value in zip(QUANTILE_POINTS, values)]


def _share_below(points: list[tuple[float, float]], x: float) -> float:
    xs = [p[0] for p in points]
    if x <= xs[0]:
        return 0.0
    if x >= xs[-1]:
        return 1.0
    i = bisect_right(xs, x) - 1
    (x0, q0), (x1, q1) = points[i], points[min(i + 1, len(points) - 1)]
    return q0 if x1 == x0 else q0 + (q1 - q0) * (x - x0) / (x1 - x0)


def _bin_shares(points, edges: list[float]) -> dict[int, float]:
    cuts = [0.0] + [_share_below(points, edge) for edge in edges] + [1.0]
    return {index: max(cuts[index + 1] - cuts[index], 0.0) for index in range(len(edges) + 1)}


def _category_shares(entry: dict, rows: int | None) -> dict[str, float]:
    top = entry.get("top") or []
    total = rows or sum(n for _, n in top) or 1
    shares = {str(value): n / total for value, n in top}
    shares["__other__"] = max(0.0, 1.0 - sum(shares.values()))
    return shares


def _reference(feature_ref: str, name: str, history: list[dict], saved: dict | None):
    """(kind, reference) for drift: the training fingerprint's entry, else the first history run's."""
    if saved and feature_ref in (saved.get("features") or {}):
        entry = saved["features"][feature_ref]
        if entry.get("kind") == "number" and entry.get("edges") is not None:
            return "number", (list(entry["edges"]), {int(k): v for k, v in (entry.get("bin_shares") or {}).items()})
        if entry.get("kind") == "category":
            return "category", dict(entry.get("value_shares") or {})
    kinds = [entry.get("kind") for run in history if (entry := (run.get("features") or {}).get(name))]
    for run in history:
        entry = (run.get("features") or {}).get(name)
        # the first run of the kind the feature has now: a type reclassified between runs (featurestore
        # 0.2 counted Spark's `long` as a category) must not read as drift
        if not entry or entry.get("kind") != kinds[-1]:
            continue
        if entry.get("kind") == "number":
            points = _cdf_points(entry)
            if points:
                edges = sorted({value for value, q in points if 0 < q < 1})
                return "number", (edges, _bin_shares(points, edges))
        else:
            return "category", _category_shares(entry, run.get("rows"))
    return None, None


def drift_series(feature_ref: str, name: str, history: list[dict], saved: dict | None) -> list[tuple[str, float | None]]:
    kind, reference = _reference(feature_ref, name, history, saved)
    out = []
    for run in history:
        entry = (run.get("features") or {}).get(name)
        value = None
        if entry and kind == "number" and entry.get("kind") == "number":
            points = _cdf_points(entry)
            if points:
                edges, shares = reference
                value = psi(shares, _bin_shares(points, edges), len(edges) + 1)
        elif entry and kind == "category" and entry.get("kind") != "number":
            value = tvd(reference, _category_shares(entry, run.get("rows")))
        out.append((run["computed_at"][:16].replace("T", " "), value))
    return out


def expectation_checks(expect: dict, stats: dict | None) -> list[dict]:
    """Each declared expectation against the latest statistics: observed value and whether it holds."""
    if not isinstance(expect, dict) or not stats:
        return []
    checks = []
    if isinstance(expect.get("min"), (int, float)) and stats.get("min") is not None:
        checks.append({"check": f"min ≥ {expect['min']}", "observed": stats["min"], "ok": stats["min"] >= expect["min"]})
    if isinstance(expect.get("max"), (int, float)) and stats.get("max") is not None:
        checks.append({"check": f"max ≤ {expect['max']}", "observed": stats["max"], "ok": stats["max"] <= expect["max"]})
    if isinstance(expect.get("max_null_rate"), (int, float)) and stats.get("null_rate") is not None:
        checks.append({"check": f"null rate ≤ {expect['max_null_rate']:.1%}", "observed": f"{stats['null_rate']:.1%}",
                       "ok": stats["null_rate"] <= expect["max_null_rate"]})
    if isinstance(expect.get("values"), list) and stats.get("top"):
        allowed = {str(v) for v in expect["values"]}
        outside = [str(value) for value, _ in stats["top"] if str(value) not in allowed]
        checks.append({"check": f"values in {', '.join(sorted(allowed))}",
                       "observed": ", ".join(outside) if outside else "all top values allowed", "ok": not outside})
    return checks


def build(registry: Registry, latest: list[dict], history: list[dict], sync_states: dict | None,
          exports: list[dict], saved: dict | None, now: datetime) -> dict:
    """Everything the templates render: features, views, services, badge counts."""
    by_view = {entry["view"]: entry for entry in latest}
    runs_by_view: dict[str, list[dict]] = {}
    for run in sorted(history, key=lambda r: r["computed_at"]):
        runs_by_view.setdefault(run["view"], []).append(run)
    used_by: dict[str, list[str]] = {}
    for service in registry.services.values():
        for reference in service.feature_refs:
            used_by.setdefault(reference, []).append(service.name)

    views, features = {}, []
    for view in registry.feature_views.values():
        stats = by_view.get(view.name) or {}
        runs = runs_by_view.get(view.name, [])
        staleness = view.meta.get("max_staleness")
        fresh = stats.get("freshness_seconds")
        stale = False
        if staleness and fresh is not None:
            try:
                stale = fresh > parse_duration(staleness).total_seconds()
            except ValueError:
                stale = False
        state = None if sync_states is None else sync_states.get(view.name)
        never_synced = view.online and sync_states is not None and (state is None or not state.get("watermark"))
        view_badges = [badge for badge, on in (("stale", stale), ("never-synced", never_synced)) if on]
        view_features = []
        for feature in view.features:
            feature_stats = (stats.get("features") or {}).get(feature.name)
            limits = feature.meta.get("drift") if isinstance(feature.meta.get("drift"), dict) else {}
            numeric = (feature_stats or {}).get("kind") == "number"
            threshold = float(limits.get("max_psi", DEFAULT_MAX_PSI) if numeric else limits.get("max_tvd", DEFAULT_MAX_TVD))
            drift = drift_series(feature.reference, feature.name, runs, saved)
            latest_drift = next((value for _, value in reversed(drift) if value is not None), None)
            checks = expectation_checks(feature.meta.get("expect") or {}, feature_stats)
            badges = list(view_badges)
            if latest_drift is not None and latest_drift > threshold:
                badges.append("drifting")
            if any(not check["ok"] for check in checks):
                badges.append("failing")
            entry = {
                "reference": feature.reference, "name": feature.name, "view": view.name, "page": f"{slug('feature', view.name, feature.name)}.html",
                "description": feature.description, "type": feature.dtype or "", "window": feature.window,
                "owner": view.owner or "", "entities": ", ".join(view.entities), "ttl": view.ttl_text or "none",
                "online": view.online, "stats": feature_stats, "checks": checks, "badges": sorted(set(badges)),
                "drift": drift, "drift_metric": "PSI" if numeric else "TVD", "drift_threshold": threshold,
                "latest_drift": latest_drift,
                "null_rates": [(run["computed_at"][:16].replace("T", " "), ((run.get("features") or {}).get(feature.name) or {}).get("null_rate")) for run in runs],
                "means": [(run["computed_at"][:16].replace("T", " "), ((run.get("features") or {}).get(feature.name) or {}).get("mean")) for run in runs] if numeric else [],
                "services": used_by.get(feature.reference, []),
            }
            features.append(entry)
            view_features.append(entry)
        views[view.name] = {
            "name": view.name, "page": f"{slug('view', view.name)}.html", "description": view.description,
            "owner": view.owner or "", "entities": list(view.entities), "join_keys": registry.join_keys(view)
            if all(e in registry.entities for e in view.entities) else (), "ttl": view.ttl_text or "none",
            "max_staleness": staleness, "online": view.online, "tags": list(view.tags), "unique_id": view.unique_id,
            "stats": stats, "freshness": _age(fresh), "badges": sorted({b for f in view_features for b in f["badges"]}),
            "features": view_features, "upstream": list(view.upstream), "exposures": list(registry.exposures_using.get(view.name, ())),
            "sync": state, "sync_known": sync_states is not None,
            "freshness_series": [(run["computed_at"][:16].replace("T", " "),
                                  (run["freshness_seconds"] / 86400 if run.get("freshness_seconds") is not None else None))
                                 for run in runs],
            "runs": len(runs),
        }
    services = {}
    for service in registry.services.values():
        members = [f for f in features if f["reference"] in service.feature_refs]
        services[service.name] = {
            "name": service.name, "page": f"{slug('service', service.name)}.html", "description": service.description,
            "owner": service.owner or "", "features": members, "views": sorted({f["view"] for f in members}),
            "badges": sorted({b for f in members for b in f["badges"]}),
            "exports": [e for e in exports if e.get("service") == service.name or set(e.get("features", [])) & set(service.feature_refs)],
        }
    on_demand = on_demand_pages(registry, used_by)
    for service in registry.services.values():
        services[service.name]["on_demand"] = [f for view in on_demand.values() for f in view["features"]
                                               if f["reference"] in service.feature_refs]
    counts = {badge: sum(badge in f["badges"] for f in features) for badge in BADGES}
    return {"features": features, "views": views, "services": services, "counts": counts, "on_demand": on_demand}


def on_demand_pages(registry: Registry, used_by: dict[str, list[str]]) -> dict[str, dict]:
    """Per on-demand view: its request fields, inputs (linked to their features' pages) and
    features with their expressions (computed per request: no stats, no drift)."""
    pages = {}
    for view in registry.on_demand_views.values():
        pages[view.name] = {
            "name": view.name, "page": f"{slug('on-demand', view.name)}.html", "description": view.description,
            "request": [{"name": name, "type": dtype or ""} for name, dtype in view.request.items()],
            "inputs": [{"reference": reference, "page": f"{slug('feature', *reference.split(':', 1))}.html"}
                       for reference in view.inputs],
            "features": [{"reference": feature.reference, "name": feature.name, "type": feature.dtype or "",
                          "description": feature.description, "expression": view.expression(feature) or "",
                          "page": f"{slug('on-demand', view.name)}.html", "services": used_by.get(feature.reference, [])}
                         for feature in view.features],
            "exposures": list(registry.exposures_using.get(view.name, ())),
        }
    return pages


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
