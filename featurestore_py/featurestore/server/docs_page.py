"""GET /docs: the OpenAPI document as one self-contained HTML page — no script, no stylesheet
or font from elsewhere, so it shows on a server that reaches no CDN and loads no third-party
code (FastAPI's Swagger UI loads both from jsdelivr). `CSP` is the header that holds it to that."""

from __future__ import annotations

import json
from html import escape
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{font-size:1.1rem;margin-top:2rem;border-top:1px solid #ddd;padding-top:1rem}
code.method{font-weight:bold;color:#0a5}pre{background:#f6f6f6;padding:.75rem;overflow-x:auto;font-size:.85rem}
table{border-collapse:collapse}td{padding:.15rem .75rem .15rem 0;vertical-align:top}"""


def docs_page(document: dict[str, Any], authenticated: bool) -> str:
    """The page of an OpenAPI document: per endpoint its method, path, summary, request body
    schema and responses."""
    info = document.get("info", {})
    title = escape(str(info.get("title", "API")))
    auth = ("Every endpoint but <code>/health</code> and <code>/ready</code> needs an API key: "
            "<code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key: &lt;key&gt;</code>."
            if authenticated else "This server requires no API key.")
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{title} <small>{escape(str(info.get('version', '')))}</small></h1>",
             f"<p>{escape(str(info.get('description', '')))}</p><p>{auth} The OpenAPI document: "
             "<a href=\"openapi.json\">openapi.json</a>.</p>"]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            parts.append(f"<h2 id=\"{escape(method + path)}\"><code class=method>{escape(method.upper())}</code> "
                         f"<code>{escape(path)}</code></h2><p>{escape(str(operation.get('summary', '')))}</p>")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                parts.append(f"<p>Request body (JSON):</p><pre>{escape(json.dumps(body, indent=2))}</pre>")
            rows = "".join(f"<tr><td><code>{escape(str(status))}</code></td><td>{escape(str(answer.get('description', '')))}"
                           "</td></tr>" for status, answer in operation.get("responses", {}).items())
            parts.append(f"<table>{rows}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
