"""DynamoDB's read operations spoken directly over its HTTP JSON protocol: the serving hot path.

botocore spends 0.9–1.6 ms of CPU on a one-key BatchGetItem before and after the network
(checking the parameters against the service model, its event hooks, parsing the answer
against the model) and ~4.4 ms on a hundred keys; these calls spend 0.3–0.7 and ~1.3 ms: on a
feature server that was most of a request's own CPU (docs/benchmarks.md, "Issue 24, 2026-12-05";
`benchmarks/bench_read_client.py`). `WireReads` sends the same requests itself:

- the body is the operation's parameters as JSON (DynamoDB's wire format is the parameters'
  own shape; bytes as base64), the answer parsed back into the shape botocore returns (binary
  attribute values as bytes), so the store's code cannot tell the two apart;
- signed by botocore's own SigV4 signer with the session's credentials, frozen per request
  (refreshable credentials refresh as botocore's would);
- over kept-alive connections shared by the caller's threads (`http.client`, a pool of idle
  ones as botocore's urllib3 keeps; TLS with botocore's CA bundle or the profile's
  `ca_bundle`); the CRC32 DynamoDB sends with an answer is checked;
- failures raised as botocore's own exceptions (`ClientError` with DynamoDB's error code,
  `EndpointConnectionError`, `ConnectionClosedError`, `ReadTimeoutError`, `ChecksumError`), so
  the store's one retry loop (`DynamoDBOnlineStore._call`) treats both clients alike.

Reads only (`OPERATIONS`): they are idempotent, so a request whose reused connection turns out
closed (a server's idle timeout, or moto, which closes every connection) is sent again at once
on a new one. Writes and table management stay on botocore. Where botocore would go through a
proxy for the endpoint's scheme (HTTPS_PROXY for https, unless NO_PROXY exempts the host), an
endpoint with a path, or a CA bundle that cannot be read, `wire_reads` gives None and botocore
carries the reads too (and says what is wrong with the bundle); so does the store where
botocore would pick an account-based AWS endpoint per call (dynamodb.py).
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import ssl
import threading
import zlib
from typing import Any, Callable
from urllib.parse import urlsplit

import orjson

OPERATIONS = {"batch_get_item": "BatchGetItem", "get_item": "GetItem", "query": "Query"}
_TARGET = "DynamoDB_20120810."
_DEFAULT_PORTS = {"http": 80, "https": 443}


def wire_reads(endpoint_url: str, region: str, credentials, *, ca_bundle: str | None = None,
               connect_timeout: float = 3.0, read_timeout: float = 20.0, max_idle: int = 10) -> "WireReads | None":
    """A WireReads for a client's resolved endpoint, or None where botocore must carry the reads
    (a proxy applies to the endpoint, or the URL is not plain http(s) with a host)."""
    from botocore.utils import get_environ_proxies

    parts = urlsplit(endpoint_url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") \
            or get_environ_proxies(endpoint_url).get(parts.scheme):  # botocore's rule: the scheme's proxy
        return None
    try:
        return WireReads(endpoint_url, region, credentials, ca_bundle=ca_bundle, connect_timeout=connect_timeout,
                         read_timeout=read_timeout, max_idle=max_idle)
    except OSError:  # a CA bundle that cannot be read (ssl.SSLError too): botocore's own error, at the call
        return None


class WireReads:
    """`call(operation, params)` for the read operations in OPERATIONS (botocore's names)."""

    def __init__(self, endpoint_url: str, region: str, credentials, *, ca_bundle: str | None = None,
                 connect_timeout: float = 3.0, read_timeout: float = 20.0, max_idle: int = 10):
        parts = urlsplit(endpoint_url)
        self.endpoint_url = endpoint_url
        self.region = region
        self._credentials = credentials
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]
        # the Host header as SigV4 signs it: the port only where it is not the scheme's default
        self._host_header = parts.netloc.rsplit("@", 1)[-1]
        if parts.port == _DEFAULT_PORTS[parts.scheme]:
            self._host_header = self._host_header.rsplit(":", 1)[0]
        self._url = f"{parts.scheme}://{self._host_header}/"
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._tls = None
        if self._https:
            from botocore.httpsession import get_cert_path

            self._tls = ssl.create_default_context(cafile=ca_bundle or get_cert_path(True))
        self._idle: list[http.client.HTTPConnection] = []  # kept connections no call is using, newest last
        self._max_idle = max_idle
        self._lock = threading.Lock()

    def call(self, operation: str, params: dict, timeout: float | None = None) -> dict:
        """One request, its answer in botocore's shape; DynamoDB's refusals as ClientError.
        `timeout` (seconds) caps this call's connect and read timeouts (the caller's deadline)."""
        target = OPERATIONS[operation]
        body = orjson.dumps(params, default=_json_bytes)
        headers = self._signed_headers(target, body)
        read_timeout = self._read_timeout if timeout is None else min(self._read_timeout, timeout)
        status, answer_headers, data = self._exchange(body, headers, read_timeout)
        expected = answer_headers.get("x-amz-crc32")
        if expected is not None and expected.isdigit() and zlib.crc32(data) & 0xFFFFFFFF != int(expected):
            from botocore.exceptions import ChecksumError

            raise ChecksumError(checksum_type="crc32", expected_checksum=expected,
                                actual_checksum=zlib.crc32(data) & 0xFFFFFFFF)
        if status == 200:
            try:
                return _from_wire(orjson.loads(data))
            except (orjson.JSONDecodeError, TypeError, AttributeError, KeyError, ValueError):
                from botocore.parsers import ResponseParserError  # as botocore raises it

                raise ResponseParserError(f"DynamoDB's answer to {target} is not its JSON: {data[:200]!r}") from None
        raise _client_error(target, status, answer_headers, data)

    def close(self) -> None:
        """Close the kept connections (a later call opens another)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self) -> http.client.HTTPConnection | None:
        """A kept connection the server has not closed or written to since (a readable idle
        socket: closed, or an unasked answer such as a load balancer's 408), else None."""
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None or not select.select([connection.sock], [], [], 0)[0]:
                return connection
            connection.close()

    def _keep(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def _signed_headers(self, target: str, body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        # the Host header given, so that the value signed is the value sent
        request = AWSRequest("POST", self._url, data=body, headers={
            "Host": self._host_header, "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": _TARGET + target})
        SigV4Auth(self._credentials.get_frozen_credentials(), "dynamodb", self.region).add_auth(request)
        return dict(request.headers.items())

    def _connect(self, read_timeout: float) -> http.client.HTTPConnection:
        from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, SSLError

        connect_timeout = min(self._connect_timeout, read_timeout)
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=connect_timeout,
                                                     context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=connect_timeout)
        try:
            connection.connect()
        except socket.timeout as exc:
            connection.close()
            raise ConnectTimeoutError(endpoint_url=self.endpoint_url, error=exc) from None
        except ssl.SSLError as exc:  # (an OSError too) as botocore raises it
            connection.close()
            raise SSLError(endpoint_url=self.endpoint_url, error=exc) from None
        except OSError as exc:
            connection.close()
            raise EndpointConnectionError(endpoint_url=self.endpoint_url, error=exc) from None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _exchange(self, body: bytes, headers: dict, read_timeout: float) -> tuple[int, dict[str, str], bytes]:
        """Send on a kept connection, else a new one; a kept one found closed is replaced once, at once."""
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

        for fresh in (False, True):
            connection = None if fresh else self._take()
            reused = connection is not None
            if connection is None:
                connection = self._connect(read_timeout)
            try:
                connection.sock.settimeout(read_timeout)  # this call's: a kept connection had another's
                connection.request("POST", "/", body, headers)
                response = connection.getresponse()
                data = response.read()
            except socket.timeout as exc:
                connection.close()
                raise ReadTimeoutError(endpoint_url=self.endpoint_url, error=exc) from None
            except (http.client.HTTPException, OSError) as exc:
                connection.close()
                if reused:
                    continue  # the server closed it while it was idle: once more on a new connection
                raise ConnectionClosedError(endpoint_url=self.endpoint_url, error=exc) from None
            if response.will_close:
                connection.close()
            else:
                self._keep(connection)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")  # the second pass is always on a new connection


def _json_bytes(value: Any) -> str:
    """orjson's fallback: bytes as DynamoDB's JSON carries them (base64)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _attribute(value: dict) -> dict:
    """An attribute value from the wire as botocore gives it: B and BS as bytes, L and M walked."""
    if "B" in value:
        return {"B": base64.b64decode(value["B"])}
    if "BS" in value:
        return {"BS": [base64.b64decode(item) for item in value["BS"]]}
    if "L" in value:
        return {"L": [_attribute(item) for item in value["L"]]}
    if "M" in value:
        return {"M": _item(value["M"])}
    return value


def _item(item: dict) -> dict:
    return {name: _attribute(value) for name, value in item.items()}


def _items(items: list) -> list:
    return [_item(item) for item in items]


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "Item": _item,  # GetItem
    "Items": _items,  # Query
    "LastEvaluatedKey": _item,
    "Responses": lambda tables: {name: _items(rows) for name, rows in tables.items()},  # BatchGetItem
    "UnprocessedKeys": lambda tables: {name: {**spec, "Keys": _items(spec["Keys"])} for name, spec in tables.items()},
}


def _from_wire(answer: dict) -> dict:
    """A read's answer with its attribute values in botocore's shape."""
    for field, convert in _CONVERT.items():
        if field in answer:
            answer[field] = convert(answer[field])
    return answer


def _client_error(target: str, status: int, headers: dict[str, str], data: bytes):
    """DynamoDB's error answer as botocore's ClientError: the code after '#' in `__type`
    (the HTTP status where the body says none), the message either spelling DynamoDB uses."""
    from botocore.exceptions import ClientError

    try:
        error = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    # botocore's (and the awsJson protocol's) reading of `__type`: before any ':', after any '#'
    code = str(error.get("__type") or "").split(":", 1)[0].rsplit("#", 1)[-1] or str(status)
    message = str(error.get("message") or error.get("Message") or data[:200].decode("utf-8", "replace"))
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers,
                                             "RequestId": headers.get("x-amzn-requestid", "")}}, target)
