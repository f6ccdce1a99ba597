"""The HTTP feature server: online reads in Feast's shapes, pushes, health, readiness,
Prometheus metrics, JSON access logs and an OpenAPI document. The two POST routes are answered
from ASGI messages (`FeatureServer`: the hot path, measured by benchmarks/bench_serving.py), the
rest by a FastAPI app, which documents all of them. Built from a registry and an
online store; it never connects to the warehouse or runs dbt.

Every client mistake is a 4xx with {"error": "..."} naming it, whatever the body holds (its
size, nesting and Unicode are checked before it is parsed: body.py) and however slowly it comes
(a deadline for the body here, for the head in protocol.py); the online store failing is a
503; anything else is a 500 and is logged with its traceback (the fuzz tests find none).
/docs and /openapi.json need the same API key as the data; /docs is one page with no external
resources (docs_page.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..version import __version__
from ..errors import FeatureStoreError, RequestError
from ..online import OnlineStoreError
from .body import MAX_DEPTH, parse_body
from .docs_page import CSP, docs_page
from .serving import Checked, NotReady, OnlineServer

access_log = logging.getLogger("featurestore.access")
log = logging.getLogger("featurestore.server")

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
OPEN_PATHS = {"/health", "/ready"}  # probes need no key


@dataclass
class ServerSettings:
    body_timeout_seconds: float  # from the end of the head to the end of the body (ServeConfig.read_timeout_seconds)
    api_keys: tuple[str, ...] = ()  # empty: no authentication
    max_body_bytes: int = 1_048_576
    max_json_depth: int = MAX_DEPTH
    served_log: Any = None  # a ServedLog, or None
    pusher: Callable[[Any], dict] | None = None  # body -> result (see push.py), or None: push disabled
    ready_check: Callable[[], None] | None = None  # raises when the online store cannot serve (OnlineServer.ready)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("featurestore_requests", "HTTP requests by endpoint and status code",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("featurestore_request_seconds", "Request latency by endpoint and feature service",
                                 ["endpoint", "feature_service"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.store_errors = Counter("featurestore_online_store_errors", "Requests failed by the online store",
                                    ["endpoint"], registry=self.registry)
        self.entity_rows = Counter("featurestore_entity_rows", "Entity rows served", ["feature_service"],
                                   registry=self.registry)


REQUEST_SCHEMA = {
    "type": "object",
    "description": "Feast's feature-server request: `features` or `feature_service`, and `entities`.",
    "properties": {
        "features": {"type": "array", "items": {"type": "string"}, "example": ["customer_features:total_orders_30d"]},
        "feature_service": {"type": "string", "example": "churn_model"},
        "entities": {"type": "object", "additionalProperties": {"type": "array", "items": {}},
                     "example": {"customer_id": ["c1"], "store_id": ["s1"]}},
        "full_feature_names": {"type": "boolean", "default": False},
    },
    "required": ["entities"],
}
PUSH_SCHEMA = {
    "type": "object",
    "description": "Feast's push request: `push_source_name` (a feature view with `push: true`), the rows as "
                   "columns in `df`, and `to` (online, offline or online_and_offline).",
    "properties": {
        "push_source_name": {"type": "string"},
        "df": {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
        "to": {"type": "string", "enum": ["online", "offline", "online_and_offline"], "default": "online_and_offline"},
    },
    "required": ["push_source_name", "df"],
}
ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
RESPONSES = {"400": {"description": "A malformed request", **ERROR}, "401": {"description": "No or a wrong API key", **ERROR},
             "404": {"description": "An unknown feature, view or service", **ERROR},
             "408": {"description": "The body did not arrive within the read timeout", **ERROR},
             "413": {"description": "Too many entity rows or too large a body", **ERROR},
             "503": {"description": "The online store does not answer", **ERROR}}


def create_app(server: OnlineServer, settings: ServerSettings) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app):
        if settings.served_log is not None:
            settings.served_log.start()
        yield
        if settings.served_log is not None:
            settings.served_log.close()  # flushes what is buffered

    # FastAPI's own /docs loads Swagger UI from a CDN and, like its /openapi.json, needs no key: both are ours below
    app = FastAPI(title="featurestore feature server", version=__version__, lifespan=lifespan,
                  description="Online features in Feast's feature-server shapes; see the README's 'Feature server'.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.metrics = metrics

    async def handle(request: Request, endpoint: str) -> Response:
        # reached only when the FastAPI app is served by itself: FeatureServer answers these routes first
        answered = []

        async def keep(status: int, body: bytes) -> None:
            answered.append(Response(body, status_code=status, media_type="application/json"))

        await _handle(settings, metrics, request.scope, request.receive, endpoint, routes[endpoint], keep)
        return answered[0]

    def check_read(body: Any) -> tuple[Checked, str | None]:
        checked = server.check(body)
        return checked, checked.service

    def read_features(checked: Checked):
        response, served = server.answer(checked)
        if settings.served_log is not None:
            settings.served_log.record(served)
        return response, served.feature_service, served.rows

    @app.post("/get-online-features", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": REQUEST_SCHEMA}}}}, responses=RESPONSES, summary="Online feature values")
    async def get_online_features(request: Request):
        return await handle(request, "/get-online-features")

    def push(body: Any):
        if settings.pusher is None:
            raise RequestError("Push is not enabled on this server (start it with --push).", status=404)
        result = settings.pusher(body)
        return result, None, result.get("rows", 0)

    routes = {"/get-online-features": Route(read_features, check_read), "/push": Route(push)}

    @app.post("/push", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": PUSH_SCHEMA}}}}, responses=RESPONSES, summary="Push rows to a feature view")
    async def push_rows(request: Request):
        return await handle(request, "/push")

    @app.get("/health", summary="Liveness: the process answers")
    async def health():
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: the online store answers and holds the online views' tables",
             responses={"503": RESPONSES["503"]})
    async def ready():
        try:
            if settings.ready_check is not None:
                await run_in_threadpool(settings.ready_check)
        except NotReady as exc:  # the store answers, without the views' tables: not a store error
            return _error(503, f"Not ready: {exc}")
        except Exception as exc:  # any failure of the store means not ready
            metrics.store_errors.labels("/ready").inc()
            return _error(503, f"Not ready: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        return {"status": "ready"}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus(request: Request):
        if not _authorised(settings, request):
            return _unauthorised()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request):
        if not _authorised(settings, request):
            return _unauthorised()
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        if not _authorised(settings, request):
            return _unauthorised()
        return HTMLResponse(docs_page(app.openapi(), bool(settings.api_keys)), headers={"content-security-policy": CSP})

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return _error(404, f"No endpoint {request.method} {request.url.path}; see /docs.")

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc):
        return _error(405, f"{request.method} is not allowed on {request.url.path}; see /docs.")

    return FeatureServer(app, settings, metrics, routes)


class FeatureServer:
    """The ASGI app uvicorn runs. POST /get-online-features and POST /push, the requests that
    carry load, are answered here by `_handle` straight from ASGI messages, without FastAPI's
    routing, request objects and middleware stack (measured: benchmarks/bench_serving.py);
    everything else (probes, metrics, docs, 404s and 405s, the lifespan) goes to the FastAPI app,
    which also documents the two POST routes in its OpenAPI document."""

    def __init__(self, api: FastAPI, settings: ServerSettings, metrics: Metrics, routes: dict[str, "Route"]):
        self.api, self.settings, self.metrics, self.routes = api, settings, metrics, routes
        self.state = api.state

    async def __call__(self, scope, receive, send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            return await self.api(scope, receive, send)

        async def respond(status: int, body: bytes) -> None:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
            await send({"type": "http.response.body", "body": body})

        await _handle(self.settings, self.metrics, scope, receive, scope["path"], route, respond)


def _authorised(settings: ServerSettings, request: Request) -> bool:
    return _key_accepted(settings, request.url.path, request.headers.get)


def _key_accepted(settings: ServerSettings, path: str, header_of: Callable[[str], str | None]) -> bool:
    if not settings.api_keys or path in OPEN_PATHS:
        return True
    given = header_of("x-api-key") or ""
    header = header_of("authorization") or ""
    if header[:7].lower() == "bearer ":
        given = header[7:].strip()
    return any(hmac.compare_digest(given.encode(), key.encode()) for key in settings.api_keys)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def response_json(payload: Any) -> bytes:
    """A response's JSON: compact, UTF-8 (as Feast's server answers), by orjson (measured: 0.6
    µs for a 1-entity answer, 35 µs for 100, against json.dumps's 17 and 437 µs); a non-finite
    float is null (json_value makes every feature value so already). What orjson cannot write (an
    integer past 64 bits, as an echoed entity key may be; a lone surrogate) is written by
    json.dumps as before."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(payload, separators=(",", ":")).encode()


def _error_body(message: str) -> bytes:
    return response_json({"error": message})


UNAUTHORISED = "Missing or wrong API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`."


def _unauthorised() -> JSONResponse:
    return _error(401, UNAUTHORISED)


def _headers(scope) -> dict[str, str]:
    """A request's headers by lower-case name (a repeated header: its last value)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _read_json(settings: ServerSettings, headers: dict[str, str], receive) -> Any:
    """The body's JSON value; refused with 413 past max_body_bytes (before reading it when its
    length is declared, else as it streams), with 408 when it has not arrived within
    body_timeout_seconds, and with 400 when body.parse_body does not accept it."""
    limit = settings.max_body_bytes
    too_large = f"The body is larger than {limit:,} bytes."
    size = headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > limit):
        raise RequestError(too_large, status=413)

    async def read() -> bytes:
        chunks, received = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise RequestError(too_large, status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    try:
        raw = await _within(read(), settings.body_timeout_seconds)
    except asyncio.TimeoutError:
        raise RequestError(f"The body did not arrive within {settings.body_timeout_seconds:g} s of the request's head "
                           "(the server's read timeout).", status=408) from None
    except ClientDisconnect:
        raise RequestError("The client closed the connection before its body arrived.") from None
    return parse_body(raw, settings.max_json_depth)


if hasattr(asyncio, "timeout"):  # Python 3.11: a deadline on the running task, no task of its own
    async def _within(awaitable, seconds: float):
        async with asyncio.timeout(seconds):
            return await awaitable
else:
    async def _within(awaitable, seconds: float):
        return await asyncio.wait_for(awaitable, seconds)


_READS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="featurestore-request")  # anyio's default: 40 threads


@dataclass(frozen=True)
class Route:
    """A POST route `_handle` answers: `check` (optional) on the event loop, from the JSON body
    to what `work` takes and the feature service named (the client's mistakes found without a
    thread: those wait while the store is slow); `work` on a read thread, giving the payload,
    the feature service and the entity rows served."""

    work: Callable[[Any], tuple[Any, str | None, int]]
    check: Callable[[Any], tuple[Any, str | None]] | None = None


async def _handle(settings: ServerSettings, metrics: Metrics, scope, receive, endpoint: str, route: Route,
                  respond: Callable[[int, bytes], Awaitable[None]]) -> None:
    """Authorise, read the JSON body, check it (`route.check`), run `route.work` off the event
    loop, `respond` with the status and the JSON body; then count and log the request (after
    answering: the client does not wait for the bookkeeping; the latency counted is the
    handler's, up to the answer). A client's mistake (RequestError) answers the status its type
    carries."""
    started = time.perf_counter()
    service, rows, status = None, 0, 500
    try:
        headers = _headers(scope)
        if not _key_accepted(settings, endpoint, headers.get):
            status, answer = 401, _error_body(UNAUTHORISED)
        else:
            body = await _read_json(settings, headers, receive)
            if route.check is not None:
                body, service = route.check(body)
            payload, service, rows = await asyncio.get_running_loop().run_in_executor(_READS, route.work, body)
            after = payload.pop("_answer_after", None) if isinstance(payload, dict) else None
            if after is not None:  # a streaming push: answered once its events count for reads
                await asyncio.sleep(max(0.0, after - time.time()))
            status, answer = 200, response_json(payload)
    except RequestError as exc:
        status, answer = exc.status, _error_body(str(exc))
    except OnlineStoreError as exc:
        status, answer = 503, _error_body(f"The online store failed: {exc}")
        metrics.store_errors.labels(endpoint).inc()
    except FeatureStoreError as exc:  # a rule of ours the request broke
        status, answer = 400, _error_body(str(exc))
    except Exception:
        log.exception("unexpected error on %s", endpoint)
        answer = _error_body("Internal error; the server log has the details.")
    except BaseException:  # cancelled (the server stopping): not answered, counted as before
        _account(metrics, scope, endpoint, status, time.perf_counter() - started, service, rows)
        raise
    elapsed = time.perf_counter() - started
    try:
        await respond(status, answer)
    finally:
        _account(metrics, scope, endpoint, status, elapsed, service, rows)


def _account(metrics: Metrics, scope, endpoint: str, status: int, elapsed: float, service: str | None,
             rows: int) -> None:
    """A request counted (requests, latency, entity rows) and its JSON access line logged."""
    metrics.requests.labels(endpoint, str(status)).inc()
    metrics.latency.labels(endpoint, service or "").observe(elapsed)
    if rows:
        metrics.entity_rows.labels(service or "").inc(rows)
    if access_log.isEnabledFor(logging.INFO):
        client = scope.get("client")
        access_log.info(json.dumps({"ts": time.time(), "method": scope["method"], "path": endpoint, "status": status,
                                    "ms": round(elapsed * 1000, 3), "rows": rows, "feature_service": service,
                                    "client": client[0] if client else None}))
