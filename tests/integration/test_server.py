"""The feature server as a real process on a free port, with a real HTTP client: every endpoint,
every status, auth on and off (also for /docs and /openapi.json), bad requests (each a 4xx
naming the problem, hostile bodies too: nested 100,000 deep, lone surrogates), slow clients cut
off at the read timeout (real sockets), a request copied from Feast's documentation, pushes
(read back, racing a sync, surviving kill -9), the served-vector log and `audit --served`, the
OpenAPI schema fuzzed by schemathesis and both endpoints fuzzed with hostile JSON by hypothesis."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from conftest import project_env
from featurestore import FeatureStore
from featurestore.online.local import free_port
from jaffle_data import JaffleSize

BIN = Path(sys.executable).parent
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def served_project(built_demo, moto_server):
    """The demo, built and synced to moto, with a push view; its customers' live features pushed now."""
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": moto_server, "FEATURESTORE_TABLE_PREFIX": "serve_"}
    project = built_demo(JaffleSize(customers=60, stores=2, days=60), seed=11, name="serve", **env)
    store = FeatureStore(project, env=env)
    store.sync()
    return project, env


def customers(project: Path, count: int = 3) -> list[str]:
    import duckdb

    with duckdb.connect(str(project / "jaffle_shop.duckdb"), read_only=True) as con:
        return [row[0] for row in con.execute("select distinct customer_id from main.customer_features order by 1 limit ?",
                                              [count]).fetchall()]


@contextmanager
def server(project: Path, env: dict, *args: str, extra_env: dict | None = None):
    port = free_port()
    log = project.parent / f"server-{port}.log"  # a file: a pipe nobody reads would block the server's logging
    process = subprocess.Popen([str(BIN / "featurestore"), "serve", "-p", str(project), "--port", str(port), *args],
                               env={**os.environ, **env, **(extra_env or {})}, stdout=subprocess.DEVNULL,
                               stderr=open(log, "w"), text=True)
    process.log = log
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited {process.returncode}: {log.read_text()}")
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not start in 60 s")
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def column(response: dict, name: str) -> dict:
    return response["results"][response["metadata"]["feature_names"].index(name)]


def test_endpoints_statuses_and_a_request_from_feasts_documentation(served_project):
    project, env = served_project
    known = customers(project)
    with server(project, env, "--push") as (url, _):
        assert requests.get(url + "/health").json() == {"status": "ok"}
        assert requests.get(url + "/ready").json() == {"status": "ready"}
        # the shape of Feast's documentation example: features as view:feature, entities as columns
        request = {"features": ["customer_features:total_orders_30d", "customer_features:lifetime_value"],
                   "entities": {"customer_id": [known[0], "no-such-customer"]}}
        response = requests.post(url + "/get-online-features", json=request)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["metadata"]["feature_names"] == ["customer_id", "total_orders_30d", "lifetime_value"]
        assert column(body, "customer_id")["values"] == [known[0], "no-such-customer"]
        orders = column(body, "total_orders_30d")
        # the demo's data ends weeks ago and the view's TTL is 2d: served as outside its max age
        assert orders["statuses"] == ["OUTSIDE_MAX_AGE", "NOT_FOUND"] and orders["values"] == [None, None]
        assert orders["event_timestamps"][0] > "2000" and orders["event_timestamps"][1] == "1970-01-01T00:00:00Z"

        # a fresh push: PRESENT; a pushed NULL: NULL_VALUE
        pushed = {"push_source_name": "customer_live_features",
                  "df": {"customer_id": [known[0], known[1]], "event_at": [NOW.isoformat()] * 2,
                         "cart_items": [3, None], "cart_value": [41.5, 9.0]}}
        assert requests.post(url + "/push", json=pushed).status_code == 200
        live = requests.post(url + "/get-online-features", json={
            "features": ["customer_live_features:cart_items", "customer_live_features:cart_value"],
            "entities": {"customer_id": known[:2]}, "full_feature_names": True}).json()
        items = column(live, "customer_live_features__cart_items")
        assert items["values"] == [3, None] and items["statuses"] == ["PRESENT", "NULL_VALUE"]
        assert column(live, "customer_live_features__cart_value")["values"] == [41.5, 9.0]
        assert items["event_timestamps"][0].startswith(NOW.strftime("%Y-%m-%dT%H:%M:%S"))

        service = requests.post(url + "/get-online-features", json={
            "feature_service": "churn_model", "entities": {"customer_id": known[:1], "store_id": ["no-store"]}}).json()
        assert "orders_7d" in service["metadata"]["feature_names"]

        metrics = requests.get(url + "/metrics").text
        assert 'featurestore_requests_total{endpoint="/get-online-features",status="200"}' in metrics
        assert "featurestore_request_seconds_bucket" in metrics and 'feature_service="churn_model"' in metrics
        document = requests.get(url + "/openapi.json").json()
        assert {"/get-online-features", "/push", "/health", "/ready", "/metrics"} <= set(document["paths"])


