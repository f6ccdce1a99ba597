"""The feature server's own per-request cost, without the network and without the store: the
ASGI app (server/app.py) driven in process with an API key, a JSON body, and an OnlineServer
stand-in whose read returns a fixed 1-entity answer. What is left is what the server adds to
a read: routing, auth, the body's checks and deadline, the thread hop, JSON and metrics (the access
log has no handler here, as outside `featurestore serve`).

    python benchmarks/bench_asgi.py
"""
import asyncio
import json
import statistics
import time

from featurestore.server import ServeConfig
from featurestore.server.app import ServerSettings, create_app
from featurestore.server.serving import Served

ANSWER = {"metadata": {"feature_names": ["customer_id", "f"]}, "results": [{"values": ["c1"], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]}] * 8}

class Fixed:
    def get_online_features(self, body):
        return json.loads(json.dumps(ANSWER)), Served("churn_model", ["customer_id"], [None], 1, [])

app = create_app(Fixed(), ServerSettings(body_timeout_seconds=ServeConfig.read_timeout_seconds, api_keys=("k",)))
body = json.dumps({"feature_service": "churn_model", "entities": {"customer_id": ["c1"], "store_id": ["s1"]}}).encode()
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
         "path": "/get-online-features", "raw_path": b"/get-online-features", "query_string": b"", "root_path": "",
         "headers": [(b"host", b"x"), (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                     (b"x-api-key", b"k")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}

async def one():
    sent = []
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    async def send(message):
        sent.append(message)
    await app(dict(scope), receive, send)
    assert sent[0]["status"] == 200, sent

async def main():
    for _ in range(200): await one()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(2000): await one()
        runs.append((time.perf_counter() - started) / 2000 * 1e6)
    print(f"{statistics.median(runs):.0f} us per request (median of 5 x 2000; runs {', '.join(f'{r:.0f}' for r in runs)})")

asyncio.run(main())
