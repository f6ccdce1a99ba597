"""uvicorn's HTTP/1.1 protocol on httptools (llhttp, C) with a deadline and a size limit for a
request's head.

httptools rather than h11 (pure Python): measured with benchmarks/bench_serving.py, h11's
parsing and writing were a fifth of the server's CPU per 1-entity request.

uvicorn times only an idle keep-alive connection, and the first byte a client sends stops that
clock: a client that opens a connection and sends a request line a byte at a time (slowloris)
holds a socket and a connection slot for as long as it likes. Here a connection that is not
answering a request must deliver a whole request head (request line and headers) within the
read timeout of the moment the server started waiting for it (the connection opened, or the
previous response was sent); else it is answered 408 (if part of a head arrived) and closed.
The body's own deadline is the app's (server/app.py), which answers 408 naming it. A head is
at most 16 KiB (the limit uvicorn's h11 protocol had): past it, 400 and the connection closed.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024  # the request line's target plus the headers' names and values
# httptools hands a header (of the head, or a chunked body's trailers) to the protocol only once it
# is whole, and buffers it until then: within a request, the bytes received since the parser last
# made progress (the message began, its head completed, a piece of body) are counted as they
# arrive, from the start of the read in which that progress was made (so they may overcount by
# the part of that read before it: at most one read, 256 KiB) and the raw bytes include what the
# 16 KiB leaves out (method, version, separators)
MAX_PENDING_HEAD_BYTES = 2 * MAX_HEAD_BYTES + 256 * 1024


@cache
def read_timeout() -> float:
    """The serving process's read timeout, from the settings `featurestore serve` passes its workers."""
    from . import ServeConfig, serve_config_from_env

    return (serve_config_from_env() or ServeConfig).read_timeout_seconds


class HeadTooLarge(ValueError):
    """Raised in a parser callback: httptools turns it into the HttpParserError uvicorn answers 400."""


class HeadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_timeout = read_timeout()
        self.head_timer: asyncio.TimerHandle | None = None
        self.in_head = False  # part of a request head arrived, not all of it
        self.head_bytes = 0
        self.received = 0  # bytes received on this connection
        self.chunk_began = 0  # ... before the chunk being parsed
        self.in_message = False  # a request began and has not ended
        self.progress_began = 0  # ... before the read in which the parser last made progress

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        self.chunk_began, self.received = self.received, self.received + len(data)
        super().data_received(data)
        if (self.in_message and self.received - self.progress_began > MAX_PENDING_HEAD_BYTES
                and not self.transport.is_closing()):
            self._refuse(400, f"The request's head or trailers (header lines) are larger than {MAX_HEAD_BYTES} "
                              f"bytes; the connection is closed.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes, self.in_message, self.progress_began = True, 0, True, self.chunk_began

    def on_body(self, body: bytes) -> None:
        self.progress_began = self.chunk_began
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        super().on_message_complete()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head, self.progress_began = False, self.chunk_began
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge(f"the request's head is larger than {MAX_HEAD_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools cannot parse, as JSON like every other error."""
        too_large = self.head_bytes > MAX_HEAD_BYTES
        self._refuse(400, f"The request's head (request line and headers) is larger than {MAX_HEAD_BYTES} bytes; "
                          "the connection is closed." if too_large else
                          "The request is not valid HTTP/1.1 (its request line, a header or the body's framing); "
                          "the connection is closed.")

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request: the timer then finds it running
        if not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_timer()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # closed already, or answering a request (whose body the app times)
        if self.in_head:
            self._refuse(408, f"The request's head (request line and headers) did not arrive within "
                              f"{self.head_timeout:g} s; the connection is closed.")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request whose head never became whole, and close the connection (without an
        answer while an earlier request's response is under way: it would land inside that one)."""
        self._stop_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        body = json.dumps({"error": message}).encode()
        reason = {400: b"Bad Request", 408: b"Request Timeout"}[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()