def test_the_feast_response_setting_gives_feasts_order_and_null_status(served_project):
    project, env = served_project
    known = customers(project, 10)[8:]  # customers the other tests do not push
    pushed = {"push_source_name": "customer_live_features",
              "df": {"customer_id": known, "event_at": [NOW.isoformat()] * 2, "cart_items": [None, 2],
                     "cart_value": [5.0, 6.0]}}
    stores = ["no-such-store", "another"]
    # entity columns sent in another order than the views' (store_features first, so store_id first)
    request = {"features": ["store_features:orders_7d", "customer_live_features:cart_items"],
               "entities": {"customer_id": known, "store_id": stores}}
    answers = {}
    for style in ("featurestore", "feast"):
        with server(project, env, "--push", extra_env={"FEATURESTORE_RESPONSES": style}) as (url, _):
            assert requests.post(url + "/push", json=pushed).status_code == 200
            answers[style] = requests.post(url + "/get-online-features", json=request).json()
    ours, feast = answers["featurestore"], answers["feast"]
    assert ours["metadata"]["feature_names"] == ["store_id", "customer_id", "orders_7d", "cart_items"]
    assert feast["metadata"]["feature_names"] == ["customer_id", "store_id", "orders_7d", "cart_items"]  # as sent
    assert column(ours, "cart_items")["statuses"] == ["NULL_VALUE", "PRESENT"]
    assert column(feast, "cart_items")["statuses"] == ["PRESENT", "PRESENT"]  # a stored NULL is PRESENT in Feast 0.67
    assert column(ours, "cart_items")["values"] == column(feast, "cart_items")["values"] == [None, 2]
    assert column(feast, "customer_id")["values"] == known and column(feast, "store_id")["values"] == stores
    refused = subprocess.run([str(BIN / "featurestore"), "serve", "-p", str(project)], capture_output=True, text=True,
                             env={**os.environ, **env, "FEATURESTORE_RESPONSES": "feast067"}, timeout=60)
    assert refused.returncode == 1 and "FEATURESTORE_RESPONSES must be featurestore or feast" in refused.stderr


BAD_REQUESTS = [
    ("not json", b"{features", 400, "not JSON"),
    ("a list", [], 400, "JSON object"),
    ("neither", {"entities": {"customer_id": ["c"]}}, 400, "either `features`"),
    ("both", {"features": ["customer_features:total_orders_30d"], "feature_service": "churn_model",
              "entities": {"customer_id": ["c"]}}, 400, "not both"),
    ("features not a list", {"features": "customer_features:x", "entities": {"customer_id": ["c"]}}, 400, "non-empty list"),
    ("empty features", {"features": [], "entities": {"customer_id": ["c"]}}, 400, "non-empty list"),
    ("bad reference", {"features": ["total_orders_30d"], "entities": {"customer_id": ["c"]}}, 400, "view:feature"),
    ("unknown view", {"features": ["nope:x"], "entities": {"customer_id": ["c"]}}, 404, "nope"),
    ("unknown feature", {"features": ["customer_features:nope"], "entities": {"customer_id": ["c"]}}, 404, "nope"),
    ("unknown service", {"feature_service": "nope", "entities": {"customer_id": ["c"]}}, 404, "nope"),
    ("missing join key", {"features": ["customer_features:total_orders_30d"], "entities": {"store_id": ["s"]}}, 400,
     "'customer_id'"),
    ("unknown entity column", {"features": ["customer_features:total_orders_30d"],
                               "entities": {"customer_id": ["c"], "custmer": ["c"]}}, 400, "custmer"),
    ("wrong key type", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": [42]}}, 400,
     "string column"),
    ("a list as key", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": [["c"]]}}, 400,
     "list values"),
    ("unequal columns", {"features": ["store_features:orders_7d", "customer_features:total_orders_30d"],
                         "entities": {"customer_id": ["c", "d"], "store_id": ["s"]}}, 400, "same number"),
    ("entities not an object", {"features": ["customer_features:total_orders_30d"], "entities": ["c"]}, 400, "`entities`"),
    ("no rows", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": []}}, 400, "no rows"),
    ("too many rows", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": ["c"] * 51}},
     413, "limit is 50"),
    ("unknown field", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": ["c"]},
                       "projct": "x"}, 400, "projct"),
    ("full_feature_names not boolean", {"features": ["customer_features:total_orders_30d"],
                                        "entities": {"customer_id": ["c"]}, "full_feature_names": "yes"}, 400, "true or false"),
    ("null body", None, 400, "JSON object"),
    ("a bool as key", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": [True]}}, 400,
     "bool values"),
    ("key too long", {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": ["x" * 3000]}},
     400, "2,048-byte"),
]


READ = b'{"features": ["customer_features:total_orders_30d"], '
PUSH = b'{"push_source_name": "customer_live_features", '
DEEP = b"[" * 100_000 + b"]" * 100_000
# bodies that answered 500 (RecursionError, UnicodeEncodeError), or 4xx only by luck, before the checks in server/body.py
HOSTILE = [
    ("/get-online-features", DEEP, "The body nests arrays and objects more than 32 deep"),
    ("/get-online-features", READ + b'"entities": {"customer_id": ' + DEEP + b"}}", "more than 32 deep"),
    ("/get-online-features", READ + b'"entities": {"customer_id": ["\\ud800"]}}',
     "Invalid Unicode in entities.customer_id[0]: a lone surrogate \\ud800"),
    ("/get-online-features", READ + b'"entities": {"customer_id": ["c"], "\\udfff": ["c"]}}',
     "Invalid Unicode in a key of entities: a lone surrogate \\udfff"),
    ("/get-online-features", READ + b'"entities": {"customer_id": ["\xed\xa0\x80"]}}', "The body is not valid UTF-8"),
    ("/get-online-features", READ + b'"entities": {"customer_id": [' + b"9" * 5000 + b"]}}", "thousands of digits"),
    ("/push", PUSH + b'"df": ' + DEEP + b"}", "more than 32 deep"),
    ("/push", PUSH + b'"df": {"customer_id": ["fuzz-\\ud800"], "event_at": ["2026-01-01T00:00:00"]}}',
     "Invalid Unicode in df.customer_id[0]: a lone surrogate \\ud800"),
    ("/push", PUSH + b'"df": {"customer_id": ["fuzz-1"], "event_at": ["2026-01-01T00:00:00"], "cart_items": [1], '
     b'"\\ud800": [1]}}', "Invalid Unicode in a key of df"),
]


def test_bad_requests_get_a_4xx_naming_the_problem(served_project):
    project, env = served_project
    with server(project, env, "--max-entities", "50", "--push") as (url, process):
        for name, body, status, message in BAD_REQUESTS:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = requests.post(url + "/get-online-features", data=data, headers={"content-type": "application/json"})
            assert response.status_code == status, (name, response.status_code, response.text)
            assert message in response.json()["error"], (name, response.text)
        pushes = [({"push_source_name": "customer_features", "df": {"customer_id": ["c"]}}, 400, "does not accept pushes"),
                  ({"push_source_name": "customer_live_features", "df": {"customer_id": ["c"]}}, 400, "'event_at' is required"),
                  ({"push_source_name": "customer_live_features", "df": {"customer_id": ["c"], "event_at": ["soon"]}}, 400,
                   "ISO 8601"),
                  ({"push_source_name": "customer_live_features", "df": {"customer_id": ["c"], "event_at": [NOW.isoformat()],
                                                                         "cart_items": ["many"]}}, 400, "cart_items"),
                  ({"push_source_name": "customer_live_features", "df": {"customer_id": ["c"], "event_at": [NOW.isoformat()],
                                                                         "colour": ["red"]}}, 400, "colour")]
        for body, status, message in pushes:
            response = requests.post(url + "/push", json=body)
            assert response.status_code == status and message in response.json()["error"], response.text
        assert requests.get(url + "/nowhere").status_code == 404
        assert requests.get(url + "/get-online-features").status_code == 405
        big = b'{"entities": {"customer_id": ["' + b"x" * 2_000_000 + b'"]}}'
        assert requests.post(url + "/get-online-features", data=big).status_code == 413
        # the same without a declared length (chunked): refused as it streams past the limit
        chunked = requests.post(url + "/get-online-features", data=iter([b"[" + b" " * 65_536] * 40))
        assert chunked.status_code == 413 and "larger than 1,048,576 bytes" in chunked.json()["error"]
        for endpoint, body, message in HOSTILE:
            response = requests.post(url + endpoint, data=body, headers={"content-type": "application/json"})
            assert response.status_code == 400, (endpoint, body[:80], response.status_code, response.text[:300])
            assert message in response.json()["error"], (endpoint, body[:80], response.text[:300])
        assert requests.get(url + "/health").status_code == 200  # and the server is fine
    log = process.log.read_text()
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]
    assert '"status": 500' not in log


