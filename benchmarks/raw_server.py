"""The floor for bench_serving.py: a minimal HTTP server over the same online store, with nothing
but what a hand-written one needs: a bare ASGI callable on uvicorn (one worker, on the stack
ours runs on: httptools' parser and uvloop's event loop), the body parsed with json.loads, one boto3 BatchGetItem
of the request's keys (the same key encoding and tables ours reads) in asyncio's default thread
pool (so concurrent requests overlap their reads, as a server must), and DynamoDB's items sent
back as JSON. No auth, metrics, logs, body checks or decoding.

    python benchmarks/raw_server.py PORT ENDPOINT REGION CUSTOMER_TABLE STORE_TABLE
"""

from __future__ import annotations

import asyncio
import json
import sys

import boto3
import uvicorn

from featurestore.online.codec import entity_key
from featurestore.online.dynamodb import KEY


def make_app(endpoint: str, region: str, customer_table: str, store_table: str):
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region,
                          aws_access_key_id="test", aws_secret_access_key="test")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/health":
            body = b'{"status":"ok"}'
        else:
            chunks, more = [], True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = await asyncio.get_running_loop().run_in_executor(None, read, json.loads(b"".join(chunks))["entities"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def read(entities: dict) -> bytes:
        keys = {customer_table: {entity_key(["customer_id"], {"customer_id": c}) for c in entities["customer_id"]},
                store_table: {entity_key(["store_id"], {"store_id": s}) for s in entities["store_id"]}}
        pairs = [(table, key) for table, values in keys.items() for key in sorted(values)]
        items = {}
        for start in range(0, len(pairs), 100):
            request: dict = {}
            for table, key in pairs[start:start + 100]:
                request.setdefault(table, {"Keys": []})["Keys"].append({KEY: {"S": key}})
            for table, rows in client.batch_get_item(RequestItems=request)["Responses"].items():
                items.setdefault(table, []).extend(rows)
        return json.dumps(items, separators=(",", ":")).encode()

    return app


if __name__ == "__main__":
    port, endpoint, region, customer_table, store_table = sys.argv[1:6]
    uvicorn.run(make_app(endpoint, region, customer_table, store_table), host="127.0.0.1", port=int(port),
                log_level="warning", access_log=False, http="httptools", loop="uvloop")
