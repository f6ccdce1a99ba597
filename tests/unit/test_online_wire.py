"""The wire reads' rules that need no endpoint: when botocore must carry the reads (a proxy),
how DynamoDB's error answers become botocore's ClientError, and binary values both ways."""

from __future__ import annotations

import base64

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
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
    no_proxies.setenv("NO_PROXY", "localhost")  # NO_PROXY alone proxies nothing
    assert isinstance(wire_reads(url, "eu-west-1", CREDENTIALS), WireReads)
    no_proxies.setenv("HTTP_PROXY", "http://proxy.internal:3128")  # not for an https endpoint (botocore's rule)
    assert isinstance(wire_reads(url, "eu-west-1", CREDENTIALS), WireReads)
    assert wire_reads("http://dynamodb.internal:8000", "eu-west-1", CREDENTIALS) is None
    no_proxies.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert wire_reads(url, "eu-west-1", CREDENTIALS) is None
    no_proxies.setenv("NO_PROXY", ".amazonaws.com")  # bypassed: the wire again
    assert isinstance(wire_reads(url, "eu-west-1", CREDENTIALS), WireReads)
    assert wire_reads("unix:///socket", "eu-west-1", CREDENTIALS) is None
    assert wire_reads("http://gateway.internal/dynamodb", "eu-west-1", CREDENTIALS) is None  # a path: botocore's
    assert wire_reads(url, "eu-west-1", CREDENTIALS, ca_bundle="/nonexistent/ca.pem") is None  # botocore says why


def resigned(url: str, headers: dict[str, str], body: bytes, credentials) -> str:
    """The signature SigV4 gives the request exactly as sent (its headers, its X-Amz-Date), as
    DynamoDB recomputes it."""
    sent = {name: value for name, value in headers.items() if name not in ("Authorization",)}
    request = AWSRequest("POST", url + "/", data=body, headers=sent)
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(credentials.get_frozen_credentials(), "dynamodb", "eu-west-1")
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)


@pytest.mark.parametrize("url, host", [
    ("https://dynamodb.eu-west-1.amazonaws.com:443", "dynamodb.eu-west-1.amazonaws.com"),
    ("http://LocalHost:8000", "LocalHost:8000"),
    ("http://[::1]:8000", "[::1]:8000"),
    ("https://DynamoDB.eu-west-1.amazonaws.com", "DynamoDB.eu-west-1.amazonaws.com"),
])
def test_the_signature_is_of_the_request_as_sent(no_proxies, url, host):
    credentials = Credentials("a", "b", "token")
    headers = wire_reads(url, "eu-west-1", credentials)._signed_headers("GetItem", b"{}")
    assert headers["Host"] == host and headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert headers["X-Amz-Security-Token"] == "token"
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target" in headers["Authorization"]
    assert headers["Authorization"].endswith("Signature=" + resigned(url, headers, b"{}", credentials))


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
    # the awsJson form with a namespace and a URL after ':' (botocore reads the same code)
    assert _client_error("GetItem", 400, {}, b'{"__type": "aws#ThrottlingException:http://internal.amazon.com/"}')\
        .response["Error"]["Code"] == "ThrottlingException"


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


def test_account_based_endpoints_are_left_to_botocore(monkeypatch):
    import botocore.session

    from featurestore.online.transport import _account_routed

    core = botocore.session.Session()
    assert not _account_routed(core, Credentials("a", "b"))
    assert _account_routed(core, Credentials("a", "b", account_id="123456789012"))
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    assert not _account_routed(botocore.session.Session(), Credentials("a", "b", account_id="123456789012"))


@pytest.mark.parametrize("environment, cause", [({"AWS_ACCESS_KEY_ID": "only-the-key"}, "missing: AWS_SECRET_ACCESS_KEY"),
                                                ({"AWS_PROFILE": "no-such-profile"}, "(no-such-profile) could not be found")])
def test_credentials_that_cannot_be_resolved_are_the_stores_error(monkeypatch, tmp_path, environment, cause):
    """Partial credentials or an unknown profile: an OnlineStoreError naming the cause (the
    server's 503, the CLI's message), not an unexpected exception from the credential chain."""
    import boto3

    from featurestore.online import OnlineStoreError
    from featurestore.online.config import OnlineConfig
    from featurestore.online.dynamodb import DynamoDBOnlineStore

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    store = DynamoDBOnlineStore(OnlineConfig("http://127.0.0.1:9", "us-east-1", "unit_", timeout_seconds=0.5))
    with pytest.raises(OnlineStoreError, match="Cannot resolve AWS credentials") as raised:
        store._wire
    assert cause in str(raised.value)  # botocore's own words for the cause, kept in the message