def test_api_keys_when_set_and_required_off_loopback(served_project, tmp_path):
    project, env = served_project
    keys = tmp_path / "keys"
    keys.write_text("# one per line\nsecret-one\n")
    request = {"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": ["c"]}}
    with server(project, env, "--api-keys-file", str(keys), extra_env={"FEATURESTORE_API_KEYS": "secret-two"}) as (url, process):
        assert requests.post(url + "/get-online-features", json=request).status_code == 401
        assert requests.post(url + "/get-online-features", json=request, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.post(url + "/get-online-features", json=request,
                             headers={"Authorization": "Bearer secret-one"}).status_code == 200
        assert requests.post(url + "/get-online-features", json=request, headers={"X-API-Key": "secret-two"}).status_code == 200
        assert requests.get(url + "/metrics").status_code == 401
        assert requests.get(url + "/health").status_code == 200 and requests.get(url + "/ready").status_code == 200
        # the API's description is behind the same key as the data
        for path in ("/docs", "/openapi.json"):
            refused = requests.get(url + path)
            assert refused.status_code == 401 and "API key" in refused.json()["error"], (path, refused.text[:300])
            assert requests.get(url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(url + "/redoc").status_code == 404
        document = requests.get(url + "/openapi.json", headers={"X-API-Key": "secret-two"})
        assert document.status_code == 200 and "/get-online-features" in document.json()["paths"]
        page = requests.get(url + "/docs", headers={"Authorization": "Bearer secret-one"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert_self_contained(page)
        assert "/get-online-features" in page.text and "/push" in page.text and "X-API-Key" in page.text
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        logs = process.log.read_text()
        assert '"status": 401' in logs and "secret-one" not in logs and "secret-two" not in logs
    refused = subprocess.run([str(BIN / "featurestore"), "serve", "-p", str(project), "--host", "0.0.0.0"],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "API key" in refused.stderr and "Traceback" not in refused.stderr


def assert_self_contained(page: requests.Response) -> None:
    """A page that makes no request to another host: no script at all, every reference relative,
    and a Content-Security-Policy that forbids loading anything from anywhere."""
    html = page.text
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    references = re.findall(r"""(?:src|href|action|srcset)\s*=\s*["']?([^"'\s>]*)""", html, re.I)
    assert all(not re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", reference, re.I) for reference in references), references
    assert "http://" not in html and "https://" not in html
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def read_until_closed(connection: socket.socket, outer_bound: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took; fails
    past outer_bound seconds (generous: the server must close long before)."""
    started, received = time.monotonic(), b""
    connection.settimeout(outer_bound)
    while True:
        try:
            chunk = connection.recv(65536)
        except socket.timeout:
            raise AssertionError(f"the server held the connection open for {outer_bound} s; got {received[:200]!r}")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return received, time.monotonic() - started
        received += chunk
        if time.monotonic() - started > outer_bound:
            raise AssertionError(f"the server kept the connection open past {outer_bound} s: {received[:200]!r}")


def test_slow_clients_are_cut_off_at_the_read_timeout(served_project):
    """Slowloris: clients that send part of a request head (or a body) and stall. Each is answered
    408 and closed once the read timeout has passed (not before), while others are served. Two
    worker processes: the deadline holds in uvicorn's workers, as in production. A head past
    16 KiB is refused."""
    project, env = served_project
    with server(project, env, "--read-timeout", "1", "--workers", "2") as (url, _):
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        opened = time.monotonic()
        slow = [socket.create_connection(address) for _ in range(3)]
        for connection in slow:
            connection.sendall(b"GET /health HT")  # a request line, never finished
        silent = socket.create_connection(address)  # connects and sends nothing
        # one whole request, then the next one's head started and never finished (keep-alive)
        stalled_after_one = socket.create_connection(address)
        stalled_after_one.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /hea")
        # a whole head, then a body that stops short of its length
        slow_body = socket.create_connection(address)
        slow_body.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                          b"content-length: 100\r\n\r\n{\"features\"")
        assert requests.get(url + "/health", timeout=30).status_code == 200  # served meanwhile

        for connection in slow:
            answer, _ = read_until_closed(connection, outer_bound=60)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b"did not arrive within 1 s" in answer and b"request's head" in answer, answer
            assert time.monotonic() - opened >= 0.95  # closed by the timeout, not refused at once
        assert read_until_closed(silent, outer_bound=60)[0] == b""
        answer, _ = read_until_closed(stalled_after_one, outer_bound=60)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in answer, answer
        answer, _ = read_until_closed(slow_body, outer_bound=60)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"The body did not arrive within 1 s" in answer, answer
        for connection in [*slow, silent, stalled_after_one, slow_body]:
            connection.close()
        assert requests.get(url + "/health", timeout=30).status_code == 200
        # a head past 16 KiB is answered 400 and closed, not buffered on without end; one within it is served
        large = socket.create_connection(address)
        large.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Large: " + b"a" * (17 * 1024) + b"\r\n\r\n")
        answer, _ = read_until_closed(large, outer_bound=60)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"].startswith("The request's head"), answer
        large.close()
        # what httptools cannot parse is answered 400 in JSON, as every other error (uvicorn's was text/plain)
        garbled = socket.create_connection(address)
        garbled.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        answer, _ = read_until_closed(garbled, outer_bound=60)
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head, answer
        assert "not valid HTTP/1.1" in json.loads(body)["error"], answer
        garbled.close()
        assert requests.get(url + "/health", headers={"X-Large": "a" * (15 * 1024)}, timeout=30).status_code == 200


@pytest.mark.parametrize("start", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ",  # a header of the head
    b"POST /get-online-features HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"  # a trailer
    b"transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Endless: ",
], ids=["head", "trailer"])
def test_a_head_growing_without_end_is_cut_off_before_the_read_timeout(served_project, start):
    """httptools buffers a header (of the head, or a chunked body's trailers) until it is whole:
    one header value streamed without a line end is counted as it arrives and the connection
    closed past the bound (answered 400, or closed unanswered while the request is being
    answered, or reset while the client is still sending), long before the read timeout."""
    project, env = served_project
    with server(project, env, "--read-timeout", "60") as (url, _):
        endless = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        endless.sendall(start)
        sent = 0
        try:
            for _ in range(64):  # up to 4 MiB, never a line end
                endless.sendall(b"a" * 65536)
                sent += 65536
        except OSError:  # the server closed the connection: sending fails (reset or broken pipe)
            pass
        answer, _ = read_until_closed(endless, outer_bound=30)  # the read timeout is 60 s
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        if answer:
            assert b"larger than 16384 bytes" in answer, answer
        endless.close()
        assert requests.get(url + "/health", timeout=30).status_code == 200


def test_a_push_survives_kill_9_and_pushes_and_syncs_race_to_the_newest_row(served_project):
    project, env = served_project
    known = customers(project, 5)
    store = FeatureStore(project, env=env)
    with server(project, env, "--push") as (url, process):
        newer = {"push_source_name": "customer_live_features",
                 "df": {"customer_id": known, "event_at": [(NOW + timedelta(minutes=5)).isoformat()] * 5,
                        "cart_items": [7] * 5, "cart_value": [70.0] * 5}}
        assert requests.post(url + "/push", json=newer).status_code == 200
        process.kill()  # kill -9 right after the acknowledgement
        process.wait()
    landed = sorted((project / "landing" / "customer_live_features").glob("*.parquet"))
    assert landed and not list((project / "landing" / "customer_live_features").glob(".*.tmp"))
    # the next dbt build reads the pushed rows into the snapshot table
    project_env(project, **env).run("build", "--select", "customer_live_features", "--quiet")
    with store.connect() as warehouse:
        rows = warehouse.fetch_all("select customer_id, cart_items from main.customer_live_features where cart_items = 7")
    assert {row[0] for row in rows} == set(known)

    # an older push racing a full sync of the same view (which holds the newer rows): newest wins
    older = {"push_source_name": "customer_live_features",
             "df": {"customer_id": known, "event_at": [NOW.isoformat()] * 5, "cart_items": [1] * 5, "cart_value": [1.0] * 5}}
    with server(project, env, "--push") as (url, _):
        racing = threading.Thread(target=lambda: store.sync(["customer_live_features"], full=True, force=True))
        racing.start()
        for _ in range(5):
            assert requests.post(url + "/push", json=older).status_code == 200
        racing.join()
        live = requests.post(url + "/get-online-features", json={
            "features": ["customer_live_features:cart_items"], "entities": {"customer_id": known}}).json()
        assert column(live, "cart_items")["values"] == [7] * 5

        # and a newer push racing a forced full sync of the older rows: the push wins
        newest = {"push_source_name": "customer_live_features",
                  "df": {"customer_id": known, "event_at": [(NOW + timedelta(minutes=10)).isoformat()] * 5,
                         "cart_items": [9] * 5, "cart_value": [90.0] * 5}}
        racing = threading.Thread(target=lambda: store.sync(["customer_live_features"], full=True, force=True))
        racing.start()
        assert requests.post(url + "/push", json=newest).status_code == 200
        racing.join()
        store.sync(["customer_live_features"], full=True, force=True)  # and once more after it
        live = requests.post(url + "/get-online-features", json={
            "features": ["customer_live_features:cart_items"], "entities": {"customer_id": known}}).json()
    assert column(live, "cart_items")["values"] == [9] * 5


LIVE = "customer_live_features"


def landed(project: Path) -> set[str]:
    return {path.name for path in (project / "landing" / LIVE).glob("*.parquet")}


def unpushed_customers(project: Path, count: int, skip: int) -> list[str]:
    """Customers no push has reached (not the seed's either), from the other end of those the
    other tests push."""
    import duckdb

    with duckdb.connect(str(project / "jaffle_shop.duckdb"), read_only=True) as con:
        return [row[0] for row in con.execute(
            f"select distinct customer_id from main.customer_features where customer_id not in "
            f"(select customer_id from main.{LIVE}) order by 1 desc limit ? offset ?", [count, skip]).fetchall()]


def snapshot_rows(project: Path, keys: list[str]) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(project / "jaffle_shop.duckdb"), read_only=True) as con:
        return con.execute(f"select customer_id, cart_items, cart_value from main.{LIVE} where customer_id in "
                           f"({', '.join('?' for _ in keys)}) and valid_to is null order by 1", keys).fetchall()


def test_a_refused_push_writes_nothing_and_landing_snapshot_and_online_agree(served_project):
    """Each push the online store or the rules refuse is a 400 naming the culprit, and writes
    nothing anywhere: after the next build the snapshot, the landing area and the online items
    hold the accepted push only."""
    project, env = served_project
    good_key, *bad = unpushed_customers(project, 8, 0)
    at = (NOW - timedelta(minutes=3)).isoformat()

    def body(key, **columns):
        return {"push_source_name": LIVE, "df": {"customer_id": [key], "event_at": [at], "cart_items": [2],
                                                 "cart_value": [5.0], **{name: [value] for name, value in columns.items()}}}

    repeated = body(bad[6])
    repeated["df"] = {name: values * 2 for name, values in repeated["df"].items()}
    cases = {
        "NaN": (body(bad[0], cart_value=float("nan")), ["holds NaN, which is not JSON"]),  # refused as JSON
        "Infinity": (body(bad[1], cart_value=float("inf")), ["holds Infinity, which is not JSON"]),
        "a 500 KB key": (body(bad[2] + "k" * 500_000), ["entity key", "2,048"]),
        "a 900 KB key": (body(bad[2] + "k" * 900_000), ["entity key", "2,048"]),
        "a client's pushed_at": (body(bad[3], pushed_at="2099-01-01T00:00:00"), ["'pushed_at'", "server"]),
        "1.5 items": (body(bad[4], cart_items=1.5), ["cart_items", "bigint", "1.5"]),
        "one key and event time twice": (repeated, ["Rows 0 and 1", bad[6], "event_at"]),
    }
    before = landed(project)
    with server(project, env, "--push") as (url, _):
        for case, (request, named) in cases.items():
            answer = requests.post(url + "/push", data=json.dumps(request), headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, (case, answer.status_code, answer.text[:300])
            message = answer.json()["error"]
            assert all(part in message for part in named), (case, message[:500])
            assert landed(project) == before, case  # nothing landed
        assert requests.post(url + "/push", json=body(good_key, cart_items=3)).status_code == 200
        assert len(landed(project) - before) == 1
        online = requests.post(url + "/get-online-features", json={
            "features": [f"{LIVE}:cart_items", f"{LIVE}:cart_value"], "entities": {"customer_id": [good_key, *bad]}}).json()
    from featurestore.errors import RequestError

    store, after = FeatureStore(project, env=env), landed(project)
    for row, named in (({"cart_value": float("nan")}, "cart_value"), ({"pushed_at": "2099-01-01T00:00:00"}, "pushed_at"),
                       ({"cart_items": 1.5}, "cart_items")):  # the SDK's push: the same rules
        with pytest.raises(RequestError, match=named):
            store.push(LIVE, [{"customer_id": bad[5], "event_at": at, "cart_items": 2, "cart_value": 5.0, **row}])
    assert landed(project) == after
    project_env(project, **env).run("build", "--select", LIVE, "--quiet")
    assert snapshot_rows(project, [good_key, *bad]) == [(good_key, 3, 5.0)]
    assert column(online, "cart_items")["values"] == [3] + [None] * len(bad)
    assert column(online, "cart_items")["statuses"] == ["PRESENT"] + ["NOT_FOUND"] * len(bad)
    assert column(online, "cart_value")["values"] == [5.0] + [None] * len(bad)


def test_a_row_created_in_2099_is_set_aside_and_the_watermarks_stay_at_the_clock(served_project):
    """A landed row stamped in 2099 (a file another writer left; a push may not carry the time) is
    set aside with its reason and reported by the build; a push after it still reaches the
    snapshot at the next build, and the sync's watermark stays at its clock."""
    import duckdb
    import pyarrow as pa

    from featurestore.landing import write_file

    project, env = served_project
    future_key, later_key = unpushed_customers(project, 2, 8)
    store = FeatureStore(project, env=env)
    planted = write_file(project / "landing" / LIVE, "other-writer", pa.table({
        "customer_id": [future_key], "event_at": pa.array([NOW.replace(tzinfo=None)], pa.timestamp("us")),
        "pushed_at": pa.array([datetime(2099, 1, 1)], pa.timestamp("us")),
        "cart_items": pa.array([4], pa.int64()), "cart_value": [44.0]}))
    dbt = [str(BIN / "dbt"), "build", "--select", LIVE]
    dbt_env = {**os.environ, **project_env(project, **env).variables(), "DBT_USE_COLORS": "false"}
    try:
        built = subprocess.run(dbt, cwd=project, env=dbt_env, capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stdout[-2000:]
        assert "1 row(s) have a created timestamp 'pushed_at' after the build's clock" in built.stdout, built.stdout[-2000:]
        assert "2099-01-01" in built.stdout and f"{LIVE}__rejected" in built.stdout
        with duckdb.connect(str(project / "jaffle_shop.duckdb"), read_only=True) as con:
            assert con.execute(f"select customer_id, _fs_reason from main.{LIVE}__rejected").fetchall() == [
                (future_key, "created timestamp after the build clock")]
            assert con.execute(f"select max(pushed_at) < now() at time zone 'UTC' from main.{LIVE}").fetchone() == (True,)
        store.push(LIVE, [{"customer_id": later_key, "event_at": NOW.isoformat(), "cart_items": 6, "cart_value": 60.0}])
        again = subprocess.run(dbt, cwd=project, env=dbt_env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0 and "after the build's clock" in again.stdout, again.stdout[-2000:]
        assert snapshot_rows(project, [future_key, later_key]) == [(later_key, 6, 60.0)]
        with duckdb.connect(str(project / "jaffle_shop.duckdb"), read_only=True) as con:  # set aside once, not per build
            assert con.execute(f"select count(*) from main.{LIVE}__rejected").fetchone() == (1,)
        synced = store.sync([LIVE])[0]
        assert synced.watermark_after is None or synced.watermark_after <= datetime.now(timezone.utc).replace(tzinfo=None).isoformat()
        read = store.get_online_features([f"{LIVE}:cart_items"], entity_rows=[{"customer_id": future_key}]).to_dict()
        assert read["cart_items"] == [None]
    finally:
        planted.unlink()
        project_env(project, **env).run("build", "--select", LIVE, "--full-refresh", "--quiet")


def test_served_vectors_are_audited_point_in_time(served_project):
    import boto3

    project, env = served_project
    known = customers(project, 8)[6:]  # customers the other tests do not push
    store = FeatureStore(project, env=env)
    served = project / "landing" / "_served"
    with server(project, env, "--push", "--log-served", "1", "--log-flush-seconds", "0.2") as (url, _):
        pushed = {"push_source_name": "customer_live_features",
                  "df": {"customer_id": known, "event_at": [(NOW - timedelta(hours=1)).isoformat()] * 2,
                         "cart_items": [2, 4], "cart_value": [20.0, 40.0]}}
        assert requests.post(url + "/push", json=pushed).status_code == 200
    project_env(project, **env).run("build", "--select", "customer_live_features", "--quiet")
    for path in served.glob("*.parquet"):
        path.unlink()
    with server(project, env, "--log-served", "1", "--log-flush-seconds", "0.2") as (url, _):
        request = {"features": ["customer_live_features:cart_items"], "entities": {"customer_id": known}}
        assert requests.post(url + "/get-online-features", json=request).status_code == 200
        time.sleep(0.5)
    clean = subprocess.run([str(BIN / "featurestore"), "audit", "--served", "-p", str(project), "--json"],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["features"]["customer_live_features:cart_items"]["match_rate"] == 1.0
    assert report["features"]["customer_live_features:cart_items"]["staleness_seconds"]["stale_rows"] == 0

    # a value planted in DynamoDB behind the store's back is served, logged, and caught
    client = boto3.client("dynamodb", endpoint_url=env["FEATURESTORE_DYNAMODB_ENDPOINT"], region_name=store.online_config.region,
                          aws_access_key_id="test", aws_secret_access_key="test")
    table = store.online_config.table_name("customer_live_features")
    key = next(item for item in client.scan(TableName=table)["Items"] if item["customer_id"]["S"] == known[0])
    key["cart_items"] = {"N": "999"}
    client.put_item(TableName=table, Item=key)
    with server(project, env, "--log-served", "1", "--log-flush-seconds", "0.2") as (url, _):
        assert requests.post(url + "/get-online-features", json=request).status_code == 200
    planted = subprocess.run([str(BIN / "featurestore"), "audit", "--served", "-p", str(project), "--json"],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert planted.returncode == 1, planted.stdout + planted.stderr
    result = json.loads(planted.stdout)["features"]["customer_live_features:cart_items"]
    assert result["match_rate"] == 0.75
    assert result["mismatches"][0]["served"] == 999 and result["mismatches"][0]["expected"] == 2


def test_fuzzing_the_openapi_schema_finds_no_server_error(served_project, tmp_path):
    schemathesis = BIN / "schemathesis"
    if not schemathesis.exists():
        pytest.fail("schemathesis is not installed (pip install -e '.[dev]')")
    project, env = served_project
    with server(project, env, "--push", "--max-entities", "20") as (url, _):
        result = subprocess.run([str(schemathesis), "run", url + "/openapi.json", "--checks", "not_a_server_error",
                                 "--max-examples", "60", "--seed", "1", "--suppress-health-check", "all"],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_fuzzing_both_endpoints_with_hostile_json_finds_no_server_error(served_project, tmp_path):
    """Hypothesis writes bodies for /get-online-features and /push — near-valid requests with
    wrong types, lone surrogates, huge and non-finite numbers, deep nesting, bytes that are no
    JSON — and a real server answers each: never a 5xx, every 4xx a JSON error. The server runs
    on a copy of the project (its own landing area) and pushes only keys no other test reads."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    project, env = served_project
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns("landing", "logs"))
    text = st.one_of(st.text(max_size=12), st.sampled_from(["\ud800", "a\udfff", "\udbff\udc00", "\x00", "é😀"]))
    numbers = st.one_of(st.integers(), st.integers(min_value=10**30, max_value=10**400), st.floats(),
                        st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 2**63, -(2**63) - 1]))
    scalars = st.one_of(st.none(), st.booleans(), numbers, text)
    anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                            max_leaves=8)
    fuzz_keys = st.one_of(text.map(lambda value: "fuzz-" + value), numbers, st.none(), anything)
    times = st.one_of(st.sampled_from([NOW.isoformat(), "2099-01-01T00:00:00Z", "0001-01-01", "soon", ""]), numbers)
    references = st.sampled_from(["customer_features:total_orders_30d", "customer_live_features:cart_items",
                                  "store_features:orders_7d", "cart_events:cart_adds_1h", "nope:x", ":", "a:b:c"])
    key_lists = st.lists(fuzz_keys, min_size=1, max_size=3)
    near_valid_read = st.fixed_dictionaries(
        {"entities": st.fixed_dictionaries({"customer_id": key_lists}, optional={"store_id": key_lists, "other": key_lists})},
        optional={"full_feature_names": st.booleans() | anything}).flatmap(
        lambda body: st.one_of(st.lists(references, min_size=1, max_size=3).map(lambda refs: {**body, "features": refs}),
                               st.sampled_from(["churn_model", "nope"]).map(lambda name: {**body, "feature_service": name})))
    free_read = st.fixed_dictionaries({"entities": st.one_of(
        st.dictionaries(st.sampled_from(["customer_id", "store_id"]) | text, st.lists(fuzz_keys, max_size=4), max_size=2),
        anything)}, optional={"features": st.one_of(st.lists(references | text, max_size=3), anything),
                              "feature_service": st.sampled_from(["churn_model", "nope"]) | anything,
                              "full_feature_names": st.booleans() | anything})
    read = near_valid_read | free_read
    columns = {"customer_id": st.lists(fuzz_keys, min_size=1, max_size=3), "event_at": st.lists(times, min_size=1, max_size=3),
               "cart_items": st.lists(numbers | scalars, min_size=1, max_size=3),
               "cart_value": st.lists(numbers | scalars, min_size=1, max_size=3),
               "pushed_at": st.lists(times, min_size=1, max_size=3), "event_id": st.lists(scalars, min_size=1, max_size=3),
               "amount": st.lists(numbers, min_size=1, max_size=3)}
    required = {"customer_id": st.lists(text.map(lambda value: "fuzz-" + value), min_size=2, max_size=2),
                "event_at": st.lists(times, min_size=2, max_size=2)}
    near_valid_push = st.fixed_dictionaries({
        "push_source_name": st.sampled_from(["customer_live_features", "cart_events"]),
        "df": st.fixed_dictionaries(required, optional={name: strategy.map(lambda values: (values * 2)[:2])
                                                        for name, strategy in columns.items() if name not in required})})
    free_push = st.fixed_dictionaries({"push_source_name": st.sampled_from(["customer_live_features", "cart_events",
                                                                           "customer_features", "nope"]) | anything,
                                       "df": st.one_of(st.fixed_dictionaries({}, optional=columns), anything)},
                                      optional={"to": st.sampled_from(["online", "offline", "online_and_offline", "nowhere"])})
    push = near_valid_push | free_push

    def encoded(value) -> bytes:
        return json.dumps(value, allow_nan=True).encode()  # ensure_ascii: a lone surrogate goes as its escape

    deep = st.integers(min_value=33, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth)
    def bodies(structured):
        return st.one_of(structured.map(encoded), anything.map(encoded), st.binary(max_size=64),
                         st.tuples(structured.map(encoded), deep).map(lambda pair: pair[0][:-1] + b', "x": ' + pair[1] + b"}"))

    seen: dict[int, int] = {}
    with server(copy, env, "--push", "--max-entities", "20") as (url, process), requests.Session() as session:
        for endpoint, structured in (("/get-online-features", read), ("/push", push)):
            @settings(max_examples=300, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(body=bodies(structured))
            def answered_without_a_server_error(body):
                response = session.post(url + endpoint, data=body, headers={"content-type": "application/json"},
                                        timeout=60)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                assert response.status_code < 500, (endpoint, body[:300], response.status_code, response.text[:500])
                if response.status_code >= 400:
                    assert isinstance(response.json().get("error"), str), response.text[:300]

            answered_without_a_server_error()
    log = process.log.read_text()
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]
    assert seen.get(200, 0) > 10 and seen.get(404, 0) > 0 and seen.get(400, 0) > 100, seen  # it reached the reads


def test_a_paused_store_answers_503_within_the_timeout_and_mistakes_still_404(served_project, tmp_path):
    """The trial's outage: the store stops answering (SIGSTOP) under 50 concurrent requests, more
    than the server's 40 read threads. Each is a 503 within FEATURESTORE_ONLINE_TIMEOUT of its
    arrival (not one after another, 20 s and more each, as when the sockets' own timeout ruled
    and the readers of an expired pointer took turns; nor a second timeout for those that waited
    for a thread), and a request for an unknown feature, sent after them, is a 404 before any of
    them is answered: it needs the registry, not a read thread (and so does a key of the wrong type)."""
    from featurestore.online.local import LocalDynamoDB

    project, env = served_project
    moto = LocalDynamoDB(tmp_path / "moto", free_port())  # its own: pausing the session's would stall other tests
    outage_env = {**env, "FEATURESTORE_DYNAMODB_ENDPOINT": moto.start(), "FEATURESTORE_ONLINE_TIMEOUT": "5"}
    pid = moto.record()["pid"]
    try:
        FeatureStore(project, env=outage_env).sync(["customer_features"])
        known = customers(project, 1)[0]
        body = json.dumps({"features": ["customer_features:total_orders_30d"], "entities": {"customer_id": [known]}})
        with server(project, outage_env) as (url, _):
            assert requests.post(url + "/get-online-features", data=body).status_code == 200
            port = int(url.rsplit(":", 1)[1])
            answers: list[tuple[str, int, float]] = []
            lock = threading.Lock()

            def ask(name: str, payload: str, sent: threading.Event) -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
                    data = payload.encode()
                    connection.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                       b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
                    sent.set()
                    status = int(connection.makefile("rb").readline().split()[1])
                with lock:
                    answers.append((name, status, time.monotonic()))

            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                threads = []
                for index in range(50):
                    sent = threading.Event()
                    threads.append(threading.Thread(target=ask, args=(f"read{index}", body, sent)))
                    threads[-1].start()
                    assert sent.wait(30)
                mistakes = {"unknown feature": {"features": ["customer_features:no_such_feature"],
                                                "entities": {"customer_id": [known]}},
                            "key of the wrong type": {"features": ["customer_features:total_orders_30d"],
                                                      "entities": {"customer_id": [known, 42]}}}
                for name, mistake in mistakes.items():
                    sent = threading.Event()
                    threads.append(threading.Thread(target=ask, args=(name, json.dumps(mistake), sent)))
                    threads[-1].start()
                for thread in threads:
                    thread.join(60)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert len(answers) == 52
            assert sorted(answer[:2] for answer in answers[:2]) == [("key of the wrong type", 400),
                                                                      ("unknown feature", 404)], answers[:3]
            reads = [answer for answer in answers if answer[0].startswith("read")]
            assert {status for _, status, _ in reads} == {503}
            assert max(at for _, _, at in reads) - started < 5 + 5, answers  # the timeout, and a loaded machine's slack
            assert requests.post(url + "/get-online-features", data=body).status_code == 200  # resumed: served again
    finally:
        os.kill(pid, signal.SIGCONT)
        moto.stop()


def test_ready_only_while_the_store_holds_the_online_views_tables(served_project, tmp_path):
    """/ready is 503 naming the views sync fills while the store holds none of their tables —
    before the first sync, and after the store restarts empty (every key would be NOT_FOUND) —
    without counting it as a store error; 200 once one is synced (a view added since the last
    sync does not take the server out); a store that does not answer is a 503 and a store error."""
    from featurestore.online.local import LocalDynamoDB

    project, env = served_project
    port = free_port()
    moto = LocalDynamoDB(tmp_path / "moto", port)
    empty_env = {**env, "FEATURESTORE_DYNAMODB_ENDPOINT": moto.start(), "FEATURESTORE_ONLINE_TIMEOUT": "5"}

    def store_errors(url: str) -> str:
        return "\n".join(line for line in requests.get(url + "/metrics").text.splitlines()
                         if line.startswith("featurestore_online_store_errors_total") and "/ready" in line)

    try:
        with server(project, empty_env) as (url, _):
            not_ready = requests.get(url + "/ready")
            assert not_ready.status_code == 503
            message = not_ready.json()["error"]
            assert "holds no table of the online views" in message and "run `featurestore sync`" in message, message
            assert "customer_features" in message and "store_features" in message, message
            assert "cart_events" not in message  # a streaming view: its events, not a table, are its state
            assert "customer_live_features" not in message  # push: true: its first push makes its table
            assert store_errors(url) == ""
            FeatureStore(project, env=empty_env).sync(["store_features"])
            assert requests.get(url + "/ready").json() == {"status": "ready"}  # customer_features: not yet
            moto.stop()
            down = requests.get(url + "/ready")
            assert down.status_code == 503 and "Could not connect" in down.json()["error"], down.text
            assert store_errors(url).endswith(" 1.0"), store_errors(url)
            assert LocalDynamoDB(tmp_path / "moto", port).start() == empty_env["FEATURESTORE_DYNAMODB_ENDPOINT"]
            emptied = requests.get(url + "/ready")
            assert emptied.status_code == 503 and "holds no table" in emptied.json()["error"], emptied.text
            FeatureStore(project, env=empty_env).sync()
            assert requests.get(url + "/ready").json() == {"status": "ready"}
    finally:
        moto.stop()
