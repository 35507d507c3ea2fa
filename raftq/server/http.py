"""The node's HTTP/1.1 server: asyncio protocols and httptools' parser.

Why hand-written: a node's CPU per request bounds single-task submits;
aiohttp's server spent ~150 µs of it, uvicorn and granian 1.7-4x this one's
(docs/performance.md). The API is small and fixed, so the server is too:
exact and ``{name}`` routes, bodies read whole (with a limit) before the
handler runs, JSON responses with a Content-Length, keep-alive and pipelining
(answered in order), ``Expect: 100-continue``, HEAD on GET routes, and a clean
4xx for anything malformed. Handlers are not cancelled when the client goes
away (a proposal in flight must finish); they can check ``Request.gone``.

Strangers must not stall it (``raftq.server.limits``): deadlines for a
request's headers and body (408 and close), idle keep-alive connections
closed, 503 over the connection cap; one periodic sweep checks them all.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httptools

from raftq.server.limits import BODY, HEADERS, IDLE, NOTHING, HttpLimits
from raftq.server.messages import UNREAD as UNREAD
from raftq.server.messages import Handler as Handler
from raftq.server.messages import Middleware as Middleware
from raftq.server.messages import Request as Request
from raftq.server.messages import Response as Response
from raftq.server.messages import error_json as error_json
from raftq.server.messages import json_response as json_response

if TYPE_CHECKING:
    from raftq.server.router import Router

log = logging.getLogger(__name__)

MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 65536
MAX_PIPELINED = 64

_REASONS = {s.value: s.phrase for s in HTTPStatus}
class _Clock:
    """The Date header, formatted once a second."""

    def __init__(self) -> None:
        self.second = 0
        self.value = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.value = email.utils.formatdate(now, usegmt=True).encode()
        return self.value


class Server:
    """Serves one router; ``start`` listens, ``close`` stops and drops connections."""

    def __init__(self, router: Router, middleware: Middleware, max_body: int,
                 limits: HttpLimits | None = None,
                 on_refused: Callable[[str], None] = lambda _code: None) -> None:
        self.router = router
        self.middleware = middleware
        self.max_body = max_body
        self.limits = limits or HttpLimits()
        self.connections: set[_Connection] = set()
        self.on_refused = on_refused  # told the code of each connection the limits close
        self.clock = _Clock()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int, ssl: Any = None) -> None:  # an SSLContext: HTTPS
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port,
                                                reuse_address=True, ssl=ssl)
        self._sweeper = loop.call_later(self.limits.sweep_period_s, self._sweep)

    @property
    def port(self) -> int:
        """The port listened on (useful after ``start(host, 0)``)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    def _sweep(self) -> None:
        """Enforce the deadlines: 408 for a late request, a quiet close when idle."""
        now = time.monotonic()
        for conn in [c for c in self.connections if c.deadline < now]:
            if conn.waiting == IDLE:
                conn.close()
            else:
                self.on_refused("request_timeout")
                conn.reject(error_json(408, "request_timeout", self.limits.late(conn.waiting)))
        self._sweeper = asyncio.get_running_loop().call_later(self.limits.sweep_period_s,
                                                              self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()  # once: each lookup costs a getpid()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.body_size = 0
        self.queue: deque[Request] = deque()
        self.busy = False
        self.closing = False
        self.reading_paused = False
        self.hangup_after = False
        self.limits = server.limits
        # The first request's headers are due within the header timeout.
        self.waiting = HEADERS
        self.deadline = time.monotonic() + self.limits.header_timeout_s

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        if len(self.server.connections) >= self.limits.max_connections:
            self.server.on_refused("too_many_connections")
            self.reject(error_json(503, "too_many_connections",
                                   f"this node has {self.limits.max_connections} connections "
                                   "open, its limit; retry shortly or try another node",
                                   headers={"Retry-After": "1"}))
            return
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self.reject(cause.response)
            else:
                log.error("HTTP parser callback failed", exc_info=cause)
                self.reject(error_json(400, "bad_request", "malformed HTTP request"))
        except httptools.HttpParserUpgrade:
            # The request itself was complete and is being answered; upgrades
            # are not supported, so the connection ends after that answer.
            self.hangup_after = True
            if not self.busy:
                self.close()
        except httptools.HttpParserError as exc:
            self.reject(error_json(400, "bad_request", f"malformed HTTP request: {exc}"))

    def close(self) -> None:
        self.closing = True
        self.deadline = math.inf
        if self.transport is not None:
            self.transport.close()

    def reject(self, response: Response) -> None:
        """Answer a request we cannot parse or accept, then hang up."""
        if self.closing or self.transport is None:
            return
        self.queue.clear()
        self.closing = True
        self.deadline = math.inf
        transport = self.transport
        if self.busy:  # an answer is in progress; another would interleave with it
            transport.close()
            return
        # Answer, half-close, and read (and drop) what the client still sends
        # for a moment: closing with unread data would reset the connection
        # and the client might never see the answer.
        transport.write(self.serialize(response, keep_alive=False, head=False))
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(2.0, transport.close)
        else:
            transport.close()

    # -------------------------------------------------------- parser events

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.header_bytes = 0
        self.body = []
        self.body_size = 0
        self.waiting = HEADERS
        self.deadline = time.monotonic() + self.limits.header_timeout_s

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL_BYTES:
            raise _Reject(error_json(414, "uri_too_long",
                                     f"the URL is over {MAX_URL_BYTES} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            raise _Reject(error_json(431, "headers_too_large",
                                     f"the headers are over {MAX_HEADER_BYTES} bytes"))
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.server.max_body:
            raise _Reject(error_json(413, "payload_too_large",
                                     f"request body over the limit of {self.server.max_body} "
                                     "bytes"))
        self.waiting = BODY
        self.deadline = time.monotonic() + self.limits.body_timeout_s
        if self.headers.get("expect", "").lower() == "100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.server.max_body:
            raise _Reject(error_json(413, "payload_too_large",
                                     f"request body over the limit of {self.server.max_body} "
                                     "bytes"))
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.waiting, self.deadline = NOTHING, math.inf
        try:
            parsed = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:
            raise _Reject(error_json(400, "bad_request", "malformed URL")) from None
        # Routes match the path as sent; ``{name}`` values are percent-decoded
        # after matching, so an id may contain an encoded "/".
        path = parsed.path.decode("latin-1") if parsed.path else "/"
        query = parsed.query.decode("latin-1") if parsed.query else ""
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        request = Request(self.parser.get_method().decode("ascii", "replace"), path, query,
                          self.headers, body, self.transport, self.parser.should_keep_alive())
        self.body = []
        if self.busy:
            self.queue.append(request)
            if len(self.queue) >= MAX_PIPELINED and not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()
        else:
            self.start(request)

    # ------------------------------------------------------------ answering

    def start(self, request: Request) -> None:
        self.busy = True
        self.loop.create_task(self.handle(request))

    async def handle(self, request: Request) -> None:
        try:
            response = await self.server.middleware(request, self.server.router.resolve(request))
        except Exception:  # the middleware maps errors; this is the last guard
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = error_json(500, "internal", "internal error; see the node log")
        self.finish(request, response)

    def finish(self, request: Request, response: Response) -> None:
        transport = self.transport
        self.busy = False
        if self.closing or transport is None or transport.is_closing():
            return
        if response.stream is not None and request.method != "HEAD":
            self.closing = True  # the stream has the connection until it ends
            transport.write(self.serialize(response, False, False))
            self.loop.create_task(_streamed(response.stream, transport))
            return
        keep_alive = request.keep_alive and not (self.hangup_after and not self.queue)
        transport.write(self.serialize(response, keep_alive, request.method == "HEAD"))
        if not keep_alive:
            self.close()
            return
        if self.queue:
            if self.reading_paused and len(self.queue) < MAX_PIPELINED // 2:
                self.reading_paused = False
                transport.resume_reading()
            self.start(self.queue.popleft())
        elif self.waiting == NOTHING:  # not in the middle of the next request
            self.waiting = IDLE
            self.deadline = time.monotonic() + self.limits.idle_timeout_s

    def serialize(self, response: Response, keep_alive: bool, head: bool) -> bytes:
        status = response.status
        body = response.body
        lines = [
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nDate: %s\r\n" % (
                status, _REASONS.get(status, "Unknown").encode(),
                response.content_type.encode(), self.server.clock.date()),
        ]
        if response.stream is None:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        if not keep_alive:
            lines.append(b"Connection: close\r\n")
        if response.headers:
            for name, value in response.headers.items():
                lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(b"\r\n")
        if not head:
            lines.append(body)
        return b"".join(lines)


async def _streamed(stream: Callable[[asyncio.Transport], Awaitable[None]],
                    transport: asyncio.Transport) -> None:
    try:
        await stream(transport)
    except Exception:
        log.exception("a streamed response failed")
    finally:
        transport.close()


class _Reject(Exception):
    """Raised from a parser callback: answer with ``response`` and close."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response
