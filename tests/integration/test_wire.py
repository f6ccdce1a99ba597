"""The online store's reads without botocore (online/wire.py), against real endpoints: the same
requests through botocore and through the wire give the same answers and the same errors (moto
and dynalite); a checksum that does not match is an error; a kept connection the server closed
while idle is replaced without the caller seeing it; TLS with the CA bundle given, refused without."""

from __future__ import annotations

import threading
import zlib
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ChecksumError, ClientError

from featurestore.online import OnlineTable
from featurestore.online.codec import entity_key
from featurestore.online.config import OnlineConfig
from featurestore.online.dynamodb import DynamoDBOnlineStore
from featurestore.online.wire import WireReads

THINGS = OnlineTable("things", ("user_id",), {"n": "bigint", "s": "varchar"}, None)


def sorted_answer(answer: dict) -> dict:
    """An answer without botocore's metadata, BatchGetItem's rows in key order (either order is DynamoDB's)."""
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    if "Responses" in answer:
        answer["Responses"] = {t: sorted(rows, key=lambda item: item["entity_key"]["S"])
                               for t, rows in answer["Responses"].items()}
    return answer


def test_the_wire_answers_and_refuses_as_botocore_does(dynamodb):
    store = DynamoDBOnlineStore(OnlineConfig(dynamodb, "us-east-1", "wire_"))
    assert store._wire is not None  # a local endpoint, no proxy: reads take the wire
    store.write(THINGS, [{"user_id": i, "n": i, "s": "é" * i, "event_timestamp": datetime(2025, 1, 1),
                          "created_timestamp": datetime(2025, 1, 1)} for i in range(3)])
    table = store.live_table_name("things")
    store.client.put_item(TableName=table, Item={  # every attribute type, binary nested too
        "entity_key": {"S": "raw"}, "b": {"B": b"\x00\xff\n"}, "bs": {"BS": [b"a", b"\x01"]}, "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]}, "nothing": {"NULL": True}, "flag": {"BOOL": False},
        "nested": {"M": {"l": {"L": [{"B": b"z"}, {"N": "-1e-130"}, {"M": {"deep": {"BS": [b"q"]}}}]}}}})
    keys = [{"entity_key": {"S": key}} for key in ["raw", entity_key(["user_id"], {"user_id": 2}), "absent"]]
    reads = [
        ("batch_get_item", {"RequestItems": {table: {"Keys": keys}}}),
        ("batch_get_item", {"RequestItems": {table: {"Keys": keys[1:], "ProjectionExpression": "#k, #n",
                                                     "ExpressionAttributeNames": {"#k": "entity_key", "#n": "n"},
                                                     "ConsistentRead": True}}}),
        ("get_item", {"TableName": table, "Key": keys[0], "ConsistentRead": True}),
        ("get_item", {"TableName": table, "Key": keys[2]}),
        ("query", {"TableName": table, "KeyConditionExpression": "#k = :k", "ExpressionAttributeNames": {"#k": "entity_key"},
                   "ExpressionAttributeValues": {":k": {"S": "raw"}}}),
    ]
    for operation, params in reads:
        ours = store._wire.call(operation, params)
        assert sorted_answer(ours) == sorted_answer(getattr(store.client, operation)(**params)), operation
    assert store._wire.call(*reads[2])["Item"]["nested"]["M"]["l"]["L"][2]["M"]["deep"]["BS"] == [b"q"]

    refused = [
        ("get_item", {"TableName": "wire_never_made", "Key": keys[0]}),  # ResourceNotFoundException
        ("batch_get_item", {"RequestItems": {table: {"Keys": [{"other": {"S": "x"}}]}}}),  # ValidationException
        ("query", {"TableName": table, "KeyConditionExpression": "#k = :k", "ExpressionAttributeNames": {"#k": "entity_key"}}),
    ]
    for operation, params in refused:
        with pytest.raises(ClientError) as ours:
            store._wire.call(operation, params)
        with pytest.raises(ClientError) as theirs:
            getattr(store.client, operation)(**params)
        assert ours.value.response["Error"]["Code"] == theirs.value.response["Error"]["Code"], operation
        assert ours.value.response["Error"]["Message"], operation


class _Scripted(BaseHTTPRequestHandler):
    """Answers a GetItem with an empty item; the server's `crc` decides the checksum header, and
    with `close_after` it closes each connection after answering without saying so."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.connections += 1

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"{}"
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-crc32", str(self.server.crc(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.server.close_after:
            self.close_connection = True  # no "Connection: close": the client finds out on its next request


def scripted_server(crc, close_after=False, tls=None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads, server.crc, server.close_after, server.requests, server.connections = True, crc, close_after, 0, 0
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wire_to(server) -> WireReads:
    return WireReads(f"http://127.0.0.1:{server.server_address[1]}", "us-east-1", Credentials("a", "b"))


def test_an_answer_whose_checksum_does_not_match_is_an_error():
    good, bad = scripted_server(lambda body: zlib.crc32(body)), scripted_server(lambda body: zlib.crc32(body) ^ 1)
    try:
        assert wire_to(good).call("get_item", {"TableName": "t", "Key": {}}) == {}
        with pytest.raises(ChecksumError):
            wire_to(bad).call("get_item", {"TableName": "t", "Key": {}})
    finally:
        good.shutdown(), bad.shutdown()


def test_a_kept_connection_closed_by_the_server_is_replaced_at_once():
    server = scripted_server(lambda body: zlib.crc32(body), close_after=True)
    try:
        wire = wire_to(server)
        for _ in range(5):  # each call after the first finds its kept connection closed
            assert wire.call("get_item", {"TableName": "t", "Key": {}}) == {}
        assert (server.requests, server.connections) == (5, 5)  # each sent once, on a connection of its own
    finally:
        server.shutdown()


def test_kept_connections_are_shared_by_the_callers_threads():
    server = scripted_server(lambda body: zlib.crc32(body))
    try:
        wire = wire_to(server)
        for _ in range(10):  # a thread each, one after another (as a read's pool of threads per call)
            thread = threading.Thread(target=wire.call, args=("get_item", {"TableName": "t", "Key": {}}))
            thread.start(), thread.join()
        assert (server.requests, server.connections) == (10, 1)
        barrier, failures = threading.Barrier(6), []

        def burst():
            barrier.wait()
            for _ in range(20):
                try:
                    assert wire.call("get_item", {"TableName": "t", "Key": {}}) == {}
                except Exception as exc:  # reported below, not lost in the thread
                    failures.append(exc)

        threads = [threading.Thread(target=burst) for _ in range(6)]  # at once: no connection used by two
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [] and server.requests == 130 and server.connections <= 7
    finally:
        server.shutdown()


def test_https_with_the_ca_bundle_given_and_a_refusal_without_it(tmp_path):
    import ssl
    import subprocess

    from botocore.exceptions import SSLError

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = scripted_server(lambda body: zlib.crc32(body), tls=context)
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        assert WireReads(url, "us-east-1", Credentials("a", "b"), ca_bundle=str(cert)).call(
            "get_item", {"TableName": "t", "Key": {}}) == {}
        with pytest.raises(SSLError):  # not signed by a CA of the default bundle
            WireReads(url, "us-east-1", Credentials("a", "b")).call("get_item", {"TableName": "t", "Key": {}})
    finally:
        server.shutdown()
