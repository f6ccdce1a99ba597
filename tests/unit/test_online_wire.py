"""The wire reads' rules that need no endpoint: when botocore must carry the reads (a proxy),
how DynamoDB's error answers become botocore's ClientError, and binary values both ways."""

from __future__ import annotations

import base64

import orjson
import pytest
from botocore.credentials import Credentials

from featurestore.online.wire import WireReads, _client_error, _from_wire, _json_bytes, wire_reads

CREDENTIALS = Credentials("a", "b")


@pytest.fixture
def no_proxies(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_proxy_or_an_unreadable_ca_bundle_leaves_the_reads_to_botocore(no_proxies):
    url = "https://dynamodb.eu-west-1.amazonaws.com"
    assert isinstance(wire_reads(url, "eu-west-1", CREDENTIALS), WireReads)
    no_proxies.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert wire_reads(url, "eu-west-1", CREDENTIALS) is None
    no_proxies.setenv("NO_PROXY", ".amazonaws.com")  # bypassed: the wire again
    assert isinstance(wire_reads(url, "eu-west-1", CREDENTIALS), WireReads)
    assert wire_reads("unix:///socket", "eu-west-1", CREDENTIALS) is None
    assert wire_reads(url, "eu-west-1", CREDENTIALS, ca_bundle="/nonexistent/ca.pem") is None  # botocore says why


def test_the_host_header_is_signed_as_sent(no_proxies):
    headers = wire_reads("https://dynamodb.eu-west-1.amazonaws.com:443", "eu-west-1", CREDENTIALS)._signed_headers("GetItem", b"{}")
    assert headers["Host"] == "dynamodb.eu-west-1.amazonaws.com"
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert "SignedHeaders=accept-encoding;content-type;host;x-amz-date;x-amz-target" in headers["Authorization"]
    assert "/eu-west-1/dynamodb/aws4_request" in headers["Authorization"]
    local = wire_reads("http://127.0.0.1:8000", "us-east-1", Credentials("a", "b", "token"))._signed_headers("Query", b"{}")
    assert local["Host"] == "127.0.0.1:8000" and local["X-Amz-Security-Token"] == "token"


def test_dynamodb_errors_become_client_errors():
    throttled = _client_error("BatchGetItem", 400, {"x-amzn-requestid": "R1"}, orjson.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "slow down"}))
    assert throttled.response["Error"] == {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
    assert throttled.response["ResponseMetadata"]["RequestId"] == "R1" and throttled.operation_name == "BatchGetItem"
    assert _client_error("GetItem", 400, {}, b'{"__type": "x#ValidationException", "Message": "M"}').response["Error"] \
        == {"Code": "ValidationException", "Message": "M"}
    # no JSON (a proxy's or a load balancer's page): the status is the code, the start of the body the message
    assert _client_error("Query", 503, {}, b"<html>unavailable</html>").response["Error"] \
        == {"Code": "503", "Message": "<html>unavailable</html>"}
    assert _client_error("Query", 500, {}, b"[1]").response["Error"]["Code"] == "500"


def test_binary_values_cross_as_base64_and_come_back_as_bytes():
    assert orjson.loads(orjson.dumps({"B": b"\x00\xff"}, default=_json_bytes)) == {"B": base64.b64encode(b"\x00\xff").decode()}
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    answer = {"Responses": {"t": [{"k": {"S": "1"}, "b": {"B": b64(b"\x01")}, "m": {"M": {"l": {"L": [{"BS": [b64(b"x")]}]}}}}]},
              "UnprocessedKeys": {"t": {"Keys": [{"k": {"B": b64(b"\x02")}}], "ConsistentRead": True}}}
    assert _from_wire(answer) == {
        "Responses": {"t": [{"k": {"S": "1"}, "b": {"B": b"\x01"}, "m": {"M": {"l": {"L": [{"BS": [b"x"]}]}}}}]},
        "UnprocessedKeys": {"t": {"Keys": [{"k": {"B": b"\x02"}}], "ConsistentRead": True}}}
    assert _from_wire({"Items": [], "Count": 0, "LastEvaluatedKey": {"k": {"N": "1"}}}) == \
        {"Items": [], "Count": 0, "LastEvaluatedKey": {"k": {"N": "1"}}}
