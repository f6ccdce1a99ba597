"""An HTTP proxy on 127.0.0.1 in front of a DynamoDB endpoint that injects the faults real
DynamoDB produces: throttling errors, BatchGetItem answers with UnprocessedKeys, and
connections dropped without an answer. Counts what it did, so a test can check faults happened,
and records each request's operation and item or key count (`seen`): what crossed the wire,
whichever client sent it."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultyDynamoDB:
    def __init__(self, upstream: str, throttle_every: int = 0, drop_every: int = 0, unprocessed: bool = False,
                 delay: float = 0.0, hold: threading.Event | None = None):
        """delay: seconds each request is held before it is forwarded (a slow store); hold: an
        event each request waits for before it is forwarded (an answer the test lets through)."""
        self.upstream = urlsplit(upstream)
        self.delay, self.hold = delay, hold
        self.throttle_every, self.drop_every, self.unprocessed = throttle_every, drop_every, unprocessed
        self.counts = {"requests": 0, "throttled": 0, "dropped": 0, "unprocessed_keys": 0}
        self.seen: list[tuple[str, int]] = []  # (operation, keys or items in a batch request; else 1)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                with proxy._lock:
                    proxy.counts["requests"] += 1
                    n = proxy.counts["requests"]
                    proxy.seen.append((operation, _batch_size(operation, body)))
                if proxy.delay:
                    time.sleep(proxy.delay)
                if proxy.hold is not None:
                    proxy.hold.wait(60)
                if proxy.drop_every and n % proxy.drop_every == 0:
                    proxy.counts["dropped"] += 1
                    self.close_connection = True
                    self.connection.close()  # no answer at all
                    return
                if proxy.throttle_every and n % proxy.throttle_every == 0:
                    proxy.counts["throttled"] += 1
                    return self._answer(400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                                              "message": "Rate of requests exceeds the allowed throughput."})
                held = {}
                if proxy.unprocessed and operation == "BatchGetItem":
                    request = json.loads(body)
                    for table, spec in request["RequestItems"].items():
                        keys = spec["Keys"]
                        if len(keys) > 1:  # answer the first half, hand back the rest as unprocessed
                            held[table] = {**spec, "Keys": keys[len(keys) // 2:]}
                            spec["Keys"] = keys[:len(keys) // 2]
                            proxy.counts["unprocessed_keys"] += len(held[table]["Keys"])
                    body = json.dumps(request).encode()
                status, payload = proxy._forward(self.headers, body)
                if held and status == 200:
                    answer = json.loads(payload)
                    answer["UnprocessedKeys"] = {**(answer.get("UnprocessedKeys") or {}), **held}
                    return self._answer(200, answer)
                self._answer(status, payload)

            def _answer(self, status, payload):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _forward(self, headers, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
            connection.request("POST", "/", body=body, headers={**forwarded, "Content-Length": str(len(body))})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _batch_size(operation: str, body: bytes) -> int:
    """Keys of a BatchGetItem, items of a BatchWriteItem (DynamoDB's per-request limits); else 1."""
    if operation not in ("BatchGetItem", "BatchWriteItem"):
        return 1
    tables = json.loads(body)["RequestItems"].values()
    return sum(len(spec["Keys"]) if operation == "BatchGetItem" else len(spec) for spec in tables)
